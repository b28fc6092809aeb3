"""Head-to-head brackets: seeding from the qualifying board, byes, matches decided by the evaluator, advancement.

While a HEAD_TO_HEAD race is open, submissions are qualifying runs (solo time trials under the race's rules)
and its leaderboard is the seeding board. Once it has closed and every qualifying run is final, the top
``bracket_size`` qualifiers are seeded 1 vs N, 2 vs N-1 ... in the usual order (1 and 2 can only meet in the
final); with fewer qualifiers the bracket shrinks to the next power of two and the top seeds get byes. Each
racer races with the submission of their board row at the start. A match is raced in the evaluator's
sandbox (``evaluator.engine.work_request``); ``sim.race.scoring.match_outcome`` decides it. When both
matches feeding a slot are decided, the next round's match is created and queued.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from evaluator.engine import EvaluationAttempt, MatchResult, attempts_of, work_cancel, work_request
from races.models import BracketMatch, Race, RacePhase, Submission
from races.services.errors import RuleViolation
from races.services.leaderboards import leaderboard_rows
from sim.race.scoring import LapMetrics, ScoringError, match_outcome

log = logging.getLogger(__name__)
MatchStatus = BracketMatch.Status
DECIDED = (MatchStatus.DECIDED, MatchStatus.BYE)
UNFINISHED_SUBMISSIONS = (Submission.Status.QUEUED, Submission.Status.RUNNING)
EVALUATION_KIND = BracketMatch.EVALUATION_KIND


def seeding_order(size: int) -> list[int]:
    """Seeds in bracket order, paired two by two: 8 -> [1, 8, 4, 5, 2, 7, 3, 6] (1 and 2 meet in the final)."""
    order = [1]
    while len(order) < size:
        order = [seed for top in order for seed in (top, 2 * len(order) + 1 - top)]
    return order


def bracket_slots(race: Race, qualifiers: int) -> int:
    """The bracket's size: the race's ``bracket_size``, or the next power of two when fewer racers qualified."""
    size = 2
    while size < min(qualifiers, race.bracket_size or 8):
        size *= 2
    return size


def bracket_start(race: Race, by=None) -> list[BracketMatch]:
    """Seed the first round from the qualifying board (after the close); byes are decided at once.

    ``by``: the person asking (the organiser of a community race, or staff); None for the worker's tick.
    """
    if by is not None and not getattr(by, "is_staff", False) and (
            not race.is_community or race.organiser_id != getattr(by, "pk", None)):
        raise RuleViolation("Only the organiser can start this race's bracket.", "forbidden")
    with transaction.atomic():
        race = Race.objects.select_for_update().get(pk=race.pk)
        if race.race_type != Race.RaceType.HEAD_TO_HEAD:
            raise RuleViolation("Only head-to-head races have a bracket.", "not_head_to_head")
        if race.phase() != RacePhase.CLOSED:
            raise RuleViolation("The bracket starts once qualifying has closed.", "not_closed")
        if race.bracket_matches.exists():
            raise RuleViolation("The bracket has already started.", "started")
        waiting = race.submissions.filter(status__in=UNFINISHED_SUBMISSIONS).count()
        if waiting:
            raise RuleViolation(f"{waiting} qualifying run(s) are still being evaluated: the bracket starts when "
                                "they are done.", "qualifying")
        rows = list(leaderboard_rows(race)[: race.bracket_size or 8])
        return bracket_seed(race, [(row.user, row.submission) for row in rows])


def bracket_seed(race: Race, entrants: list[tuple[Any, Submission]]) -> list[BracketMatch]:
    """Create the first round from ``entrants`` (racer and the submission whose model they race with), best seed
    first: the qualifying board's order for ``bracket_start``, the season standings' for a season final
    (``races.services.seasons``). Byes are decided at once. Call it in a transaction holding the race's lock."""
    if race.race_type != Race.RaceType.HEAD_TO_HEAD:
        raise RuleViolation("Only head-to-head races have a bracket.", "not_head_to_head")
    if race.bracket_matches.exists():
        raise RuleViolation("The bracket has already started.", "started")
    entrants = entrants[: race.bracket_size or 8]
    if len(entrants) < 2:
        raise RuleViolation(f"A bracket needs at least 2 qualifiers; this race has {len(entrants)}.", "too_few")
    size = bracket_slots(race, len(entrants))
    order = seeding_order(size)
    matches = []
    for slot in range(size // 2):
        top, bottom = sorted(order[2 * slot: 2 * slot + 2])
        user_a, submission_a = entrants[top - 1]
        user_b, submission_b = entrants[bottom - 1] if bottom <= len(entrants) else (None, None)
        match = BracketMatch.objects.create(
            race=race, round=1, slot=slot, racer_a=user_a, seed_a=top, submission_a=submission_a,
            racer_b=user_b, seed_b=bottom if user_b else None, submission_b=submission_b,
            status=MatchStatus.QUEUED if user_b else MatchStatus.BYE, winner=None if user_b else user_a,
            decided_at=None if user_b else timezone.now(),
        )
        matches.append(match)
    for match in matches:
        if match.status == MatchStatus.QUEUED:
            work_request(EVALUATION_KIND, match.pk)
    for match in matches:
        if match.status == MatchStatus.BYE:
            _advance(match)
    return matches


def brackets_start_due() -> int:
    """Start the bracket of every closed head-to-head race whose qualifying is over (the worker's periodic
    tick calls this; idempotent: a started bracket is never started twice). Returns how many started."""
    now = timezone.now()
    due = Race.objects.filter(Q(closes_at__lte=now) | Q(closed_early_at__lte=now),
                              race_type=Race.RaceType.HEAD_TO_HEAD).filter(
        ~Exists(BracketMatch.objects.filter(race=OuterRef("pk"))),
        ~Exists(Submission.objects.filter(race=OuterRef("pk"), status__in=UNFINISHED_SUBMISSIONS)),
    )
    started = 0
    for race in due:
        if race.leaderboard.count() < 2:
            continue  # nothing to race; the race page says why
        try:
            bracket_start(race)
            started += 1
        except RuleViolation as error:  # e.g. another worker started it a moment ago
            log.info("Bracket of race %s not started: %s", race.pk, error.message)
    return started


def bracket_match_mark_running(match: BracketMatch, attempt: EvaluationAttempt) -> None:
    BracketMatch.objects.filter(pk=match.pk, status=MatchStatus.QUEUED).update(status=MatchStatus.RUNNING)


def bracket_match_requeue(match: BracketMatch, note: str) -> None:
    """Back to the queue for another attempt (the evaluator lost or crashed the previous one)."""
    BracketMatch.objects.filter(pk=match.pk, status=MatchStatus.RUNNING).update(
        status=MatchStatus.QUEUED, failure_reason=note)


def bracket_record_result(match: BracketMatch, attempt: EvaluationAttempt | None, result: MatchResult) -> BracketMatch:
    """Decide a match from the evaluator's validated result (exactly once) and advance the winner.

    ``result``: ``cars`` (car A's and car B's laps and trace), ``lanes``, ``duration_s``. The winner is decided
    here, on the trusted side, from the laps.
    """
    with transaction.atomic():
        Race.objects.select_for_update().filter(pk=match.race_id).first()  # serialises advancement per race
        match = BracketMatch.objects.select_for_update().select_related("race").get(pk=match.pk)
        if match.status in DECIDED:
            return match
        try:
            cars = [[LapMetrics.from_dict(lap) for lap in car.laps] for car in result.cars]
            outcome = match_outcome(cars[0], cars[1], match.race.total_laps)
        except (ScoringError, KeyError, TypeError, IndexError) as error:
            return _fail(match, f"The match result could not be scored: {error}")
        match.result = {
            "outcome": outcome.to_dict(),
            "lanes": list(result.lanes),
            "cars": [{"laps": [lap.to_dict() for lap in laps], "trace": car.trace}
                     for laps, car in zip(cars, result.cars, strict=True)],
            "duration_s": float(result.duration_s),
            "attempt": attempt.number if attempt is not None else None,
        }
        _decide(match, match.racer_a if outcome.winner == 0 else match.racer_b)
    return match


def bracket_match_fail(match: BracketMatch, reason: str, attempt: EvaluationAttempt | None = None,
                       car: int | None = None) -> None:
    """The evaluation failed for good. If one car's model was at fault (``car`` 0 or 1), the other car wins by
    forfeit; otherwise the match is failed (an admin can re-run it)."""
    with transaction.atomic():
        Race.objects.select_for_update().filter(pk=match.race_id).first()
        match = BracketMatch.objects.select_for_update().get(pk=match.pk)
        if match.status in DECIDED or match.status == MatchStatus.FAILED:
            return
        if car in (0, 1):
            match.result = {"forfeit": car, "reason": reason[:2000]}
            _decide(match, match.racer_b if car == 0 else match.racer_a)
        else:
            _fail(match, reason)


def bracket_match_rerun(match: BracketMatch) -> BracketMatch:
    """Race a decided or failed match again (admin). Refused once the round after it has started; a next-round
    match still waiting is withdrawn and made again when this one is decided."""
    with transaction.atomic():
        Race.objects.select_for_update().filter(pk=match.race_id).first()
        match = BracketMatch.objects.select_for_update().get(pk=match.pk)
        if match.status == MatchStatus.BYE:
            raise RuleViolation("A bye has nothing to race.", "bye")
        if match.status not in (MatchStatus.DECIDED, MatchStatus.FAILED):
            raise RuleViolation(f"This match is {match.status}: only a decided or failed match can be re-run.",
                                "busy")
        if attempts_of(EVALUATION_KIND, match.pk).filter(status=EvaluationAttempt.Status.RUNNING).exists():
            raise RuleViolation("This match is being raced right now; re-run it once that ends.", "busy")
        # A waiting attempt of a match decided meanwhile would never run: the re-run's attempt replaces it.
        work_cancel(EVALUATION_KIND, match.pk, "replaced by a re-run")
        following = _next_match(match)
        if following is not None:
            started = attempts_of(EVALUATION_KIND, following.pk).exclude(
                status=EvaluationAttempt.Status.PENDING).exists()
            if following.status != MatchStatus.QUEUED or started:
                raise RuleViolation("The next round's match has already been raced or is racing: this match can "
                                    "no longer be re-run.", "too_late")
            following.delete()  # its waiting attempt goes with it (races.evaluation_targets forgets it)
        match.status, match.winner, match.result, match.decided_at = MatchStatus.QUEUED, None, None, None
        match.failure_reason = ""
        match.save(update_fields=["status", "winner", "result", "decided_at", "failure_reason"])
        work_request(EVALUATION_KIND, match.pk)
    return match


def bracket_matches(race: Race) -> QuerySet[BracketMatch]:
    return BracketMatch.objects.filter(race=race).select_related(
        "racer_a__racer", "racer_b__racer", "winner__racer").order_by("round", "slot")


def bracket_champion(race: Race):
    """The winner of the final, or None while the bracket is not over."""
    matches = list(bracket_matches(race))
    if not matches:
        return None
    rounds = bracket_round_count(matches)
    final = next((m for m in matches if m.round == rounds), None)
    return final.winner if final is not None and final.status in DECIDED else None


def _decide(match: BracketMatch, winner) -> None:
    match.status, match.winner, match.decided_at, match.failure_reason = MatchStatus.DECIDED, winner, timezone.now(), ""
    match.save(update_fields=["status", "winner", "decided_at", "result", "failure_reason"])
    _advance(match)


def _fail(match: BracketMatch, reason: str) -> BracketMatch:
    match.status, match.failure_reason = MatchStatus.FAILED, reason[:2000]
    match.save(update_fields=["status", "failure_reason"])
    return match


def _advance(match: BracketMatch) -> BracketMatch | None:
    """Create and queue the next round's match once both matches feeding it are decided (caller holds the
    race row's lock, so two matches decided at once cannot both create it)."""
    if match.round >= bracket_round_count(list(BracketMatch.objects.filter(race_id=match.race_id, round=1))):
        return None  # the final: the bracket is over
    siblings = list(BracketMatch.objects.filter(race_id=match.race_id, round=match.round,
                                                slot__in=[match.slot, match.slot ^ 1]))
    if len(siblings) < 2 or any(m.status not in DECIDED for m in siblings):
        return None
    entrants = sorted((_winner_entry(m) for m in siblings), key=lambda entry: entry[1])
    (user_a, seed_a, submission_a), (user_b, seed_b, submission_b) = entrants
    following, created = BracketMatch.objects.get_or_create(
        race_id=match.race_id, round=match.round + 1, slot=match.slot // 2,
        defaults={"racer_a": user_a, "seed_a": seed_a, "submission_a": submission_a, "racer_b": user_b,
                  "seed_b": seed_b, "submission_b": submission_b},
    )
    if created:
        work_request(EVALUATION_KIND, following.pk)
    return following


def _winner_entry(match: BracketMatch) -> tuple[Any, int, Submission]:
    if match.winner_id == match.racer_a_id:
        return match.racer_a, match.seed_a, match.submission_a
    return match.racer_b, match.seed_b, match.submission_b


def _next_match(match: BracketMatch) -> BracketMatch | None:
    return BracketMatch.objects.filter(race_id=match.race_id, round=match.round + 1, slot=match.slot // 2).first()


def bracket_round_count(matches: list[BracketMatch]) -> int:
    """How many rounds the bracket of these matches has (from the size of its first round)."""
    first_round = sum(1 for m in matches if m.round == 1)
    return max(1, (2 * first_round).bit_length() - 1)
