"""Evaluation attempts: the database record that makes evaluations survive lost messages and dead workers."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class EvaluationAttempt(models.Model):
    """One try at evaluating a submission, or at racing a head-to-head bracket match (exactly one of the two).
    A worker owns it while its lease is fresh (heartbeats extend it); the reaper expires stale leases and opens
    the next attempt. Only the current owner may record a result."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired (worker lost)"
        SUPERSEDED = "superseded", "Superseded"

    ACTIVE = (Status.PENDING, Status.RUNNING)

    submission = models.ForeignKey("races.Submission", on_delete=models.CASCADE, related_name="attempts",
                                   null=True, blank=True)
    match = models.ForeignKey("races.BracketMatch", on_delete=models.CASCADE, related_name="attempts",
                              null=True, blank=True)
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
                condition=models.Q(submission__isnull=False, match__isnull=True)
                | models.Q(submission__isnull=True, match__isnull=False),
                name="evaluator_attempt_one_target",
                violation_error_message="An attempt evaluates either a submission or a bracket match.",
            ),
            models.UniqueConstraint(fields=["submission", "number"], name="evaluator_attempt_number_unique"),
            models.UniqueConstraint(fields=["match", "number"], name="evaluator_match_attempt_number_unique"),
            # At most one live attempt per submission (or match): the heart of "evaluated exactly once".
            models.UniqueConstraint(
                fields=["submission"],
                condition=models.Q(status__in=["pending", "running"]),
                name="evaluator_one_active_attempt",
            ),
            models.UniqueConstraint(
                fields=["match"],
                condition=models.Q(status__in=["pending", "running"]),
                name="evaluator_one_active_match_attempt",
            ),
        ]

    def __str__(self) -> str:
        target = f"submission {self.submission_id}" if self.match_id is None else f"match {self.match_id}"
        return f"Attempt {self.number} of {target} ({self.status})"

    @staticmethod
    def new_token() -> uuid.UUID:
        return uuid.uuid4()
