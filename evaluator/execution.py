"""What a worker does with a claimed attempt: fetch the archive(s), validate them, run the sandbox, record.

The attempt's target supplies the work (``EvaluationTarget.sandbox_work``): the job, the archives to validate into
the sandbox's model mount (one at ``/model``, or one per sub-folder, e.g. a match's ``/model/a`` and ``/model/b``)
and the wall clock. Everything else is the same for every kind of target.

A worker thread may keep one evaluation sandbox started ahead (``WarmSandbox``): the runner has imported ONNX Runtime
and the simulator and waits, idle, for its job on stdin. It is used for exactly one job and then discarded, like any
sandbox; only the import (~0.3 s) leaves the path from claim to result.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import multiprocessing.util
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError
from django.core.files import File

from evaluator import sandbox
from evaluator.config import evaluator_settings
from evaluator.contract import (
    READY_MARKER,
    MatchJob,
    RaceJob,
    ResultError,
    RunnerFailure,
    TrainingJob,
    parse_runner_output,
    parse_training_output,
)
from evaluator.dbretry import DATABASE_ERRORS, with_database_retry
from evaluator.engine import SandboxFile, SandboxWork, TrainingFinished, target_for
from evaluator.services import Claim, attempt_fail, attempt_heartbeat, attempt_succeed
from sim.io.archive import ArchiveError, ArchiveLimits, extract_archive, inspect_archive
from sim.io.model_files import TRACK_FOLDER
from sim.sensors.floor import floor_raster, floor_raster_drawn, save_floor_raster
from sim.world.track import Track

log = logging.getLogger(__name__)
HEARTBEAT_EVERY_S = 10.0
HEARTBEAT_RETRY_S = 1.0  # after a failed heartbeat: renew the lease as soon as the database is back
# A finished evaluation is minutes of CPU: its worker thread waits this long for the database to come back
# (a restart, a failover) rather than throw the result away. The heartbeat keeps the lease meanwhile.
RECORD_PATIENCE_S = 600.0
RUNNER = ("-m", "evaluator.runner")
TRAINING_RUNNER = ("-m", "evaluator.training_runner")
SCRATCH_POLL_S = 0.5  # how often a long run's scratch is looked for until it is found (then progress_every_s)
STOP_GRACE_S = 300.0  # a run asked to stop that has not ended after this is killed (its model is then lost)
# An unreachable object store (S3: connection refused, timeouts) is an outage of ours, not the model's failure: the
# worker waits for it like for the database, rather than spend the target's attempts in seconds.
STORAGE_ERRORS = (BotoCoreError, Boto3Error)
STORAGE_PATIENCE_S = 300.0
# What an evaluation's sandbox is started with (the target sets only the wall clock); a sandbox started ahead has
# these limits, so only work that needs no other rlimit or scratch size may use it.
EVALUATION_LIMITS = sandbox.SandboxLimits()
T = TypeVar("T")
# A worker's folders in the temp dir carry its pid, so those of a process killed with kill -9 (which cleans nothing
# up: a model folder is ~50 MB) are recognised and removed by the next worker process on the host.
_SCRATCH_NAME = re.compile(r"^pitlane-(?:warm|eval)-(\d+)-")


def _scratch_prefix(kind: str) -> str:
    return f"pitlane-{kind}-{os.getpid()}-"


def remove_orphaned_scratch(folder: Path | None = None) -> int:
    """Remove the evaluation folders that worker processes which are gone left in ``folder`` (the temp dir): the
    number removed. Only this user's, and only those whose process no longer runs."""
    folder = Path(folder or tempfile.gettempdir())
    removed = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            match = _SCRATCH_NAME.match(entry.name)
            if match is None or not entry.is_dir(follow_symlinks=False):
                continue
            if entry.stat(follow_symlinks=False).st_uid != os.geteuid() or _process_runs(int(match.group(1))):
                continue
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
    if removed:
        log.info("Removed %d evaluation folder(s) left by worker processes that are gone", removed)
    return removed


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def worker_identity() -> str:
    return f"{socket.gethostname()}:{threading.get_native_id()}"


def work_of(claim: Claim) -> SandboxWork:
    """What the claimed attempt's target asks the sandbox to run."""
    return target_for(claim.target_kind).sandbox_work(claim.target_id)


def execute_attempt(claim: Claim, warm: WarmSandbox | None = None) -> None:
    """Evaluate a claimed attempt and record its outcome; heartbeats keep the lease while it runs.

    ``warm``: the worker thread's sandbox started ahead, used if the work fits its limits (then a new one is started
    ahead as soon as this run's sandbox has ended)."""
    claimed = time.monotonic()
    heartbeat = Heartbeat(claim)
    try:
        work = with_database_retry(work_of, claim)

        def run() -> None:
            limits = sandbox_limits(work)
            taken = warm.take(limits) if warm is not None and not isinstance(work.job, TrainingJob) else None
            clock = _Clock(claimed, warm=taken is not None)
            if taken is None:
                with tempfile.TemporaryDirectory(prefix=_scratch_prefix("eval")) as scratch:
                    _run(claim, work, Path(scratch), heartbeat, limits, clock, warm=warm)
                return
            try:  # used for this one job, then discarded like any sandbox
                _run(claim, work, taken.folder, heartbeat, limits, clock, taken.process, warm)
            finally:
                taken.discard()

        # A fetch that failed has already stopped its sandbox: the whole run starts again once the store answers.
        with_storage_retry(run)
    except DATABASE_ERRORS as error:
        # The database stayed away longer than our patience: the evaluator's trouble, not the model's, so no
        # crash signature (two outages must not read as "the model crashed the evaluator twice the same way").
        log.exception("Attempt %s: database unavailable", claim.attempt_id)
        _fail(claim, f"internal error: the database was unavailable ({error})", retryable=True)
    except Exception as error:  # anything unexpected is a crash of this attempt: retry, don't lose it
        log.exception("Attempt %s crashed", claim.attempt_id)
        _fail(claim, f"internal error: {error}", retryable=True, crash_signature=type(error).__name__)
    finally:
        heartbeat.stop()


def sandbox_limits(work: SandboxWork) -> sandbox.SandboxLimits:
    """The limits of the sandbox that runs ``work``: an evaluation's defaults, with the target's wall clock, CPU
    floor and scratch."""
    defaults = EVALUATION_LIMITS
    # A larger scratch is for larger files: a training checkpoint with its optimizer state is ~140 MB for the lab's
    # camera car (3-layer CNN), so any one file may fill it (the scratch's own size still bounds them all).
    return sandbox.SandboxLimits(wall_seconds=work.wall_seconds,
                                 cpu_seconds=max(defaults.cpu_seconds, work.min_cpu_seconds),
                                 scratch_bytes=work.scratch_bytes or defaults.scratch_bytes,
                                 file_bytes=max(defaults.file_bytes, work.scratch_bytes or 0))


class _Clock:
    """The worker's side of an attempt's timings: ``at_*`` = seconds from the claim to that point (work read,
    sandbox ready, archives validated, sandbox ended, result parsed), and whether the sandbox was started ahead."""

    def __init__(self, claimed: float, warm: bool) -> None:
        self.claimed = claimed
        self.marks: dict[str, float] = {"warm": 1.0 if warm else 0.0}

    def mark(self, name: str) -> None:
        self.marks[f"at_{name}"] = round(time.monotonic() - self.claimed, 3)


def _run(claim: Claim, work: SandboxWork, scratch: Path, heartbeat: Heartbeat, limits: sandbox.SandboxLimits,
         clock: _Clock, process: sandbox.SandboxProcess | None = None, warm: WarmSandbox | None = None) -> None:
    """Run ``work`` in ``process`` (a sandbox started ahead, its folder ``scratch``) or in a sandbox started now."""
    model_dir = scratch / "model"
    training = isinstance(work.job, TrainingJob)
    clock.mark("work_s")
    if process is None:
        # Start the sandbox first: the runner imports (training: torch, ~2 s) while we fetch and validate the archive.
        process = sandbox.start_sandboxed(
            TRAINING_RUNNER if training else RUNNER,
            model_dir=model_dir,
            scratch_dir=scratch / "work",
            limits=limits,
            allow_fallback=evaluator_settings().sandbox_allow_fallback,
        )
    clock.mark("started_s")
    heartbeat.watch(process)
    job = json.dumps(work.job.to_json()).encode()
    if not training:  # the runner prepares the track while the archive is validated; the end of input = model ready
        # Rows that make no track (ValueError): the runner refuses the job and says why, as before.
        with contextlib.suppress(ValueError):
            prepare_race_track(work.job, model_dir)
        process.send(job + b"\n")
        job = b""
    try:
        for archive in work.archives:
            folder = model_dir / archive.folder if archive.folder else model_dir
            try:
                _fetch_and_validate(archive.file, scratch / "model.tar.gz", folder, race_plan=not training)
            except ArchiveError as error:
                process.abort()
                _fail(claim, f"The model archive was refused: {error}", retryable=False, car=archive.car)
                return
        for stored in work.files:
            _fetch_file(stored, model_dir)
    except BaseException:
        process.abort()
        raise
    clock.mark("fetched_s")
    if not training:
        outcome = process.finish(job)
        clock.mark("ended_s")
        if warm is not None:  # the next job's sandbox imports while this result is parsed and recorded
            warm.start_ahead()
        _record(claim, work, outcome, limits, clock)
        with contextlib.suppress(ValueError):  # after the result: this worker's next race on the track maps it
            draw_race_track(work.job)
        return
    try:
        progress = _Progress(claim, work, process)
        outcome = process.finish(job, tick=progress.tick, tick_every_s=SCRATCH_POLL_S)
        _record_training(claim, work, outcome, limits, process, progress, scratch)
    finally:
        process.close_scratch()


@dataclasses.dataclass(frozen=True)
class ReadySandbox:
    """A started sandbox and its private host folder (``model/``, the mount, filled after the claim; ``work/``)."""

    process: sandbox.SandboxProcess
    folder: Path

    def discard(self) -> None:
        self.process.abort()  # kills it (and whatever it started) if still running; a no-op once it has ended
        shutil.rmtree(self.folder, ignore_errors=True)


class WarmSandbox:
    """The evaluation sandbox a worker thread keeps started ahead: the runner has imported ONNX Runtime and the
    simulator and waits, blocked on its stdin, for a job.

    Isolation is a fresh sandbox's: ``take`` hands the process over once, for one job, and the worker discards it
    after that job like any sandbox (its process ends, its folder is removed, its in-memory /scratch and /tmp go with
    its mount namespace); the next job gets a newly started one. Its model folder is created empty before the start
    and filled only after the claim. The rlimits and the scratch size are fixed at the start (an evaluation's
    defaults), so work needing others (training, a larger CPU floor or scratch) starts a sandbox of its own and
    leaves this one waiting. The wall clock is the job's and starts when the job is sent, so idling costs nothing.
    It is discarded when its thread stops (``discard``), at exit, or, if it died while waiting, when next taken."""

    def __init__(self, python_args: tuple[str, ...] | None = None,
                 limits: sandbox.SandboxLimits = EVALUATION_LIMITS) -> None:
        self.python_args = python_args or RUNNER
        self.limits = limits
        self._ready: ReadySandbox | None = None
        self._lock = threading.Lock()  # the owner thread takes and starts; ``discard`` may come from another (exit)
        _warm_sandboxes.add(self)

    @property
    def ready(self) -> ReadySandbox | None:
        return self._ready

    def start_ahead(self) -> None:
        """Start the next sandbox unless one waits already. A failure is logged, not raised: the next job then starts
        a sandbox of its own, as without a warm one."""
        with self._lock:
            if self._ready is not None:
                return
            folder = Path(tempfile.mkdtemp(prefix=_scratch_prefix("warm")))
            try:
                process = sandbox.start_sandboxed(
                    self.python_args, model_dir=folder / "model", scratch_dir=folder / "work", limits=self.limits,
                    allow_fallback=evaluator_settings().sandbox_allow_fallback, clock_from_input=True)
            except Exception:
                log.exception("Could not start a sandbox ahead; the next evaluation starts its own")
                shutil.rmtree(folder, ignore_errors=True)
                return
            self._ready = ReadySandbox(process, folder)

    def take(self, limits: sandbox.SandboxLimits) -> ReadySandbox | None:
        """The waiting sandbox for one job with ``limits`` (its wall clock set to theirs), or None: none waits, it
        died meanwhile (discarded and logged), or the job needs other fixed limits (it keeps waiting)."""
        with self._lock:
            ready = self._ready
            if ready is None or dataclasses.replace(limits, wall_seconds=self.limits.wall_seconds) != self.limits:
                return None
            self._ready = None
        if not ready.process.alive():
            outcome = ready.process.finish()  # collects its exit status and the tail of its stderr
            tail = outcome.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            log.warning("The sandbox started ahead had died (%s) %s; starting a fresh one",
                        outcome.signal_name or f"exit code {outcome.returncode}", tail[0][:300])
            ready.discard()
            return None
        ready.process.set_wall_clock(limits.wall_seconds)
        return ready

    def discard(self) -> None:
        """End the waiting sandbox, if any, and remove its folder. Under the lock: a second SIGTERM makes the worker
        process exit while its threads still shut down, and the exit's own discard must wait for theirs to finish."""
        with self._lock:
            if self._ready is not None:
                self._ready.discard()
                self._ready = None


_warm_sandboxes: weakref.WeakSet[WarmSandbox] = weakref.WeakSet()
_this_thread = threading.local()


def warm_sandbox_of_this_thread() -> WarmSandbox:
    """This worker thread's ``WarmSandbox`` (created on first use; nothing is started until ``start_ahead``)."""
    warm = getattr(_this_thread, "warm", None)
    if warm is None:
        warm = _this_thread.warm = WarmSandbox()
    return warm


_swept = threading.Event()


def remove_orphaned_scratch_once() -> None:
    """Once per worker process, as its first thread boots: what killed workers left behind."""
    if not _swept.is_set():
        _swept.set()
        try:
            remove_orphaned_scratch()
        except OSError:
            log.exception("Could not look for evaluation folders left by killed workers")


def _discard_warm_sandboxes() -> None:
    """No sandbox started ahead outlives its worker process, even when the process exits before its threads have
    stopped (Dramatiq exits at once on a second SIGTERM, and systemd signals every process of the unit)."""
    for warm in list(_warm_sandboxes):
        warm.discard()


# Not ``atexit``: a Dramatiq worker process is a multiprocessing child, which ends with os._exit() and runs only
# multiprocessing's exit finalizers (which ordinary processes run at exit too).
multiprocessing.util.Finalize(None, _discard_warm_sandboxes, exitpriority=10)


def _fetch_file(stored: SandboxFile, model_dir: Path) -> None:
    """Copy a stored file (written by an earlier run of the same job: only the run reads it) under the mount."""
    parts = Path(stored.path).parts
    if not parts or Path(stored.path).is_absolute() or ".." in parts:
        raise ValueError(f"a sandbox file's path stays inside the model mount, not {stored.path!r}")
    target = model_dir.joinpath(*parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    with stored.file.open("rb") as source, target.open("wb") as copy:
        shutil.copyfileobj(source, copy, length=1024 * 1024)


class _Progress:
    """A long run's ticks: hand its scratch to the target every ``progress_every_s`` and pass on a stop request
    (SIGINT, once; a run that has not ended ``STOP_GRACE_S`` later is killed)."""

    def __init__(self, claim: Claim, work: SandboxWork, process: sandbox.SandboxProcess) -> None:
        self.claim, self.process = claim, process
        self.target = target_for(claim.target_kind)
        self.every = work.progress_every_s or 5.0
        self.last = 0.0
        self.interrupted_at: float | None = None

    def tick(self) -> None:
        scratch = self.process.scratch()
        now = time.monotonic()
        if scratch is None or now - self.last < self.every:
            return
        self.last = now
        self.report(scratch)
        try:
            stop = self.interrupted_at is None and scratch.stat(READY_MARKER) is not None and with_database_retry(
                self.target.stop_requested, self.claim.target_id)
        except Exception:
            log.exception("Attempt %s: could not read whether a stop was requested", self.claim.attempt_id)
            stop = False
        if stop and self.process.interrupt():
            log.info("Attempt %s: stop requested, run interrupted", self.claim.attempt_id)
            self.interrupted_at = now
        elif self.interrupted_at is not None and now - self.interrupted_at > STOP_GRACE_S:
            log.warning("Attempt %s: the run did not stop within %.0f s; killed", self.claim.attempt_id, STOP_GRACE_S)
            self.process.kill()

    def report(self, scratch: sandbox.ScratchView) -> None:
        """The target stores what the run has written so far; a failure (storage or database away) skips a tick."""
        try:
            with_database_retry(self.target.on_progress, self.claim.target_id, self.claim.number, scratch)
        except Exception:
            log.exception("Attempt %s: progress not stored this time", self.claim.attempt_id)


def _record_training(claim: Claim, work: SandboxWork, outcome: sandbox.SandboxOutcome, limits: sandbox.SandboxLimits,
                     process: sandbox.SandboxProcess, progress: _Progress, scratch: Path) -> None:
    """A training run ended: store its last progress, then validate its outcome and its exported model."""
    view = process.scratch()
    if view is not None:  # the final metrics and checkpoints, before the result (or a retry resumes from them)
        progress.report(view)
    if outcome.timed_out:
        _fail(claim, f"Training exceeded the wall-clock limit of {limits.wall_seconds:.0f} s", retryable=True,
              crash_signature="timeout")
        return
    try:
        result = parse_training_output(outcome.stdout, limits.output_bytes)
    except ResultError as error:
        detail = outcome.signal_name or f"exit code {outcome.returncode}"
        tail = outcome.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        if _hit_disk_limit(outcome, tail[0]):
            _fail(claim, f"The training exceeded the sandbox's disk limits (scratch {limits.scratch_bytes // 1024**2}"
                         f" MiB, {limits.file_bytes // 1024**2} MiB per file): {tail[0][:300]}".strip(),
                  retryable=False)
            return
        _fail(claim, f"The training crashed ({detail}; {error}) {tail[0][:300]}".strip(), retryable=True,
              crash_signature=f"{detail}:{str(error)[:80]}")
        return
    if isinstance(result, RunnerFailure):
        if result.kind == "model":
            _fail(claim, result.error, retryable=False)
        else:
            _fail(claim, f"The trainer failed: {result.error}", retryable=True,
                  crash_signature=f"job:{result.error[:80]}")
        return
    archive = scratch / "trained.tar.gz"
    limits_archive = ArchiveLimits()
    if view is None or not view.copy(result.archive, archive, limits_archive.max_archive_bytes):
        _fail(claim, "The training ended without a readable model.tar.gz", retryable=True,
              crash_signature="no-archive")
        return
    try:  # written by untrusted code (the reward function ran in that process): validated like an upload
        inspect_archive(archive, limits_archive, scratch_dir=scratch)
    except ArchiveError as error:
        _fail(claim, f"The trained model was refused: {error}", retryable=False)
        return
    with_storage_retry(with_database_retry, attempt_succeed, claim, TrainingFinished(result, archive),
                       sandbox_mode=outcome.mode, sandbox_seconds=round(outcome.wall_seconds, 3),
                       patience_s=RECORD_PATIENCE_S)


def prepare_race_track(job: RaceJob | MatchJob, model_dir: Path) -> bool:
    """Save the race track's floor raster at the top of the model mount for the runner (``TRACK_FOLDER``) if this
    process has drawn it (``draw_race_track``); False if it has not: drawing is kept off the path to a result, and
    this race's runner draws its own meanwhile, as it always did."""
    track = _race_track_of(job)
    if not floor_raster_drawn(track):
        return False
    save_floor_raster(track, model_dir / TRACK_FOLDER)
    return True


def draw_race_track(job: RaceJob | MatchJob) -> None:
    """Draw the race track's floor raster (~0.6 s) and keep it for this process's next races on the track."""
    floor_raster(_race_track_of(job))


def _race_track_of(job: RaceJob | MatchJob) -> Track:
    return _race_track(job.track_name, tuple(tuple(row) for row in job.track_rows), job.direction)


@functools.lru_cache(maxsize=4)  # a floor raster is ~22 MB for the technical loop
def _race_track(name: str, rows: tuple[tuple[float, ...], ...], direction: str) -> Track:
    """A race's track as the runner builds it, kept by this worker process: its floor raster, which every camera
    race needs and which takes ~0.6 s of CPU to draw, is drawn once per track here instead of once per sandbox."""
    return Track.from_array(np.asarray(rows, dtype=np.float64), name=name).with_direction(direction)


def _fetch_and_validate(archive: File, archive_copy: Path, model_dir: Path, *, race_plan: bool) -> None:
    """Copy the archive out of storage (may be S3) into private scratch, then validate it into ``model_dir``; for a
    race, add the network's ONNX race plan, which the runner drives with instead of importing torch."""
    with archive.open("rb") as source, archive_copy.open("wb") as target:
        shutil.copyfileobj(source, target, length=1024 * 1024)
    prepare_model_folder(archive_copy, model_dir, race_plan=race_plan)
    archive_copy.unlink()


_race_plans_warmed = threading.Event()


def warm_up_race_plans_once() -> None:
    """Once per evaluation worker process, as it boots: import onnx and build one race plan, so the first
    evaluation does not pay for them. Measured on a 2-core EPYC: a cold worker's first archive fetch + validation
    took 1.45 s against ~0.3 s later (``import onnx`` 0.64 s, the first plan 0.2 s, the first model load 0.44 s)."""
    if _race_plans_warmed.is_set():
        return
    _race_plans_warmed.set()
    from sim.learn.networks import build_actor_critic
    from sim.learn.onnx_plan import race_plan_bytes
    from sim.world.vehicle import get_vehicle

    try:
        race_plan_bytes(build_actor_critic(get_vehicle("pitlane_racer")))
    except Exception:  # only a warm-up: the first evaluation will report what is wrong
        log.exception("Could not warm up the race plan builder")


def prepare_model_folder(archive: Path, model_dir: Path, *, race_plan: bool = True) -> None:
    """Validate ``archive`` into ``model_dir`` as the sandbox reads it: with the ONNX race plan the runner drives
    with (``sim.learn.onnx_plan``) unless ``race_plan`` is false (a training job's starting model)."""
    # Validated beside the mount, then moved in: a race's mount already holds the track the runner reads meanwhile.
    staging = model_dir.parent / f".{model_dir.name}-validating"
    extract_archive(archive, staging, ArchiveLimits())
    model_dir.mkdir(parents=True, exist_ok=True)
    for entry in staging.iterdir():
        entry.rename(model_dir / entry.name)
    staging.rmdir()
    if race_plan:
        # Imported here: onnx takes ~1 s to import, and every process loads this module (the web's too).
        from sim.learn.onnx_plan import write_race_plan

        write_race_plan(model_dir)


def _record(claim: Claim, work: SandboxWork, outcome: sandbox.SandboxOutcome, limits: sandbox.SandboxLimits,
            clock: _Clock | None = None) -> None:
    if outcome.timed_out:
        _fail(claim, f"Evaluation exceeded the wall-clock limit of {limits.wall_seconds:.0f} s",
              retryable=True, crash_signature="timeout")
        return
    try:
        result = parse_runner_output(outcome.stdout, work.job.rules.total_laps, limits.output_bytes,
                                     match=isinstance(work.job, MatchJob))
    except ResultError as error:
        detail = outcome.signal_name or f"exit code {outcome.returncode}"
        tail = outcome.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        if _hit_disk_limit(outcome, tail[0]):  # the model filled its capped folders: its failure, not a crash
            _fail(claim, f"The evaluation exceeded the sandbox's disk limits (scratch "
                         f"{limits.scratch_bytes // 1024**2} MiB, /tmp {sandbox.TMPFS_BYTES // 1024**2} MiB, "
                         f"{limits.file_bytes // 1024**2} MiB per file): {tail[0][:300]}".strip(), retryable=False)
            return
        _fail(claim, f"The evaluation crashed ({detail}; {error}) {tail[0][:300]}".strip(), retryable=True,
              crash_signature=f"{detail}:{str(error)[:80]}")
        return
    if isinstance(result, RunnerFailure):
        if result.kind == "model":  # deterministic: the same archive fails the same way, no retry
            _fail(claim, result.error, retryable=False, car=result.car)
        else:  # our side (job, installation): retry, but an identical failure twice stops
            _fail(claim, f"The evaluator failed: {result.error}", retryable=True,
                  crash_signature=f"job:{result.error[:80]}")
        return
    if clock is not None:  # where the worker's time went, seconds since the claim, next to the runner's phases
        clock.mark("parsed_s")
        result = dataclasses.replace(result, timings=result.timings | clock.marks)
    # The result writes its simtrace to storage in the same transaction: a store outage rolls it back, and the
    # finished evaluation waits for the store instead of being thrown away.
    with_storage_retry(with_database_retry, attempt_succeed, claim, result, sandbox_mode=outcome.mode,
                       sandbox_seconds=round(outcome.wall_seconds, 3), patience_s=RECORD_PATIENCE_S)


def with_storage_retry(action: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``action(*args, **kwargs)``, retried with backoff while the upload storage is unreachable, for up to
    ``STORAGE_PATIENCE_S``; then the error goes up (the attempt crashes and is retried by the engine)."""
    deadline = time.monotonic() + STORAGE_PATIENCE_S
    delay = 1.0
    while True:
        try:
            return action(*args, **kwargs)
        except STORAGE_ERRORS as error:
            if time.monotonic() >= deadline:
                raise
            log.warning("Storage unavailable during %s (%s); retrying", getattr(action, "__name__", action),
                        str(error).strip()[:200])
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def _hit_disk_limit(outcome: sandbox.SandboxOutcome, last_error_line: str) -> bool:
    """A run that died of ENOSPC / EFBIG without the runner reporting it (a child process, a thread, ...)."""
    return outcome.signal_name == "SIGXFSZ" or any(
        sign in last_error_line for sign in ("[Errno 28]", "No space left on device", "[Errno 27]", "File too large"))


def _fail(claim: Claim, error: str, retryable: bool, crash_signature: str = "", car: int | None = None) -> None:
    with_database_retry(attempt_fail, claim, error, retryable=retryable, crash_signature=crash_signature,
                        car=car, patience_s=RECORD_PATIENCE_S)


class Heartbeat:
    """Extends the attempt's lease on a thread while it runs. If the lease is lost (the reaper gave the attempt
    to another worker), the sandbox is killed at once: its result would be refused anyway."""

    def __init__(self, claim: Claim) -> None:
        self.claim = claim
        self._stopped = threading.Event()
        self._lost = threading.Event()
        self._lock = threading.Lock()  # a lease lost just before watch() must still kill the process
        self._process: sandbox.SandboxProcess | None = None
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{claim.attempt_id}")
        self._thread.start()

    def watch(self, process: sandbox.SandboxProcess) -> None:
        with self._lock:
            self._process = process
            if self._lost.is_set():
                process.kill()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=1)

    def _beat(self) -> None:
        from django.db import connection

        every = min(HEARTBEAT_EVERY_S, evaluator_settings().lease_s / 3)
        wait = every
        try:
            while not self._stopped.wait(wait):
                try:
                    owned = attempt_heartbeat(self.claim)
                except Exception as error:
                    # Whatever failed (connection lost, server restarting, read-only during a failover), this
                    # thread must live on: if it died, the lease would silently lapse and the result be refused.
                    log.warning("Heartbeat of attempt %s failed (%s); retrying", self.claim.attempt_id,
                                str(error).strip()[:200], exc_info=not isinstance(error, DATABASE_ERRORS))
                    connection.close()
                    wait = min(every, HEARTBEAT_RETRY_S)
                    continue
                wait = every
                if not owned:
                    with self._lock:
                        self._lost.set()
                        running = self._process is None or self._process.alive()
                        if running:
                            log.warning("Attempt %s lost its lease; stopping its sandbox", self.claim.attempt_id)
                            if self._process is not None:
                                self._process.kill()
                    # Its run has ended: most likely this worker has just recorded the result (closing the attempt)
                    # and not yet stopped the heartbeat; a result that came too late is refused and logged there.
                    return
        finally:
            connection.close()
