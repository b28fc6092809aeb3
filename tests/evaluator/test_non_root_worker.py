"""Workers as the shipped systemd units run them: as an unprivileged user (``User=pitlane``), not root.

Real processes under a throwaway system user (created here if absent, removed afterwards): a sandbox started by such
a user while it already runs more tasks than the sandbox's process cap, a ``rundramatiq --queues evaluations`` worker
scoring a submission in its sandbox started ahead, and a ``rundramatiq --queues training`` worker training a job,
reading its in-memory scratch through ``/proc/<run>/root``. The sandbox then relies on unprivileged user namespaces
(bwrap maps nobody to the worker's uid): the tests skip, saying why, where the kernel refuses them.

Where the Python installation is in a folder the user may not enter (a pyenv under /root), the worker runs in a
mount namespace of its own that shows only that installation there, at the same path; nothing else changes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import transaction

from evaluator.models import EvaluationAttempt
from races.models import Run, Submission, TrainingJob
from races.services import model_upload, submission_create
from races.services.training import training_start
from tests.evaluator.processes import REPO, broker_at, wait_for, worker_environment
from tests.races.training_helpers import small_options, small_request

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="only root can start a worker as another user"),
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed"),
]

USER = "pitlane-nonroot-test"
# More tasks than the sandbox's process cap (64), as a busy worker user has (threads of its Dramatiq processes,
# their other sandboxes, a web process of the same user).
BALLAST_THREADS = 80


@pytest.fixture(scope="module")
def worker_user() -> Iterator[pwd.struct_passwd]:
    """A system user without a home or a shell (created unless it exists; removed if created here)."""
    created = False
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        if shutil.which("useradd") is None:
            pytest.skip("no useradd to create a non-root user")
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", USER], check=True, capture_output=True)
        created = True
        entry = pwd.getpwnam(USER)
    refusal = _user_namespaces_refused(entry)
    try:
        if refusal:
            pytest.skip(f"unprivileged user namespaces are refused here, so a non-root worker cannot sandbox: "
                        f"{refusal}")
        yield entry
    finally:
        if created:  # refused (and left) while a process of the user still runs
            subprocess.run(["userdel", USER], check=False, capture_output=True)


@pytest.fixture
def folders(worker_user) -> Iterator[dict[str, Path]]:
    """The worker's HOME, data folder and the league's media folder, owned by the user (pytest's tmp_path is
    private to root)."""
    root = Path(tempfile.mkdtemp(prefix="pitlane-nonroot-"))
    made = {name: root / name for name in ("home", "data", "media")}
    for folder in (root, *made.values()):
        folder.mkdir(exist_ok=True)
        os.chown(folder, worker_user.pw_uid, worker_user.pw_gid)
    yield made
    shutil.rmtree(root, ignore_errors=True)


def as_user(user: pwd.struct_passwd, argv: list[str]) -> list[str]:
    """``argv`` run as ``user``: setpriv, inside a mount namespace exposing the Python installation if needed."""
    switch = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", "--", *argv]
    needed = {path: top for path in {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), REPO}
              if (top := _closed_ancestor(path)) is not None}
    if not needed:
        return switch
    wrapper = ["bwrap", "--dev-bind", "/", "/"]
    for top in sorted(set(needed.values())):  # hidden behind an empty folder anyone may enter...
        wrapper += ["--perms", "0755", "--tmpfs", str(top)]
    for path, top in sorted(needed.items()):  # ...which shows only what the worker needs, where it was
        for parent in reversed(path.parents):
            if top in parent.parents:
                wrapper += ["--perms", "0755", "--dir", str(parent)]
        wrapper += ["--ro-bind", str(path), str(path)]
    return [*wrapper, *switch]


def start_user_worker(user: pwd.struct_passwd, env: dict[str, str], queue: str, log: Path) -> subprocess.Popen:
    """``manage.py rundramatiq`` for one queue as the user, one process, one thread (the units' per-process
    setting), in its own process group."""
    command = [sys.executable, "manage.py", "rundramatiq", "--queues", queue, "--processes", "1", "--threads", "1"]
    return subprocess.Popen(as_user(user, command), cwd=REPO, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def user_environment(redis_url: str, folders: dict[str, Path], **extra: str) -> dict[str, str]:
    env = worker_environment(redis_url, str(folders["media"]), HOME=str(folders["home"]),
                             PITLANE_DATA_DIR=str(folders["data"]), PITLANE_SECRET_KEY="non-root-test-" + "k" * 40,
                             PYTHONDONTWRITEBYTECODE="1", **extra)
    env.pop("TMPDIR", None)  # root's own temporary folder, if any, is not the user's
    return env


def stop_user_worker(process: subprocess.Popen) -> None:
    """SIGTERM, as systemd stops the unit; then nothing it started may be left running (killed if it is)."""
    started = _descendants(process.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    deadline = time.monotonic() + 30
    while (left := [pid for pid, since in started.items() if _start_time(pid) == since]) and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# Inside the sandbox: where the run can write, and how many processes it can start; reported in its scratch.
CONTAINED_RUN = """
import json, os, subprocess, time
writable = []
for folder in ("/", "/app", "/app/evaluator", "/dev", "/dev/shm", "/etc", "/sys", "/venv", "/model", "/scratch",
               "/tmp"):
    try:
        open(os.path.join(folder, "pitlane-probe"), "w").close()
        writable.append(folder)
    except OSError:
        pass
processes = []
try:
    for _ in range(200):
        processes.append(subprocess.Popen(["sleep", "30"]))
except OSError:
    pass
open("/scratch/report.json", "w").write(json.dumps({"writable": writable, "spawned": len(processes)}))
time.sleep(30)
"""
# The worker user's side: more tasks than the cap, then the sandbox, read through its scratch view.
BUSY_USER = """
import json, os, sys, threading, time
from pathlib import Path
from evaluator import sandbox
hold = threading.Event()
for _ in range(int(sys.argv[1])):
    threading.Thread(target=hold.wait, daemon=True).start()
folder = Path(sys.argv[2])
process = sandbox.start_sandboxed(["-c", sys.argv[3]], folder / "model", folder / "work",
                                  sandbox.SandboxLimits(wall_seconds=60, processes=20))
deadline = time.monotonic() + 60
while (view := process.scratch()) is None or (report := view.read("report.json", 4096)) is None:
    assert process.alive() and time.monotonic() < deadline, process.finish().stderr.decode()[-2000:]
    time.sleep(0.1)
uid = next(line.split()[1] for line in Path(f"/proc/{process._run_pid()}/status").read_text().splitlines()
           if line.startswith("Uid:"))
print(json.dumps(json.loads(report) | {"user_tasks": len(os.listdir("/proc/self/task")), "run_host_uid": int(uid),
                                      "mode": process.mode}))
process.kill()
process.finish()
process.close_scratch()
"""


def test_a_busy_non_root_users_sandbox_starts_and_stays_contained(worker_user, folders):
    """RLIMIT_NPROC counts every task of a uid: set by a non-root worker before bwrap, it counted all of the worker
    user's threads, and past the cap no sandbox started ("Creating new namespace failed: Resource temporarily
    unavailable"; with 6 worker processes, 2 of them refused every evaluation). And bwrap's own root folders belong
    to a non-root worker's run: it could write, uncapped, in RAM, anywhere there. Here the user holds more tasks than
    the cap, its sandbox starts, the cap binds the run, and the run writes only where a root worker's run can."""
    env = user_environment("redis://127.0.0.1:1/0", folders)
    command = [sys.executable, "-c", BUSY_USER, str(BALLAST_THREADS), str(folders["home"]), CONTAINED_RUN]
    done = subprocess.run(as_user(worker_user, command), cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["mode"] == "bubblewrap" and report["user_tasks"] > BALLAST_THREADS
    assert 0 < report["spawned"] < 20, report  # the cap binds the run (bwrap's own processes count too)
    assert report["writable"] == ["/scratch", "/tmp"], report  # both size-capped
    assert report["run_host_uid"] == worker_user.pw_uid  # outside, the run is the worker's uid: never root


@pytest.mark.django_db(transaction=True)
def test_a_non_root_evaluation_worker_scores_a_submission_in_its_sandbox_started_ahead(
        worker_user, folders, redis_server, make_race, make_racer, oval_track, archive_bytes, settings, tmp_path):
    settings.MEDIA_ROOT = str(folders["media"])
    race = make_race(track=oval_track, total_laps=1, minimum_laps=1, time_cap_s=30)
    racer = make_racer("Unprivileged")
    with broker_at(redis_server.url):
        # Started first: it boots (and starts its sandbox ahead) while the submission is made.
        worker = start_user_worker(worker_user, user_environment(redis_server.url, folders), "evaluations",
                                   tmp_path / "worker.log")
        try:
            with transaction.atomic():  # the worker is nudged on commit: after the upload is the user's
                submission = submission_create(racer, race, model_upload(racer, "plain", io.BytesIO(archive_bytes)))
                _give_to(folders["media"], worker_user)  # as in production: the media folder is the worker user's
            wait_for(lambda: Submission.objects.get(pk=submission.pk).status in ("scored", "failed")
                     or worker.poll() is not None, 180, "the non-root worker's result")
        finally:
            stop_user_worker(worker)
    log = (tmp_path / "worker.log").read_text(errors="replace")[-3000:]
    submission.refresh_from_db()
    assert submission.status == "scored", f"{submission.failure_reason}\n{log}"
    attempt = EvaluationAttempt.objects.get(target_kind="submission", target_id=submission.pk)
    assert attempt.sandbox_mode == "bubblewrap" and attempt.status == "succeeded"
    assert attempt.timings["warm"] == 1.0, f"not the sandbox started ahead: {attempt.timings}\n{log}"
    run = Run.objects.get(submission=submission)
    assert run.laps and run.simtrace.read().startswith(b"episode,steps,X,Y")  # written by the worker user


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_non_root_training_worker_trains_reads_its_scratch_and_stores_the_model(
        worker_user, folders, redis_server, make_racer, oval_track, settings, tmp_path):
    settings.MEDIA_ROOT = str(folders["media"])
    racer = make_racer("Unprivileged")
    env = user_environment(redis_server.url, folders, PITLANE_TRAINING_PROGRESS_S="1")
    runs_seen: set[tuple[int, int, str]] = set()

    def finished() -> bool:
        runs_seen.update(_training_runs_of(worker_user.pw_uid))
        ended = TrainingJob.objects.filter(pk=job.pk, status__in=("done", "failed")).exists()
        return ended or worker.poll() is not None

    with broker_at(redis_server.url):
        worker = start_user_worker(worker_user, env, "training", tmp_path / "worker.log")  # boots meanwhile
        try:
            with transaction.atomic():  # nudged on commit: after what the test process stored is the user's
                job = training_start(racer, small_request(oval_track, name="unprivileged"),
                                     small_options(max_episodes=5))
                _give_to(folders["media"], worker_user)
            wait_for(finished, 240, "the non-root training worker to finish the job")
        finally:
            stop_user_worker(worker)
    log = (tmp_path / "worker.log").read_text(errors="replace")[-3000:]
    job.refresh_from_db()
    assert job.status == "done", f"{job.failure_reason}\n{log}"
    # What the worker read from the run's in-memory scratch: the progress while it ran, the model at the end.
    assert job.iterations == 1 and [row["iteration"] for row in job.curve] == [1], job.curve
    assert "iteration 1:" in job.log_tail and job.model is not None
    assert job.model.archive.size > 0
    # The trainer ran as the worker's uid on the host, and yielded the CPU to evaluations as under a root worker
    # (sampled: one sample may precede the runner's first line).
    assert runs_seen and {uid for uid, _, _ in runs_seen} == {worker_user.pw_uid}, runs_seen
    assert (worker_user.pw_uid, 10, "10") in runs_seen, runs_seen


def _give_to(folder: Path, user: pwd.struct_passwd) -> None:
    """What the test process (root) wrote into the shared folder becomes the worker user's."""
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(root, name), user.pw_uid, user.pw_gid)


def _training_runs_of(uid: int) -> set[tuple[int, int, str]]:
    """(host uid, nice, autogroup nice) of every sandboxed trainer of ``uid`` running now."""
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"evaluator.training_runner" not in argv or b"bwrap" in argv[0] or b"prlimit" in argv[0]:
                continue
            owner = os.stat(f"/proc/{pid}").st_uid
            if owner != uid:
                continue
            autogroup = Path(f"/proc/{pid}/autogroup")
            found.add((owner, os.getpriority(os.PRIO_PROCESS, int(pid)),
                       autogroup.read_text().split()[-1] if autogroup.exists() else ""))
        except OSError:  # it ended meanwhile
            continue
    return found


def _closed_ancestor(path: Path) -> Path | None:
    """The outermost folder on the way to ``path`` that other users may not enter (e.g. /root, mode 0700)."""
    for folder in [*reversed(path.parents), path]:
        if folder.is_dir() and not folder.stat().st_mode & stat.S_IXOTH:
            return folder
    return None


def _user_namespaces_refused(user: pwd.struct_passwd) -> str:
    """Why the kernel refuses ``user`` a user namespace, or "" (bubblewrap's own attempt decides)."""
    switches = {"/proc/sys/kernel/unprivileged_userns_clone": "0", "/proc/sys/user/max_user_namespaces": "0",
                "/proc/sys/kernel/apparmor_restrict_unprivileged_userns": "1"}
    for path, refusing in switches.items():
        with contextlib.suppress(OSError):
            if Path(path).read_text().strip() == refusing:
                return f"{path.removeprefix('/proc/sys/').replace('/', '.')} = {refusing}"
    probe = subprocess.run(as_user(user, ["bwrap", "--unshare-all", "--ro-bind", "/", "/", "true"]),
                           capture_output=True, text=True, timeout=30, cwd="/")
    # bwrap's words where the kernel (or an AppArmor policy) refuses: "No permissions to create new namespace",
    # "setting up uid map: Permission denied", "Creating new namespace failed: Operation not permitted".
    refused = ("No permissions to creat", "uid map", "not permitted", "Permission denied")
    if probe.returncode != 0 and any(words in probe.stderr for words in refused):
        return probe.stderr.strip()[-300:]
    return ""  # it works, or fails otherwise: then the tests fail, with the sandbox's own error


def _descendants(root: int) -> dict[int, str]:
    """Every process under ``root`` (pid: its start time, so a reused pid is not taken for it)."""
    children: dict[int, list[int]] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError, IndexError, ValueError):
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(pid))
    found, stack = {}, [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if since := _start_time(child):  # else it has ended already
                found[child] = since
            stack.append(child)
    return found


def _start_time(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""
