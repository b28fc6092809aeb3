"""The evaluator's public surface: everything a domain app (races, later a training console) uses.

The evaluator is a generic engine for sandboxed jobs. A domain app registers a *target kind* (``register_target``)
with an object implementing ``EvaluationTarget``: given a target id it supplies the sandbox job (a contract object,
``evaluator.contract``), the model archives to put into the sandbox, the target's place in the queue (owner and
priority), whether the target is still open, and it receives the callbacks (running, result, requeue, failure).
The engine owns the rest: attempts, leases, heartbeats, the reaper, fairness, queue positions, the sandbox and the
runner. It imports nothing from any domain app.

Fair order: higher priority first (oldest first within it); among attempts of the same priority, round robin by
owner (each owner's first waiting attempt, then each owner's second, ...; within a round the owner served longest
ago goes first, and an owner with a running attempt counts as served now). Attempts without an owner take no turn.
"""

from __future__ import annotations

import functools
import logging
import tempfile
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from django.core.files import File
from django.db import transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from evaluator.config import EvaluatorSettings, evaluator_settings
from evaluator.contract import (
    CarRun,
    Job,
    MatchJob,
    MatchResult,
    RaceJob,
    RaceResult,
    TrainingJob,
    TrainingOutcome,
    TrainingTrack,
)
from evaluator.models import EvaluationAttempt
from evaluator.sandbox import SandboxLimits, SandboxOutcome, SandboxUnavailable, ScratchView, run_sandboxed

__all__ = [
    "DEFAULT_QUEUE",
    "CarRun",
    "EvaluationAttempt",
    "EvaluationTarget",
    "EvaluatorSettings",
    "Job",
    "MatchJob",
    "MatchResult",
    "ModelArchive",
    "QueuePlace",
    "RaceJob",
    "RaceResult",
    "SandboxFile",
    "SandboxLimits",
    "SandboxOutcome",
    "SandboxUnavailable",
    "SandboxWork",
    "ScratchView",
    "TargetAction",
    "TargetActionRefused",
    "TargetLabel",
    "TrainingFinished",
    "TrainingJob",
    "TrainingOutcome",
    "TrainingTrack",
    "UnknownTargetKind",
    "attempts_of",
    "evaluator_settings",
    "kinds_in_queue",
    "nudge_workers",
    "pending_in_fair_order",
    "queue_of",
    "queue_position",
    "queue_positions",
    "register_target",
    "registered_kinds",
    "registered_queues",
    "sandbox_run",
    "target_for",
    "unregister_target",
    "work_cancel",
    "work_forget",
    "work_is_active",
    "work_request",
]

log = logging.getLogger(__name__)
AttemptStatus = EvaluationAttempt.Status
ALREADY_FINAL = "not evaluated: it was already final"
DEFAULT_QUEUE = "evaluations"  # the Dramatiq queue of the kinds that name none (submissions, matches)


# ------------------------------------------------------------------------------------------ the target protocol
@dataclass(frozen=True)
class QueuePlace:
    """Where a target's attempts stand in the queue: ``owner_id`` (a user id) takes turns with other owners and is
    held to the per-owner concurrency cap (None: neither); higher ``priority`` goes first."""

    owner_id: int | None = None
    priority: int = 0


@dataclass(frozen=True)
class ModelArchive:
    """A model archive to validate into the sandbox's model mount (``folder`` "" = the mount itself, or a
    sub-folder such as a match's "a" and "b"). ``car`` is named in the failure when this archive is refused."""

    file: File
    folder: str = ""
    car: int | None = None


@dataclass(frozen=True)
class SandboxFile:
    """A stored file put as it is at ``path`` (relative) under the sandbox's model mount: files the same kind of
    job wrote before (a training's last stored checkpoint), read only by the run, never by the worker."""

    file: File
    path: str


@dataclass(frozen=True)
class SandboxWork:
    """What a claimed attempt runs: the job, the archives (and plain files), and the sandbox's wall clock (and
    CPU floor). ``scratch_bytes``: a larger private scratch than the default (a training's checkpoints);
    ``progress_every_s``: while the run goes, the target's ``on_progress`` reads its scratch this often."""

    job: Job
    archives: list[ModelArchive]
    wall_seconds: float
    min_cpu_seconds: int = 0  # the sandbox's CPU limit is at least this (a match races two networks)
    files: list[SandboxFile] = field(default_factory=list)
    scratch_bytes: int | None = None
    progress_every_s: float | None = None


@dataclass(frozen=True)
class TrainingFinished:
    """A training job's result as the target receives it: the runner's validated outcome and the exported model,
    already validated by ``sim.io.archive`` (a file on the worker, gone once ``on_result`` returns)."""

    outcome: TrainingOutcome
    archive: Path

    @property
    def timings(self) -> dict[str, float]:
        return self.outcome.timings


@dataclass(frozen=True)
class TargetLabel:
    """How the admin shows a target: a line of text and, when there is one, the admin page to open."""

    text: str
    url: str | None = None


class TargetActionRefused(Exception):
    """A target's admin action refused one target; the message is shown to the admin."""


@dataclass(frozen=True)
class TargetAction:
    """An admin action a target kind offers on the evaluation queue page (e.g. disqualify a submission)."""

    description: str
    run: Callable[[int], None]  # given a target id; raises TargetActionRefused to refuse
    done: str = "Done"  # the success message's verb ("Disqualified 2 submission(s).")
    noun: str = "target(s)"


class EvaluationTarget(Protocol):
    """What a domain app supplies for one kind of target. Callbacks run inside the engine's transaction."""

    def queue_place(self, target_id: int) -> QueuePlace: ...

    def closed(self, target_ids: Collection[int]) -> dict[int, str]:
        """The targets among ``target_ids`` that must no longer run (final, or gone), each with the reason."""
        ...

    def sandbox_work(self, target_id: int) -> SandboxWork: ...

    def describe(self, target_ids: Collection[int]) -> dict[int, TargetLabel]: ...

    def on_running(self, target_id: int, attempt: EvaluationAttempt) -> None: ...

    def on_result(self, target_id: int, attempt: EvaluationAttempt, result: RaceResult | MatchResult) -> None: ...

    def on_requeue(self, target_id: int, note: str) -> None: ...

    def on_failure(self, target_id: int, reason: str, attempt: EvaluationAttempt, car: int | None = None) -> None:
        """Failed for good. ``car`` (0 or 1) names the model at fault in a two-model job."""
        ...


class LongRunningTarget(EvaluationTarget, Protocol):
    """A target whose runs last long (training): the engine also calls these, when the kind defines them.

    ``on_progress(target_id, attempt_number, scratch)`` every ``SandboxWork.progress_every_s`` while the run goes
    and once when it has ended (before ``on_result``), with the run's scratch (untrusted files, read through
    ``ScratchView``); it is called outside any transaction, so a slow copy to storage holds no lock.
    ``stop_requested(target_id)``: True makes the worker interrupt the run (SIGINT: a clean stop).
    ``owner_cap()``: running attempts per owner on this kind's queue (default ``max_concurrent_per_racer``);
    ``capacity()``: running attempts of this kind at most (None: no limit but the workers)."""

    def on_progress(self, target_id: int, attempt_number: int, scratch: ScratchView) -> None: ...

    def stop_requested(self, target_id: int) -> bool: ...

    def owner_cap(self) -> int: ...

    def capacity(self) -> int | None: ...


@dataclass
class _Registry:
    targets: dict[str, EvaluationTarget] = field(default_factory=dict)
    actions: dict[str, dict[str, TargetAction]] = field(default_factory=dict)
    queues: dict[str, str] = field(default_factory=dict)


_registry = _Registry()


class UnknownTargetKind(LookupError):
    def __init__(self, kind: str) -> None:
        known = ", ".join(sorted(_registry.targets)) or "none"
        super().__init__(f"No evaluation target is registered for the kind {kind!r} (registered: {known}); "
                         "a domain app registers its kinds with evaluator.engine.register_target in its ready()")


def register_target(kind: str, target: EvaluationTarget, actions: dict[str, TargetAction] | None = None,
                    queue: str = DEFAULT_QUEUE) -> None:
    """Make ``kind`` evaluable (idempotent: registering a kind again replaces it). ``actions``: the admin actions
    the evaluation queue page offers for targets of this kind. ``queue``: the Dramatiq queue whose workers run it
    (a kind of long jobs gets its own, so they never hold up evaluations; an operator sets the worker processes of
    each queue). Workers of a queue claim only its kinds; fair turns and owner caps count within the queue."""
    if not kind or len(kind) > EvaluationAttempt._meta.get_field("target_kind").max_length:
        raise ValueError(f"a target kind is a short non-empty name, not {kind!r}")
    if not queue or not queue.replace("_", "").isalnum():
        raise ValueError(f"a queue is a short name of letters, digits and underscores, not {queue!r}")
    _registry.targets[kind] = target
    _registry.actions[kind] = dict(actions or {})
    _registry.queues[kind] = queue


def unregister_target(kind: str) -> None:
    _registry.targets.pop(kind, None)
    _registry.actions.pop(kind, None)
    _registry.queues.pop(kind, None)


def queue_of(kind: str) -> str:
    """The Dramatiq queue whose workers run ``kind`` (an unregistered kind: the default one)."""
    return _registry.queues.get(kind, DEFAULT_QUEUE)


def kinds_in_queue(queue: str) -> list[str]:
    return sorted(kind for kind in _registry.targets if queue_of(kind) == queue)


def registered_queues() -> list[str]:
    return sorted({DEFAULT_QUEUE, *_registry.queues.values()})


def target_for(kind: str) -> EvaluationTarget:
    try:
        return _registry.targets[kind]
    except KeyError:
        raise UnknownTargetKind(kind) from None


def registered_kinds() -> list[str]:
    return sorted(_registry.targets)


def target_actions() -> dict[str, dict[str, TargetAction]]:
    """``{kind: {action name: action}}`` of every registered kind (for the queue admin)."""
    return {kind: dict(actions) for kind, actions in _registry.actions.items()}


# ---------------------------------------------------------------------------------------- requesting the work
def work_request(kind: str, target_id: int) -> EvaluationAttempt:
    """Open the next attempt for the target in the caller's transaction; nudge a worker after commit."""
    return attempt_open(kind, target_id, target_for(kind).queue_place(target_id))


def attempt_open(kind: str, target_id: int, place: QueuePlace) -> EvaluationAttempt:
    """The next attempt of a target, at ``place`` in the queue (the engine's retries reuse the previous place)."""
    last = attempts_of(kind, target_id).aggregate(n=Max("number"))["n"] or 0
    attempt = EvaluationAttempt.objects.create(target_kind=kind, target_id=target_id, number=last + 1,
                                               owner_id=place.owner_id, priority=place.priority)
    # robust: a broker outage must not turn a committed request into an error page; the reaper re-nudges.
    transaction.on_commit(functools.partial(nudge_workers, queue_of(kind)), robust=True)
    return attempt


def work_cancel(kind: str, target_id: int, reason: str) -> int:
    """Supersede the target's waiting attempt (e.g. a disqualified submission, a match replaced by a re-run);
    a running one finishes, and the target decides what its result means. Returns how many were superseded."""
    return attempts_of(kind, target_id).filter(status=AttemptStatus.PENDING).update(
        status=AttemptStatus.SUPERSEDED, error=reason, finished_at=timezone.now())


def work_forget(kind: str, target_id: int) -> int:
    """The target was deleted: its attempts go with it (a running attempt's late result is then refused)."""
    deleted, _ = attempts_of(kind, target_id).delete()
    return deleted


def work_is_active(kind: str, target_id: int) -> bool:
    """Whether the target has an attempt waiting or running."""
    return attempts_of(kind, target_id).filter(status__in=EvaluationAttempt.ACTIVE).exists()


def attempts_of(kind: str, target_id: int) -> QuerySet[EvaluationAttempt]:
    return EvaluationAttempt.objects.filter(target_kind=kind, target_id=target_id)


def nudge_workers(queue: str = DEFAULT_QUEUE) -> bool:
    """Tell some worker of ``queue`` there may be work; False (logged) when the broker is unreachable."""
    from evaluator.actors import actor_for  # the actors import the engine, never the reverse at import time

    try:
        actor_for(queue).send()
    except Exception as error:  # Redis/RabbitMQ down: the attempt is safe in the database, the reaper retries
        log.warning("Could not nudge an evaluation worker (%s); the reaper will retry", error)
        return False
    return True


# ------------------------------------------------------------------------------------------------ fair order
def pending_in_fair_order(limit: int | None = None, queue: str | None = None) -> list[EvaluationAttempt]:
    """Pending attempts in the order workers will take them (see the module's docstring); attempts whose target
    is no longer open, or whose kind no app registered, are left out. ``queue``: only that queue's kinds (turns
    are then counted within the queue: a racer's training does not hold back their evaluations)."""
    pending = EvaluationAttempt.objects.filter(status=AttemptStatus.PENDING).order_by("created_at", "pk")
    started = EvaluationAttempt.objects.all()
    if queue is not None:
        kinds = [kind for kind in {*_registry.targets, *_pending_ids_by_kind()} if queue_of(kind) == queue]
        pending, started = pending.filter(target_kind__in=kinds), started.filter(target_kind__in=kinds)
    waiting = _open_only(list(pending))
    owners = {attempt.owner_id for attempt in waiting if attempt.owner_id is not None}
    last_served = dict(
        started.filter(owner_id__in=owners, started_at__isnull=False)
        .values("owner_id").annotate(last=Max("started_at")).values_list("owner_id", "last")
    ) if owners else {}
    now = timezone.now()
    for owner_id in started.filter(status=AttemptStatus.RUNNING, owner_id__in=owners).values_list(
            "owner_id", flat=True):
        last_served[owner_id] = now  # held back by the per-owner cap: served now, as far as turns go
    never = now - timedelta(days=36500)
    rounds: dict[int, int] = {}
    keyed = []
    for attempt in waiting:  # already oldest first, so each owner's attempts keep their order
        turn = 0
        if attempt.owner_id is not None:
            turn = rounds[attempt.owner_id] = rounds.get(attempt.owner_id, -1) + 1
        served = last_served.get(attempt.owner_id) or never
        keyed.append(((-attempt.priority, turn, served, attempt.created_at, attempt.pk), attempt))
    keyed.sort(key=lambda pair: pair[0])
    ordered = [attempt for _, attempt in keyed]
    return ordered if limit is None else ordered[:limit]


def queue_positions(kind: str) -> dict[int, int]:
    """``{target_id: position}`` of every waiting target of ``kind`` (1 = next of its queue); one pass."""
    return {attempt.target_id: position
            for position, attempt in enumerate(pending_in_fair_order(queue=queue_of(kind)), start=1)
            if attempt.target_kind == kind}


def queue_position(kind: str, target_id: int) -> int | None:
    """1 = next to run; None when the target is not waiting."""
    return queue_positions(kind).get(target_id)


def supersede_closed_targets() -> int:
    """Pending attempts whose target is no longer open are not run (the reaper and every claim call this)."""
    superseded = 0
    for kind, ids in _pending_ids_by_kind().items():
        if kind not in _registry.targets:
            continue
        closed = target_for(kind).closed(ids)
        if closed:
            superseded += EvaluationAttempt.objects.filter(
                status=AttemptStatus.PENDING, target_kind=kind, target_id__in=list(closed)
            ).update(status=AttemptStatus.SUPERSEDED, error=ALREADY_FINAL, finished_at=timezone.now())
    return superseded


def _open_only(attempts: list[EvaluationAttempt]) -> list[EvaluationAttempt]:
    by_kind: dict[str, set[int]] = {}
    for attempt in attempts:
        by_kind.setdefault(attempt.target_kind, set()).add(attempt.target_id)
    closed: dict[str, Collection[int]] = {}
    for kind, ids in by_kind.items():
        if kind not in _registry.targets:
            log.warning("%d pending attempt(s) of the unregistered target kind %r are not run", len(ids), kind)
            closed[kind] = ids
        else:
            closed[kind] = target_for(kind).closed(ids).keys()
    return [attempt for attempt in attempts if attempt.target_id not in closed[attempt.target_kind]]


def _pending_ids_by_kind() -> dict[str, set[int]]:
    by_kind: dict[str, set[int]] = {}
    pending = EvaluationAttempt.objects.filter(status=AttemptStatus.PENDING)
    for kind, target_id in pending.values_list("target_kind", "target_id"):
        by_kind.setdefault(kind, set()).add(target_id)
    return by_kind


# ------------------------------------------------------------------------------------------ a short sandboxed run
def sandbox_run(python_args: Sequence[str], stdin: bytes, limits: SandboxLimits) -> SandboxOutcome:
    """Run ``python <python_args>`` (a module of the read-only ``sim`` code, e.g. ``["-m",
    "sim.world.reward_check"]``) in the sandbox now, in the caller's process, with an empty ``/model``: for short
    checks of untrusted code a racer waits for (the Validate button), not for queued work. Raises
    ``SandboxUnavailable`` where the sandbox cannot run and the fallback is not allowed."""
    with tempfile.TemporaryDirectory(prefix="pitlane-check-") as folder:
        return run_sandboxed(python_args, stdin, Path(folder) / "model", Path(folder) / "scratch", limits,
                             allow_fallback=evaluator_settings().sandbox_allow_fallback)
