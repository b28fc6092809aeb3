"""What a worker does with a claimed attempt: fetch the archive(s), validate them, run the sandbox, record.

A submission's job races one model (``/model``); a bracket match's job races two (``/model/a``, ``/model/b``,
the same read-only mount) against each other. Everything else is shared.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from django.conf import settings

from evaluator import sandbox
from evaluator.dbretry import DATABASE_ERRORS, with_database_retry
from evaluator.results import ResultError, parse_runner_output
from evaluator.services import Claim, attempt_fail, attempt_heartbeat, attempt_succeed, lease_seconds
from races.models import BracketMatch, Race, RacerModel, Submission
from races.services import race_objects_spec, track_sim
from sim.io.archive import ArchiveError, ArchiveLimits, extract_archive

log = logging.getLogger(__name__)
HEARTBEAT_EVERY_S = 10.0
HEARTBEAT_RETRY_S = 1.0  # after a failed heartbeat: renew the lease as soon as the database is back
# A finished evaluation is minutes of CPU: its worker thread waits this long for the database to come back
# (a restart, a failover) rather than throw the result away. The heartbeat keeps the lease meanwhile.
RECORD_PATIENCE_S = 600.0
RUNNER = ("-m", "evaluator.runner")
WALL_MARGIN_S = 60.0


def worker_identity() -> str:
    return f"{socket.gethostname()}:{threading.get_native_id()}"


def wall_seconds(race: Race) -> float:
    """The race's time cap plus room for starting the sandbox, loading the model and reporting."""
    return float(race.time_cap_s) + WALL_MARGIN_S


def race_job(submission: Submission) -> dict:
    """The job document for the sandbox: everything the runner needs, nothing else."""
    return _job(submission.race) | {
        "objects": race_objects_spec(submission.race),  # boxes or bot cars in the direction raced; None: none
        "model_dir": sandbox.MODEL_MOUNT,
    }


MATCH_CARS = ("a", "b")  # car A's and car B's model folders under the model mount


def match_job(match: BracketMatch) -> dict:
    """The job of a head-to-head match: the race's track and rules, car A's and car B's models."""
    return _job(match.race) | {"kind": "match",
                               "model_dirs": [f"{sandbox.MODEL_MOUNT}/{car}" for car in MATCH_CARS]}


def _job(race: Race) -> dict:
    track = track_sim(race.track)  # file order; the runner applies the direction
    return {
        "track": {"name": race.track.slug, "rows": track.waypoints.tolist()},
        "direction": race.direction,
        "rules": {
            "total_laps": race.total_laps,
            "off_track_penalty_s": race.off_track_penalty_s,
            "collision_penalty_s": race.collision_penalty_s,
            "max_resets": race.max_resets,
            "time_cap_s": float(race.time_cap_s),
            "continuous": True,
        },
        "seed": 0,  # evaluations are deterministic: the same archive on the same race gives the same result
    }


@dataclass(frozen=True)
class Work:
    """What a claim asks for: the race, the models to race (one, or car A's and car B's) and the job."""

    race: Race
    models: list[RacerModel]
    job: dict

    @property
    def is_match(self) -> bool:
        return len(self.models) == 2


def work_of(claim: Claim) -> Work:
    if claim.match_id is None:
        submission = Submission.objects.select_related("race__track", "model").get(pk=claim.submission_id)
        return Work(submission.race, [submission.model], race_job(submission))
    match = BracketMatch.objects.select_related("race__track", "submission_a__model", "submission_b__model").get(
        pk=claim.match_id)
    return Work(match.race, [match.submission_a.model, match.submission_b.model], match_job(match))


def execute_attempt(claim: Claim) -> None:
    """Evaluate a claimed attempt and record its outcome; heartbeats keep the lease while it runs."""
    heartbeat = Heartbeat(claim)
    try:
        work = with_database_retry(work_of, claim)
        with tempfile.TemporaryDirectory(prefix="pitlane-eval-") as scratch:
            _run(claim, work, Path(scratch), heartbeat)
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


def _run(claim: Claim, work: Work, scratch: Path, heartbeat: Heartbeat) -> None:
    limits = sandbox.SandboxLimits(wall_seconds=wall_seconds(work.race))
    if work.is_match:  # two cars, each a camera and a network per step: twice the compute
        wall = 2 * float(work.race.time_cap_s) + WALL_MARGIN_S
        limits = sandbox.SandboxLimits(wall_seconds=wall, cpu_seconds=max(limits.cpu_seconds, int(wall)))
    model_dir = scratch / "model"
    # Start the sandbox first: the runner imports torch (~1.5 s) while we fetch and validate the archive.
    process = sandbox.start_sandboxed(
        RUNNER,
        model_dir=model_dir,
        scratch_dir=scratch / "work",
        limits=limits,
        allow_fallback=bool(getattr(settings, "PITLANE_SANDBOX_ALLOW_FALLBACK", False)),
    )
    heartbeat.watch(process)
    folders = [model_dir / car for car in MATCH_CARS] if work.is_match else [model_dir]
    for car, (model, folder) in enumerate(zip(work.models, folders, strict=True)):
        try:
            _fetch_and_validate(model, scratch / "model.tar.gz", folder)
        except ArchiveError as error:
            process.abort()
            _fail(claim, f"The model archive was refused: {error}", retryable=False,
                  car=car if work.is_match else None)
            return
        except BaseException:
            process.abort()
            raise
    outcome = process.finish(json.dumps(work.job).encode())
    _record(claim, work, outcome, limits)


def _fetch_and_validate(model: RacerModel, archive_copy: Path, model_dir: Path) -> None:
    """Copy the archive out of storage (may be S3) into private scratch, then validate it into ``model_dir``."""
    with model.archive.open("rb") as source, archive_copy.open("wb") as target:
        shutil.copyfileobj(source, target, length=1024 * 1024)
    extract_archive(archive_copy, model_dir, ArchiveLimits())
    archive_copy.unlink()


def _record(claim: Claim, work: Work, outcome: sandbox.SandboxOutcome, limits: sandbox.SandboxLimits) -> None:
    if outcome.timed_out:
        _fail(claim, f"Evaluation exceeded the wall-clock limit of {limits.wall_seconds:.0f} s",
              retryable=True, crash_signature="timeout")
        return
    try:
        result = parse_runner_output(outcome.stdout, work.race.total_laps, limits.output_bytes, match=work.is_match)
    except ResultError as error:
        detail = outcome.signal_name or f"exit code {outcome.returncode}"
        tail = outcome.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        _fail(claim, f"The evaluation crashed ({detail}; {error}) {tail[0][:300]}".strip(), retryable=True,
              crash_signature=f"{detail}:{str(error)[:80]}")
        return
    if not result["ok"]:
        if result["kind"] == "model":  # deterministic: the same archive fails the same way, no retry
            _fail(claim, result["error"], retryable=False, car=result.get("car"))
        else:  # our side (job, installation): retry, but an identical failure twice stops
            _fail(claim, f"The evaluator failed: {result['error']}", retryable=True,
                  crash_signature=f"job:{result['error'][:80]}")
        return
    result["sandbox"] = {"mode": outcome.mode, "wall_seconds": round(outcome.wall_seconds, 3),
                         "limits": asdict(limits)}
    with_database_retry(attempt_succeed, claim, result, patience_s=RECORD_PATIENCE_S)


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

        every = min(HEARTBEAT_EVERY_S, lease_seconds() / 3)
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
                    log.warning("Attempt %s lost its lease; stopping its sandbox", self.claim.attempt_id)
                    with self._lock:
                        self._lost.set()
                        if self._process is not None:
                            self._process.kill()
                    return
        finally:
            connection.close()
