"""What races asks the evaluator to run: submissions (one model races alone), bracket matches (two models race
each other) and racers' own model evaluations (a model alone on a track of their choice). Each is a target kind of
``evaluator.engine``, registered in ``RacesConfig.ready()``: it builds the sandbox job from the race (a contract
object), names the archives, places the work in the queue, and turns the engine's callbacks into the services.
"""

from __future__ import annotations

from collections.abc import Collection

from django.db.models.signals import post_delete
from django.urls import reverse

from evaluator.engine import (
    EvaluationAttempt,
    MatchJob,
    MatchResult,
    ModelArchive,
    QueuePlace,
    RaceJob,
    RaceResult,
    SandboxWork,
    TargetAction,
    TargetActionRefused,
    TargetLabel,
    register_target,
    work_forget,
)
from races.models import BracketMatch, ModelEvaluation, Race, Submission
from races.services import race_objects_spec, track_sim
from races.services.brackets import (
    bracket_match_fail,
    bracket_match_mark_running,
    bracket_match_requeue,
    bracket_record_result,
)
from races.services.errors import RuleViolation
from races.services.model_evaluations import (
    model_evaluation_fail,
    model_evaluation_mark_running,
    model_evaluation_race,
    model_evaluation_record_result,
    model_evaluation_requeue,
)
from races.services.presenters import racer_name
from races.services.submissions import (
    submission_disqualify,
    submission_fail,
    submission_mark_running,
    submission_record_result,
    submission_requeue,
)
from sim.world.rules import RaceRules

SUBMISSION = Submission.EVALUATION_KIND
MATCH = BracketMatch.EVALUATION_KIND
MODEL_EVALUATION = ModelEvaluation.EVALUATION_KIND
MATCH_PRIORITY = 100  # matches are few and hold up a bracket: they go before every submission
PRACTICE_PRIORITY = -10  # a racer's own evaluations wait for the races' submissions
WALL_MARGIN_S = 60.0  # room for starting the sandbox, loading the model(s) and reporting
MATCH_CARS = ("a", "b")  # car A's and car B's model folders under the sandbox's model mount
MODEL_MOUNT = "/model"  # evaluator.sandbox.MODEL_MOUNT: where the job's model folders are seen
FINAL_SUBMISSION = (Submission.Status.SCORED, Submission.Status.FAILED, Submission.Status.DISQUALIFIED)
FINAL_MATCH = (BracketMatch.Status.DECIDED, BracketMatch.Status.BYE, BracketMatch.Status.FAILED)
FINAL_MODEL_EVALUATION = (ModelEvaluation.Status.SCORED, ModelEvaluation.Status.FAILED)


def wall_seconds(race: Race) -> float:
    """The race's time cap plus room for starting the sandbox, loading the model and reporting."""
    return float(race.time_cap_s) + WALL_MARGIN_S


def race_rules(race: Race) -> RaceRules:
    return RaceRules(total_laps=race.total_laps, off_track_penalty_s=race.off_track_penalty_s,
                     collision_penalty_s=race.collision_penalty_s, max_resets=race.max_resets,
                     time_cap_s=float(race.time_cap_s), continuous=True)


def race_job(race: Race) -> RaceJob:
    """The job of a submission to ``race``: everything the runner needs, nothing else."""
    return RaceJob(
        track_name=race.track.slug,
        track_rows=track_sim(race.track).waypoints.tolist(),  # file order; the runner applies the direction
        rules=race_rules(race),
        direction=race.direction,
        seed=0,  # evaluations are deterministic: the same archive on the same race gives the same result
        objects=race_objects_spec(race),  # boxes or bot cars in the direction raced; None: none
        model_dir=MODEL_MOUNT,
    )


def match_job(race: Race) -> MatchJob:
    """The job of a head-to-head match of ``race``: its track and rules, car A's and car B's models."""
    return MatchJob(
        track_name=race.track.slug,
        track_rows=track_sim(race.track).waypoints.tolist(),
        rules=race_rules(race),
        direction=race.direction,
        seed=0,
        model_dirs=(f"{MODEL_MOUNT}/{MATCH_CARS[0]}", f"{MODEL_MOUNT}/{MATCH_CARS[1]}"),
    )


class SubmissionTarget:
    """A submission: its model races the race alone; the racer owns it (fair turns, one running at a time)."""

    def queue_place(self, target_id: int) -> QueuePlace:
        return QueuePlace(owner_id=Submission.objects.values_list("user_id", flat=True).get(pk=target_id))

    def closed(self, target_ids: Collection[int]) -> dict[int, str]:
        statuses = dict(Submission.objects.filter(pk__in=target_ids).values_list("pk", "status"))
        return {pk: f"not evaluated: the submission is {statuses[pk]}" if pk in statuses
                else "not evaluated: the submission was deleted"
                for pk in target_ids if statuses.get(pk) in (*FINAL_SUBMISSION, None)}

    def sandbox_work(self, target_id: int) -> SandboxWork:
        submission = Submission.objects.select_related("race__track", "model").get(pk=target_id)
        return SandboxWork(job=race_job(submission.race), archives=[ModelArchive(submission.model.archive)],
                           wall_seconds=wall_seconds(submission.race))

    def describe(self, target_ids: Collection[int]) -> dict[int, TargetLabel]:
        submissions = Submission.objects.filter(pk__in=target_ids).select_related("race", "model", "user__racer")
        return {s.pk: TargetLabel(f"Submission {s.pk}: {racer_name(s.user)} in {s.race.name} "
                                  f"(model {s.model.name}, {s.status})",
                                  reverse("admin:races_submission_change", args=[s.pk]))
                for s in submissions}

    def on_running(self, target_id: int, attempt: EvaluationAttempt) -> None:
        submission_mark_running(Submission.objects.get(pk=target_id), attempt)

    def on_result(self, target_id: int, attempt: EvaluationAttempt, result: RaceResult | MatchResult) -> None:
        assert isinstance(result, RaceResult), "a submission's job is a RaceJob"
        submission_record_result(Submission.objects.get(pk=target_id), attempt, result)

    def on_requeue(self, target_id: int, note: str) -> None:
        submission_requeue(Submission.objects.get(pk=target_id), note)

    def on_failure(self, target_id: int, reason: str, attempt: EvaluationAttempt, car: int | None = None) -> None:
        submission_fail(Submission.objects.get(pk=target_id), reason, attempt)


class MatchTarget:
    """A bracket match: car A's and car B's models race each other; first in the queue, no owner."""

    def queue_place(self, target_id: int) -> QueuePlace:
        return QueuePlace(owner_id=None, priority=MATCH_PRIORITY)

    def closed(self, target_ids: Collection[int]) -> dict[int, str]:
        statuses = dict(BracketMatch.objects.filter(pk__in=target_ids).values_list("pk", "status"))
        return {pk: f"not raced: the match is {statuses[pk]}" if pk in statuses else "not raced: the match was deleted"
                for pk in target_ids if statuses.get(pk) in (*FINAL_MATCH, None)}

    def sandbox_work(self, target_id: int) -> SandboxWork:
        match = BracketMatch.objects.select_related("race__track", "submission_a__model",
                                                    "submission_b__model").get(pk=target_id)
        # Two cars, each a camera and a network per step: twice the compute, and the CPU limit to match.
        wall = 2 * float(match.race.time_cap_s) + WALL_MARGIN_S
        archives = [ModelArchive(submission.model.archive, folder=folder, car=car) for car, (submission, folder)
                    in enumerate(zip((match.submission_a, match.submission_b), MATCH_CARS, strict=True))]
        return SandboxWork(job=match_job(match.race), archives=archives, wall_seconds=wall,
                           min_cpu_seconds=int(wall))

    def describe(self, target_ids: Collection[int]) -> dict[int, TargetLabel]:
        matches = BracketMatch.objects.filter(pk__in=target_ids).select_related("race")
        return {m.pk: TargetLabel(f"Match {m.pk}: {m} ({m.status})",
                                  reverse("admin:races_bracketmatch_change", args=[m.pk]))
                for m in matches}

    def on_running(self, target_id: int, attempt: EvaluationAttempt) -> None:
        bracket_match_mark_running(BracketMatch.objects.get(pk=target_id), attempt)

    def on_result(self, target_id: int, attempt: EvaluationAttempt, result: RaceResult | MatchResult) -> None:
        assert isinstance(result, MatchResult), "a match's job is a MatchJob"
        bracket_record_result(BracketMatch.objects.get(pk=target_id), attempt, result)

    def on_requeue(self, target_id: int, note: str) -> None:
        bracket_match_requeue(BracketMatch.objects.get(pk=target_id), note)

    def on_failure(self, target_id: int, reason: str, attempt: EvaluationAttempt, car: int | None = None) -> None:
        bracket_match_fail(BracketMatch.objects.get(pk=target_id), reason, attempt, car=car)


class ModelEvaluationTarget:
    """A racer's evaluation of their own model on a track of their choice: raced alone like a submission, after
    every race's submissions, in turns with the other racers."""

    def queue_place(self, target_id: int) -> QueuePlace:
        owner = ModelEvaluation.objects.values_list("model__owner_id", flat=True).get(pk=target_id)
        return QueuePlace(owner_id=owner, priority=PRACTICE_PRIORITY)

    def closed(self, target_ids: Collection[int]) -> dict[int, str]:
        statuses = dict(ModelEvaluation.objects.filter(pk__in=target_ids).values_list("pk", "status"))
        return {pk: f"not evaluated: the evaluation is {statuses[pk]}" if pk in statuses
                else "not evaluated: the evaluation was deleted"
                for pk in target_ids if statuses.get(pk) in (*FINAL_MODEL_EVALUATION, None)}

    def sandbox_work(self, target_id: int) -> SandboxWork:
        evaluation = ModelEvaluation.objects.select_related("track", "model").get(pk=target_id)
        race = model_evaluation_race(evaluation)
        return SandboxWork(job=race_job(race), archives=[ModelArchive(evaluation.model.archive)],
                           wall_seconds=wall_seconds(race))

    def describe(self, target_ids: Collection[int]) -> dict[int, TargetLabel]:
        evaluations = ModelEvaluation.objects.filter(pk__in=target_ids).select_related("model__owner__racer", "track")
        return {e.pk: TargetLabel(f"Evaluation {e.pk}: {racer_name(e.model.owner)}'s model {e.model.name} on "
                                  f"{e.track.title} ({e.status})",
                                  reverse("admin:races_modelevaluation_change", args=[e.pk]))
                for e in evaluations}

    def on_running(self, target_id: int, attempt: EvaluationAttempt) -> None:
        model_evaluation_mark_running(ModelEvaluation.objects.get(pk=target_id), attempt)

    def on_result(self, target_id: int, attempt: EvaluationAttempt, result: RaceResult | MatchResult) -> None:
        assert isinstance(result, RaceResult), "an evaluation's job is a RaceJob"
        model_evaluation_record_result(ModelEvaluation.objects.get(pk=target_id), attempt, result)

    def on_requeue(self, target_id: int, note: str) -> None:
        model_evaluation_requeue(ModelEvaluation.objects.get(pk=target_id), note)

    def on_failure(self, target_id: int, reason: str, attempt: EvaluationAttempt, car: int | None = None) -> None:
        model_evaluation_fail(ModelEvaluation.objects.get(pk=target_id), reason)


def _disqualify(target_id: int) -> None:
    try:
        submission_disqualify(Submission.objects.get(pk=target_id))
    except RuleViolation as error:
        raise TargetActionRefused(error.message) from None


def _forget_submission(sender, instance: Submission, **kwargs) -> None:
    work_forget(SUBMISSION, instance.pk)


def _forget_match(sender, instance: BracketMatch, **kwargs) -> None:
    work_forget(MATCH, instance.pk)


def _forget_model_evaluation(sender, instance: ModelEvaluation, **kwargs) -> None:
    work_forget(MODEL_EVALUATION, instance.pk)


def register_evaluation_targets() -> None:
    """Called by ``RacesConfig.ready()``: submissions and matches become evaluable; their attempts go when they do
    (a deleted race's submissions and matches included)."""
    register_target(SUBMISSION, SubmissionTarget(), actions={
        "disqualify": TargetAction("Disqualify (removes it from the leaderboard)", _disqualify, done="Disqualified",
                                   noun="submission(s)"),
    })
    register_target(MATCH, MatchTarget())
    register_target(MODEL_EVALUATION, ModelEvaluationTarget())
    post_delete.connect(_forget_submission, sender=Submission, dispatch_uid="races.evaluation_forget_submission")
    post_delete.connect(_forget_match, sender=BracketMatch, dispatch_uid="races.evaluation_forget_match")
    post_delete.connect(_forget_model_evaluation, sender=ModelEvaluation,
                        dispatch_uid="races.evaluation_forget_model_evaluation")
