"""Submissions: limits checked in the creating transaction, validated status transitions, results recorded once."""

from __future__ import annotations

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from evaluator.engine import (
    EvaluationAttempt,
    RaceResult,
    queue_position,
    queue_positions,
    work_cancel,
    work_is_active,
    work_request,
)
from league.services import racer_alias
from races.models import Race, RacePhase, RacerModel, Run, Submission, SubmissionEvent
from races.services.errors import RuleViolation
from races.services.leaderboards import leaderboard_offer, leaderboard_recompute
from races.services.phases import races_in_phase
from races.services.runs import run_discard
from races.services.visibility import race_is_member, race_visible_to
from sim.race.scoring import LapMetrics, ScoringError, score_run

SubmissionStatus = Submission.Status
TRANSITIONS: dict[str, set[str]] = {
    SubmissionStatus.QUEUED: {SubmissionStatus.RUNNING, SubmissionStatus.FAILED, SubmissionStatus.DISQUALIFIED},
    SubmissionStatus.RUNNING: {SubmissionStatus.SCORED, SubmissionStatus.FAILED, SubmissionStatus.QUEUED,
                               SubmissionStatus.DISQUALIFIED},
    SubmissionStatus.SCORED: {SubmissionStatus.DISQUALIFIED, SubmissionStatus.QUEUED},
    SubmissionStatus.FAILED: {SubmissionStatus.QUEUED, SubmissionStatus.DISQUALIFIED},
    # Only through an admin's re-run, which reinstates the submission.
    SubmissionStatus.DISQUALIFIED: {SubmissionStatus.QUEUED},
}
FINAL = (SubmissionStatus.SCORED, SubmissionStatus.FAILED, SubmissionStatus.DISQUALIFIED)
EVALUATION_KIND = Submission.EVALUATION_KIND


def submission_create(user, race: Race, model: RacerModel) -> Submission:
    """Enter ``model`` in ``race``. Every limit is checked while holding the race row's lock, so two
    simultaneous submissions cannot both squeeze under the cap or the cooldown."""
    with transaction.atomic():
        # NO KEY: serialises submissions to this race without blocking the foreign-key checks of rows that
        # reference it (a worker writing a leaderboard entry), which deadlocked with the racer lock of scoring.
        race = Race.objects.select_for_update(no_key=True).get(pk=race.pk)
        if not racer_alias(user):
            raise RuleViolation("Choose your racer alias before you submit.", "no_alias")
        if not race_is_member(race, user):
            raise RuleViolation("Join this race with its invite code before you submit.", "not_member")
        phase = race.phase()
        if phase != RacePhase.OPEN:
            raise RuleViolation(f"This race is {phase}: submissions are accepted only while it is open.", phase)
        if model.owner_id != user.pk or model.status != RacerModel.Status.VALID:
            raise RuleViolation("Choose one of your own valid models.", "bad_model")
        allowance = submission_allowance(race, user)
        if allowance["remaining"] <= 0:
            raise RuleViolation(
                f"You have used all {race.max_submissions_per_racer} submissions to this race.", "limit"
            )
        if allowance["cooldown_remaining_s"] > 0:
            raise RuleViolation(
                f"Please wait {allowance['cooldown_remaining_s']} s before your next submission.", "cooldown"
            )
        last = Submission.objects.filter(race=race, user=user).aggregate(n=Max("sequence"))["n"] or 0
        submission = Submission.objects.create(race=race, user=user, model=model, sequence=last + 1)
        SubmissionEvent.objects.create(submission=submission, status=SubmissionStatus.QUEUED, note="Submitted")
        work_request(EVALUATION_KIND, submission.pk)
    return submission


def submission_allowance(race: Race, user) -> dict[str, int]:
    """Submissions left and seconds of cooldown left for ``user`` in ``race``."""
    mine = Submission.objects.filter(race=race, user=user)
    used = mine.count()
    last = mine.order_by("-submitted_at").values_list("submitted_at", flat=True).first()
    cooldown = 0
    if last is not None and race.submission_cooldown_s:
        cooldown = max(0, int(race.submission_cooldown_s - (timezone.now() - last).total_seconds() + 0.999))
    return {"used": used, "remaining": max(0, race.max_submissions_per_racer - used), "cooldown_remaining_s": cooldown}


def races_open_to(user, limit: int = 20) -> list[tuple[Race, dict[str, int]]]:
    """The open races ``user`` may submit to now (visible, a member, submissions left), closing soonest first,
    each with its ``submission_allowance``: what a model page offers to enter."""
    entries = []
    for race in races_in_phase(race_visible_to(user), RacePhase.OPEN)[: limit * 2]:
        if not race_is_member(race, user):
            continue  # staff see every community race without being in it
        allowance = submission_allowance(race, user)
        if allowance["remaining"] > 0:
            entries.append((race, allowance))
    return entries[:limit]


def submission_queue_position(submission: Submission) -> int | None:
    """1 = the next evaluation the workers take; None when the submission is not waiting."""
    return queue_position(EVALUATION_KIND, submission.pk)


def submission_queue_positions() -> dict[int, int]:
    """``{submission id: position}`` of every waiting submission, from one pass over the queue."""
    return queue_positions(EVALUATION_KIND)


def submission_transition(submission: Submission, status: str, note: str = "") -> None:
    """Move to ``status`` if the state machine allows it (caller holds the row lock)."""
    if status not in TRANSITIONS[submission.status]:
        raise RuleViolation(f"A {submission.status} submission cannot become {status}.", "bad_transition")
    submission.status = status
    now = timezone.now()
    if status == SubmissionStatus.QUEUED:
        submission.started_at = submission.finished_at = None
    elif status == SubmissionStatus.RUNNING:
        submission.started_at = now
    elif status in (SubmissionStatus.SCORED, SubmissionStatus.FAILED):
        submission.finished_at = now
    submission.save(update_fields=["status", "started_at", "finished_at", "failure_reason"])
    SubmissionEvent.objects.create(submission=submission, status=status, note=note)


def submission_mark_running(submission: Submission, attempt: EvaluationAttempt) -> Submission:
    """The evaluator started ``attempt``. A submission disqualified while it waited stays disqualified
    (its result will be ignored), so a worker is never stopped by an admin's decision."""
    with transaction.atomic():
        submission = Submission.objects.select_for_update().get(pk=submission.pk)
        if submission.status == SubmissionStatus.DISQUALIFIED:
            return submission
        if submission.status == SubmissionStatus.RUNNING:
            SubmissionEvent.objects.create(submission=submission, status=SubmissionStatus.RUNNING,
                                           note=f"Attempt {attempt.number} started")
        else:
            submission_transition(submission, SubmissionStatus.RUNNING, f"Attempt {attempt.number} started")
    return submission


def submission_record_result(submission: Submission, attempt: EvaluationAttempt, result: RaceResult) -> Run | None:
    """Record an evaluation result exactly once, score it with the race's ranking method and offer it to the
    racer's leaderboard row (replaced only by a strictly better score).

    ``result`` was validated by the evaluator: ``laps`` (LapMetrics dicts), ``trace`` (t, x, y, yaw, speed,
    status lists), ``simtrace_csv``, ``duration_s``. A second call for the same submission returns
    the first run unchanged. Returns None, storing nothing, when the submission was disqualified meanwhile or
    the laps cannot be scored (the submission then fails with the reason).
    """
    with transaction.atomic():
        submission = Submission.objects.select_for_update(of=("self",)).select_related("race").get(pk=submission.pk)
        existing = Run.objects.filter(submission=submission).first()
        if existing is not None:
            return existing
        if submission.status == SubmissionStatus.DISQUALIFIED:
            return None
        race = submission.race
        try:
            laps = [LapMetrics.from_dict(lap) for lap in result.laps]
            score = score_run(laps, race.ranking_method, race.minimum_laps)
        except (ScoringError, KeyError, TypeError) as error:
            submission.failure_reason = f"The evaluation result could not be scored: {error}"
            submission_transition(submission, SubmissionStatus.FAILED, submission.failure_reason)
            return None
        run = Run(
            submission=submission,
            laps=[lap.to_dict() for lap in laps],
            score=score.to_dict(),
            qualified=score.qualified,
            ranking_score_ms=score.ranking_score_ms,
            trace=result.trace,
            attempt_number=attempt.number,
            duration_s=float(result.duration_s),
        )
        if result.simtrace_csv:
            run.simtrace.save(f"{submission.pk}-0-iteration.csv", ContentFile(result.simtrace_csv.encode()),
                              save=False)
        run.save()
        note = "Qualified" if score.qualified else (
            f"Did not qualify: {score.consecutive_completed_laps} consecutive laps of {race.minimum_laps} needed"
        )
        submission_transition(submission, SubmissionStatus.SCORED, note)
        if score.qualified:
            leaderboard_offer(submission, score)
    return run


def submission_requeue(submission: Submission, note: str) -> None:
    """Back to the queue for another attempt (the evaluator lost or crashed the previous one)."""
    with transaction.atomic():
        submission = Submission.objects.select_for_update().get(pk=submission.pk)
        if submission.status == SubmissionStatus.RUNNING:
            submission_transition(submission, SubmissionStatus.QUEUED, note)


def submission_fail(submission: Submission, reason: str, attempt: EvaluationAttempt | None = None) -> None:
    """The evaluation failed for good (``reason`` is shown to the racer); no-op on a final submission."""
    with transaction.atomic():
        submission = Submission.objects.select_for_update().get(pk=submission.pk)
        if submission.status in FINAL:
            return  # a late failure report never overrides a final state
        submission.failure_reason = reason
        submission_transition(submission, SubmissionStatus.FAILED, reason)


def submission_disqualify(submission: Submission, reason: str = "Disqualified by the league admins") -> None:
    """Admin decision: the submission stops counting and the racer's row is rebuilt from their other runs."""
    with transaction.atomic():
        submission = Submission.objects.select_for_update().get(pk=submission.pk)
        submission.failure_reason = reason
        submission_transition(submission, SubmissionStatus.DISQUALIFIED, reason)
        work_cancel(EVALUATION_KIND, submission.pk, f"not evaluated: the submission is {SubmissionStatus.DISQUALIFIED}")
        leaderboard_recompute(submission.race, submission.user)


def submission_rerun(submission: Submission) -> Submission:
    """Evaluate again (admin): the old run is dropped, the racer's row recomputed and a new attempt queued.

    Also reinstates a disqualified submission. Refused while the submission is already queued or running.
    """
    with transaction.atomic():
        submission = Submission.objects.select_for_update().get(pk=submission.pk)
        if submission.status not in FINAL:
            raise RuleViolation(f"Submission {submission.pk} is {submission.status} already.", "bad_transition")
        if work_is_active(EVALUATION_KIND, submission.pk):
            raise RuleViolation(
                f"Submission {submission.pk} still has an evaluation in progress; re-run it once that ends.", "busy"
            )
        run_discard(submission)
        submission.failure_reason = ""
        submission_transition(submission, SubmissionStatus.QUEUED, "Re-run requested by an admin")
        leaderboard_recompute(submission.race, submission.user)
        work_request(EVALUATION_KIND, submission.pk)
    return submission
