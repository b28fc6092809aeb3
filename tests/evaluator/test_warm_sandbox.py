"""The sandbox a worker thread keeps started ahead (``execution.WarmSandbox``): one job each, isolation unchanged,
nothing leaked. Real sandboxes and real worker processes; the runner is a tiny script where the test needs to see
what a run saw (the real runner goes through it in test_end_to_end and the last test here)."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from evaluator import execution, sandbox
from evaluator.execution import WarmSandbox, execute_attempt, remove_orphaned_scratch
from evaluator.services import attempt_claim_next
from races import evaluation_targets
from races.services import model_upload, submission_create
from tests.evaluator.processes import start_worker, stop_worker, wait_for, worker_environment

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not sandbox.bubblewrap_works(), reason="bubblewrap cannot run on this machine"),
]

LAP = {"trial": 1, "elapsed_time_in_milliseconds": 9000, "completion_percentage": 100.0, "off_track_count": 0,
       "crash_count": 0, "immobilized_count": 0, "reversed_count": 0, "reset_count": 0,
       "episode_status": "Lap complete"}
RESULT = {"ok": True, "laps": [LAP], "trace": {key: [] for key in ("t", "x", "y", "yaw", "speed", "status")},
          "simtrace_csv": "", "duration_s": 1.0}
# Like the runner: wait for the job line and the end of the input, then work. A file left by an earlier job in
# /scratch or /tmp would be seen here and reported as a model failure, which the test would notice.
SNOOPING_RUNNER = f"""
import json, os, sys, time
sys.stdin.readline(); sys.stdin.read()
seen = [path for path in ('/scratch/left-behind', '/tmp/left-behind') if os.path.exists(path)]
for path in ('/scratch/left-behind', '/tmp/left-behind'):
    open(path, 'w').write('secret of an earlier job')
if seen:
    print(json.dumps({{'ok': False, 'kind': 'model', 'error': 'saw ' + ', '.join(seen)}}))
else:
    print({json.dumps(json.dumps(RESULT))})
"""


@pytest.fixture
def submit(make_racer, make_race, archive_bytes):
    race = make_race(max_submissions_per_racer=10)
    racer = make_racer("Warm")
    model = model_upload(racer, "warm", io.BytesIO(archive_bytes))

    def submit():
        return submission_create(racer, race, model)

    return submit


@pytest.fixture
def warm(monkeypatch):
    monkeypatch.setattr(execution, "RUNNER", ("-c", SNOOPING_RUNNER))
    warm = WarmSandbox()
    yield warm
    warm.discard()


def evaluate(submission, warm: WarmSandbox):
    """What a worker thread does with one message (``actors._evaluate_next``)."""
    try:
        execute_attempt(attempt_claim_next("test-worker"), warm)
    finally:
        warm.start_ahead()
    submission.refresh_from_db()
    return submission


def attempt_of(submission):
    return submission.attempts.get()


def test_a_warm_sandbox_runs_exactly_one_job_and_the_next_job_sees_nothing_of_it(submit, warm):
    warm.start_ahead()
    first_ready = warm.ready
    first = evaluate(submit(), warm)
    second_ready = warm.ready
    second = evaluate(submit(), warm)

    assert (first.status, second.status) == ("scored", "scored"), (first.failure_reason, second.failure_reason)
    assert attempt_of(first).timings["warm"] == attempt_of(second).timings["warm"] == 1.0
    assert second_ready is not None and second_ready.process.process.pid != first_ready.process.process.pid
    for used in (first_ready, second_ready):
        assert not used.process.alive() and not used.folder.exists(), "a used sandbox is discarded with its folder"
    assert warm.ready is not None and warm.ready.process.alive(), "the next one waits already"


def test_a_warm_sandbox_that_died_before_the_claim_is_replaced_and_the_job_succeeds(submit, warm, caplog):
    warm.start_ahead()
    dead = warm.ready
    os.killpg(dead.process.process.pid, signal.SIGKILL)
    wait_for(lambda: not dead.process.alive(), 10, "the warm sandbox to die")
    with caplog.at_level(logging.WARNING, logger="evaluator.execution"):
        submission = evaluate(submit(), warm)
    assert submission.status == "scored", submission.failure_reason
    assert attempt_of(submission).timings["warm"] == 0.0
    assert "The sandbox started ahead had died" in caplog.text
    assert not dead.folder.exists()
    assert warm.ready is not None and warm.ready.process.alive()


def test_an_idle_warm_sandbox_is_not_killed_by_the_wall_clock_which_starts_with_the_job(submit, warm, monkeypatch):
    monkeypatch.setattr(evaluation_targets, "wall_seconds", lambda race: 2.0)
    warm.start_ahead()
    time.sleep(3.0)  # longer than the job's whole wall clock
    assert warm.ready.process.alive()
    submission = evaluate(submit(), warm)
    assert submission.status == "scored", submission.failure_reason

    # The clock does run once the job is sent: a run past it is killed as always.
    monkeypatch.setattr(execution, "RUNNER", ("-c", "import sys, time; sys.stdin.read(); time.sleep(600)"))
    sleeper = WarmSandbox()
    try:
        sleeper.start_ahead()
        time.sleep(2.5)
        started = time.monotonic()
        hanging = evaluate(submit(), sleeper)
        assert time.monotonic() - started < 15
    finally:
        sleeper.discard()
    assert hanging.attempts.get(number=1).error == "Evaluation exceeded the wall-clock limit of 2 s"


def test_a_job_needing_other_limits_starts_its_own_sandbox_and_leaves_the_warm_one_waiting(submit, warm, monkeypatch):
    """E.g. a match (a larger CPU floor) or a training job (a larger scratch): rlimits are fixed at the start."""
    target = evaluation_targets.SubmissionTarget
    plain = target.sandbox_work

    def more_cpu(self, target_id):
        work = plain(self, target_id)
        return dataclasses.replace(work, min_cpu_seconds=1000)

    monkeypatch.setattr(target, "sandbox_work", more_cpu)
    warm.start_ahead()
    waiting = warm.ready
    submission = evaluate(submit(), warm)
    assert submission.status == "scored", submission.failure_reason
    assert attempt_of(submission).timings["warm"] == 0.0
    assert warm.ready is waiting and waiting.process.alive(), "unused, so still clean: it waits for the next job"


def test_a_training_job_does_not_use_the_warm_sandbox(make_racer, oval_track, warm, monkeypatch):
    from evaluator.engine import attempts_of
    from races.services.training import training_start
    from tests.races.training_helpers import small_options, small_request

    job = training_start(make_racer("Trainer"), small_request(oval_track, name="cold"), small_options(max_episodes=5))
    monkeypatch.setattr(execution, "TRAINING_RUNNER", ("-c", "import sys; sys.stdin.read(); print('not json')"))
    warm.start_ahead()
    waiting = warm.ready
    execute_attempt(attempt_claim_next("test-worker", "training"), warm)
    attempt = attempts_of("training", job.pk).get(number=1)
    assert attempt.status == "failed" and "The training crashed" in attempt.error, attempt.error
    assert warm.ready is waiting and waiting.process.alive(), "the training ran in a sandbox of its own"


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _maps(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return ""


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def _warm_folders(worker: int) -> set[Path]:
    """The host folders of the worker's sandboxes started ahead: bubblewrap's outer process works in one."""
    folders = set()
    for pid in _descendants(worker):
        if _cmdline(pid).startswith(b"bwrap"):
            try:
                folder = Path(os.readlink(f"/proc/{pid}/cwd")).parent
            except OSError:
                continue
            if folder.name.startswith("pitlane-warm-"):
                folders.add(folder)
    return folders


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_the_folders_of_worker_processes_that_are_gone_are_removed_and_no_others(tmp_path):
    """kill -9 cleans nothing up: a killed worker's sandbox folders (a model is ~50 MB) would stay in /tmp."""
    dead, alive = _dead_pid(), os.getpid()
    orphans = [tmp_path / f"pitlane-warm-{dead}-a1b2", tmp_path / f"pitlane-eval-{dead}-c3d4"]
    kept = [tmp_path / f"pitlane-warm-{alive}-e5f6", tmp_path / "pitlane-warm-x-1", tmp_path / f"other-{dead}-1"]
    for folder in orphans + kept:
        (folder / "model").mkdir(parents=True)
    (tmp_path / f"pitlane-eval-{dead}-file").write_text("not a folder")

    assert remove_orphaned_scratch(tmp_path) == 2
    assert not any(folder.exists() for folder in orphans)
    assert all(folder.exists() for folder in kept) and (tmp_path / f"pitlane-eval-{dead}-file").exists()


def test_worker_shutdown_leaves_no_sandbox_process_and_no_folder(redis_server, settings, tmp_path):
    # What a worker killed with kill -9 left: the next worker process on the host removes it as it boots.
    orphan = Path(tempfile.gettempdir()) / f"pitlane-warm-{_dead_pid()}-test"
    (orphan / "model").mkdir(parents=True)
    worker = start_worker(worker_environment(redis_server.url, settings.MEDIA_ROOT), tmp_path / "worker.log",
                          threads=2)
    try:
        wait_for(lambda: len(_warm_folders(worker.pid)) == 2, 120, "each worker thread's sandbox started ahead")
        assert not orphan.exists()
        # Before any job, the worker process has imported onnx (it built a throwaway race plan as it booted): the
        # first evaluation does not pay for it.
        wait_for(lambda: any("onnx_cpp2py_export" in _maps(pid) for pid in _descendants(worker.pid)), 120,
                 "the worker process built its throwaway race plan")
        folders = _warm_folders(worker.pid)
        sandbox_processes = [pid for pid in _descendants(worker.pid) if b"evaluator.runner" in _cmdline(pid)]
    finally:
        stop_worker(worker)  # SIGTERM, as systemd stops it
    log = (tmp_path / "worker.log").read_text(errors="replace")[-2000:]
    assert worker.returncode is not None
    assert all(_gone(pid) for pid in sandbox_processes), log
    assert not any(folder.exists() for folder in folders), log


def test_idle_workers_poll_the_broker_every_100_ms_at_most():
    """Dramatiq's idle Redis consumer backs off to the worker timeout (1 s by default): half a second of queue wait
    on average before a worker even sees a new evaluation."""
    import dramatiq

    from evaluator.actors import IDLE_POLL_MS

    worker = dramatiq.Worker(dramatiq.get_broker(), worker_threads=1)  # not started: only its boot hook runs
    dramatiq.get_broker().emit_before("worker_boot", worker)
    assert worker.worker_timeout == IDLE_POLL_MS == 100
