"""What races asks the evaluator to run for the training console: training jobs, a target kind of
``evaluator.engine`` on its own Dramatiq queue ("training"), so hours of training never hold up an evaluation. The
rules are ``races.services.training``'s; this module turns the engine's callbacks into them."""

from __future__ import annotations

from collections.abc import Collection

from django.db.models.signals import post_delete
from django.urls import reverse

from evaluator.engine import (
    EvaluationAttempt,
    MatchResult,
    QueuePlace,
    RaceResult,
    SandboxWork,
    ScratchView,
    TargetLabel,
    TrainingFinished,
    register_target,
    work_forget,
)
from races.models import TrainingJob
from races.services.presenters import racer_name
from races.services.training import (
    training_closed,
    training_delete_files,
    training_fail,
    training_mark_running,
    training_quota,
    training_record_progress,
    training_record_result,
    training_requeue,
    training_sandbox_work,
    training_stop_requested,
)

TRAINING = TrainingJob.EVALUATION_KIND
TRAINING_QUEUE = "training"


class TrainingTarget:
    """A training job: owned by its racer (fair turns on the training queue), capped by the admin's quotas."""

    def queue_place(self, target_id: int) -> QueuePlace:
        return QueuePlace(owner_id=TrainingJob.objects.values_list("owner_id", flat=True).get(pk=target_id))

    def closed(self, target_ids: Collection[int]) -> dict[int, str]:
        return training_closed(target_ids)

    def sandbox_work(self, target_id: int) -> SandboxWork:
        return training_sandbox_work(TrainingJob.objects.select_related("cloned_from").get(pk=target_id))

    def describe(self, target_ids: Collection[int]) -> dict[int, TargetLabel]:
        jobs = TrainingJob.objects.filter(pk__in=target_ids).select_related("owner__racer")
        return {job.pk: TargetLabel(f"Training {job.pk}: {racer_name(job.owner)}'s {job.name} ({job.status})",
                                    reverse("admin:races_trainingjob_change", args=[job.pk]))
                for job in jobs}

    def on_running(self, target_id: int, attempt: EvaluationAttempt) -> None:
        training_mark_running(TrainingJob.objects.get(pk=target_id), attempt)

    def on_result(self, target_id: int, attempt: EvaluationAttempt,
                  result: RaceResult | MatchResult | TrainingFinished) -> None:
        assert isinstance(result, TrainingFinished), "a training job's result is a trained model"
        training_record_result(TrainingJob.objects.select_related("owner", "submit_to").get(pk=target_id),
                               attempt, result)

    def on_requeue(self, target_id: int, note: str) -> None:
        training_requeue(TrainingJob.objects.get(pk=target_id), note)

    def on_failure(self, target_id: int, reason: str, attempt: EvaluationAttempt, car: int | None = None) -> None:
        training_fail(TrainingJob.objects.get(pk=target_id), reason)

    def on_progress(self, target_id: int, attempt_number: int, scratch: ScratchView) -> None:
        training_record_progress(target_id, attempt_number, scratch)

    def stop_requested(self, target_id: int) -> bool:
        return training_stop_requested(target_id)

    def owner_cap(self) -> int:
        # Admission already holds a racer to the quota; the claim must not hold them back further.
        return max(1, training_quota().max_concurrent_per_racer)

    def capacity(self) -> int | None:
        return training_quota().max_concurrent_total


def _forget_training(sender, instance: TrainingJob, **kwargs) -> None:
    work_forget(TRAINING, instance.pk)
    training_delete_files(instance)


def register_training_target() -> None:
    """Called by ``RacesConfig.ready()``: training jobs become runnable on the "training" queue."""
    register_target(TRAINING, TrainingTarget(), queue=TRAINING_QUEUE)
    post_delete.connect(_forget_training, sender=TrainingJob, dispatch_uid="races.evaluation_forget_training")
