"""Evaluating a model on any track, outside every race (the console's "Evaluate"): creation with its limits, the
evaluator's callbacks (running, result, requeue, failure) and what the page and the API show.

The evaluation runs under the rules of a race with its settings (``model_evaluation_race``), so the job,
the scoring and the pictures are the same code as a submission's; its results belong to the racer alone.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from evaluator.engine import EvaluationAttempt, RaceResult, queue_position, work_request
from races.models import ModelEvaluation, Race, RacerModel, Track
from races.services.errors import RuleViolation
from races.services.presenters import lap_rows
from races.services.race_settings import race_box_corners, race_with_type_defaults
from sim.race.scoring import LapMetrics, ScoringError, format_lap_time, score_run

Status = ModelEvaluation.Status
EVALUATION_KIND = ModelEvaluation.EVALUATION_KIND
# Evaluations a racer may have waiting or running at once: enough to compare tracks, not enough to crowd the
# queue (race submissions go first anyway: races/evaluation_targets.py).
MAX_UNFINISHED_PER_RACER = 3
EVALUABLE_RACE_TYPES = (Race.RaceType.TIME_TRIAL, Race.RaceType.OBJECT_AVOIDANCE, Race.RaceType.HEAD_TO_BOT)
UNFINISHED = (Status.QUEUED, Status.RUNNING)


def model_evaluation_race(evaluation: ModelEvaluation) -> Race:
    """The rules it runs under, as an unsaved race: its settings, the league's defaults for everything else
    (penalties, the race type's obstacles), and a minute a lap at least, so a slow car's ten laps do not run into a
    race's 3-minute cap."""
    values = race_with_type_defaults({"race_type": evaluation.race_type})
    return Race(name=f"Evaluation of {evaluation.model.name}", track=evaluation.track, direction=evaluation.direction,
                total_laps=evaluation.total_laps, time_cap_s=max(180, 60 * evaluation.total_laps), **values)


def model_evaluation_create(owner, model: RacerModel, track: Track, direction: str,
                            race_type: str = Race.RaceType.TIME_TRIAL, total_laps: int = 3) -> ModelEvaluation:
    """Queue an evaluation of the racer's own ``model``; ``RuleViolation`` (with the field) says what is wrong."""
    if model.owner_id != owner.pk or model.status != RacerModel.Status.VALID:
        raise RuleViolation("Choose one of your own models.", "not_your_model", field="model")
    if direction not in Race.Direction.values:
        raise RuleViolation(f"Direction must be one of {', '.join(Race.Direction.values)}.", field="direction")
    if not track.supports(direction):
        raise RuleViolation(f"{track.title} is raced {track.get_directions_display().lower()}.", field="direction")
    if race_type not in EVALUABLE_RACE_TYPES:
        raise RuleViolation("A model is evaluated alone: time trial, object avoidance or head to bot.",
                            field="race_type")
    if not 1 <= total_laps <= ModelEvaluation.MAX_LAPS:
        raise RuleViolation(f"Evaluate 1 to {ModelEvaluation.MAX_LAPS} laps.", field="total_laps")
    with transaction.atomic():
        # The racer's row serialises their requests, so two at once cannot both slip under the limit.
        get_user_model().objects.select_for_update(no_key=True).filter(pk=owner.pk).first()
        waiting = ModelEvaluation.objects.filter(model__owner=owner, status__in=UNFINISHED).count()
        if waiting >= MAX_UNFINISHED_PER_RACER:
            raise RuleViolation(f"You have {waiting} evaluations waiting or running: start another when one of "
                                "them is done.", "too_many_evaluations")
        evaluation = ModelEvaluation.objects.create(model=model, track=track, direction=direction,
                                                    race_type=race_type, total_laps=total_laps)
        work_request(EVALUATION_KIND, evaluation.pk)
    return evaluation


def model_evaluations_of(owner):
    return ModelEvaluation.objects.filter(model__owner=owner).select_related("model", "track")


def model_evaluation_queue_position(evaluation: ModelEvaluation) -> int | None:
    """1 = the next evaluation the workers take; None when it is not waiting."""
    return queue_position(EVALUATION_KIND, evaluation.pk)


def model_evaluation_mark_running(evaluation: ModelEvaluation, attempt: EvaluationAttempt) -> None:
    ModelEvaluation.objects.filter(pk=evaluation.pk, status__in=UNFINISHED).update(
        status=Status.RUNNING, started_at=attempt.started_at or timezone.now())


def model_evaluation_record_result(evaluation: ModelEvaluation, attempt: EvaluationAttempt,
                                   result: RaceResult) -> ModelEvaluation:
    """Record the result once (a second call changes nothing), scored as a race with its settings would be."""
    with transaction.atomic():
        evaluation = ModelEvaluation.objects.select_for_update().select_related("track", "model").get(pk=evaluation.pk)
        if evaluation.status not in UNFINISHED:
            return evaluation
        race = model_evaluation_race(evaluation)
        try:
            laps = [LapMetrics.from_dict(lap) for lap in result.laps]
            score = score_run(laps, race.ranking_method, race.minimum_laps)
        except (ScoringError, KeyError, TypeError) as error:
            return _finish(evaluation, Status.FAILED, f"The evaluation result could not be scored: {error}")
        evaluation.laps = [lap.to_dict() for lap in laps]
        evaluation.score = score.to_dict()
        evaluation.trace = result.trace
        evaluation.duration_s = float(result.duration_s)
        if result.simtrace_csv:
            evaluation.simtrace.save(f"evaluation-{evaluation.pk}-simtrace.csv",
                                     ContentFile(result.simtrace_csv.encode()), save=False)
        return _finish(evaluation, Status.SCORED)


def model_evaluation_requeue(evaluation: ModelEvaluation, note: str) -> None:
    ModelEvaluation.objects.filter(pk=evaluation.pk, status__in=UNFINISHED).update(status=Status.QUEUED,
                                                                                   started_at=None)


def model_evaluation_fail(evaluation: ModelEvaluation, reason: str) -> None:
    with transaction.atomic():
        evaluation = ModelEvaluation.objects.select_for_update().get(pk=evaluation.pk)
        if evaluation.status in UNFINISHED:
            _finish(evaluation, Status.FAILED, reason)


def _finish(evaluation: ModelEvaluation, status: str, reason: str = "") -> ModelEvaluation:
    evaluation.status, evaluation.failure_reason, evaluation.finished_at = status, reason, timezone.now()
    evaluation.save()
    return evaluation


def model_evaluation_summary(evaluation: ModelEvaluation, position: int | None = None,
                             include_trace: bool = True) -> dict[str, Any]:
    """Status and, once done, laps and score: the page's live poll and the API (the replay reads the same shape
    as a submission's: ``run.trace`` and ``run.boxes``)."""
    race = model_evaluation_race(evaluation)
    summary: dict[str, Any] = {
        "id": evaluation.pk,
        "model": evaluation.model.name,
        "model_id": evaluation.model_id,
        "track": evaluation.track.slug,
        "direction": evaluation.direction,
        "race_type": evaluation.race_type,
        "total_laps": evaluation.total_laps,
        "status": evaluation.status,
        "queue_position": position if evaluation.status == Status.QUEUED else None,
        "failure_reason": evaluation.failure_reason,
        "created_at": evaluation.created_at.isoformat(),
        "finished_at": evaluation.finished_at.isoformat() if evaluation.finished_at else None,
        "run": None,
    }
    if evaluation.status == Status.SCORED:
        score = evaluation.score
        summary["run"] = {
            "score": score,
            "best_lap": format_lap_time(score["best_lap_ms"]) if score.get("best_lap_ms") else None,
            "laps": lap_rows(evaluation.laps, race),
            "duration_s": evaluation.duration_s,
        }
        if include_trace:
            summary["run"]["trace"] = evaluation.trace
            summary["run"]["boxes"] = [corners.round(3).tolist() for corners in race_box_corners(race)]
    return summary
