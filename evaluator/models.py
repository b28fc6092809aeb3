"""Evaluation attempts: the database record that makes sandboxed jobs survive lost messages and dead workers."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class AttemptStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired (worker lost)"
    SUPERSEDED = "superseded", "Superseded"


class EvaluationAttempt(models.Model):
    """One try at a target's sandboxed job: a submission to evaluate, a bracket match to race, or any other kind a
    domain app registers (``evaluator.engine.register_target``). The target is named generically (kind + id), so the
    evaluator knows no domain model. A worker owns the attempt while its lease is fresh (heartbeats extend it); the
    reaper expires stale leases and opens the next attempt. Only the current owner may record a result."""

    Status = AttemptStatus
    ACTIVE = (Status.PENDING, Status.RUNNING)

    target_kind = models.CharField(max_length=32)
    target_id = models.BigIntegerField()
    # Denormalised when the attempt is requested, so the fair order needs no join into the domain's tables:
    # the owner (a user id: round robin and the per-owner cap; None = neither) and the priority (higher first).
    owner_id = models.IntegerField(null=True, blank=True, db_index=True)
    priority = models.IntegerField(default=0)
    number = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    # A fresh token per claim: a result is accepted only with the token of the current claim.
    lease_token = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker_id = models.CharField(max_length=128, blank=True)
    error = models.TextField(blank=True)
    crash_signature = models.CharField(max_length=200, blank=True)
    # Where the time went (runner phases and the whole sandbox), and which sandbox ran it: for operators.
    timings = models.JSONField(default=dict, blank=True)
    sandbox_mode = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    enqueued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(target_kind=""),
                name="evaluator_attempt_has_target",
                violation_error_message="An attempt names the kind of its target.",
            ),
            models.UniqueConstraint(fields=["target_kind", "target_id", "number"],
                                    name="evaluator_attempt_number_unique"),
            # At most one live attempt per target: the heart of "evaluated exactly once".
            models.UniqueConstraint(
                fields=["target_kind", "target_id"],
                condition=models.Q(status__in=[AttemptStatus.PENDING, AttemptStatus.RUNNING]),
                name="evaluator_one_active_attempt",
            ),
        ]

    def __str__(self) -> str:
        return f"Attempt {self.number} of {self.target_kind} {self.target_id} ({self.status})"

    @staticmethod
    def new_token() -> uuid.UUID:
        return uuid.uuid4()


class EvaluationQueue(EvaluationAttempt):
    """The admin's view of the attempts waiting or running, in the order workers take them (no table of its own)."""

    class Meta:
        proxy = True
        verbose_name = "queued evaluation"
        verbose_name_plural = "evaluation queue"
