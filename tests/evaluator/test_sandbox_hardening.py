"""Tests from inside the sandbox: the run is unprivileged, cannot reshape its filesystem, is filtered, sees no
secret, and cannot fill the host's disk (issue "Hardening", items 1-3). Each snippet runs through the real sandbox.
"""

from __future__ import annotations

import errno
import io
import json
import os
import sys
from pathlib import Path

import pyseccomp
import pytest

from evaluator import execution, sandbox
from evaluator.execution import execute_attempt
from evaluator.sandbox import SandboxLimits, run_sandboxed
from evaluator.services import attempt_claim_next
from races.services import model_upload, submission_create

pytestmark = pytest.mark.skipif(not sandbox.bubblewrap_works(), reason="bubblewrap cannot run on this machine")

LIMITS = SandboxLimits(wall_seconds=60)
MS_REMOUNT_BIND = 32 | 4096  # MS_REMOUNT | MS_BIND without MS_RDONLY: "make this bind writable"


def probe(tmp_path: Path, code: str, limits: SandboxLimits = LIMITS) -> list[str]:
    """Run ``code`` in the sandbox; its stdout lines (stderr shown on failure)."""
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "model_metadata.json").write_text("{}")
    outcome = run_sandboxed(["-c", code], b"", model, tmp_path / "scratch", limits)
    assert outcome.mode == "bubblewrap"
    assert outcome.returncode == 0, outcome.stderr.decode()[-2000:]
    return outcome.stdout.decode().splitlines()


def read_only_mounts() -> list[str]:
    """Every read-only bind the run sees (the Python installation, the venv, the code, the model, /usr...)."""
    mounts = [sys.base_prefix, sandbox.VENV_MOUNT, f"{sandbox.APP_MOUNT}/sim",
              f"{sandbox.APP_MOUNT}/evaluator/runner.py", f"{sandbox.APP_MOUNT}/evaluator/training_runner.py",
              f"{sandbox.APP_MOUNT}/evaluator/contract.py",
              sandbox.MODEL_MOUNT, "/usr", "/sys/devices/system/cpu"]
    return [mount for mount in mounts if mount != sandbox.VENV_MOUNT or sys.prefix != sys.base_prefix]


# ------------------------------------------------------------------------------------- 1. privileges and filter
def test_the_run_is_nobody_without_capabilities_and_never_the_hosts_root(tmp_path):
    code = (
        "import os\n"
        "print(os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups())\n"
        "status = dict(line.split(':', 1) for line in open('/proc/self/status'))\n"
        "print(*(status[key].strip() for key in ('CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs')))\n"
        "outside = {int(inside): int(host) for inside, host, _ in map(str.split, open('/proc/self/uid_map'))}\n"
        "print(outside.get(os.getuid(), os.getuid()) if outside else 'no map')\n"
        "try:\n    os.setuid(0); print('became root')\n"
        "except PermissionError:\n    print('setuid refused')\n"
    )
    ids, capabilities, host_uid, setuid = probe(tmp_path, code)
    assert ids == "65534 65534 65534 65534 []"
    assert capabilities == " ".join(["0000000000000000"] * 5 + ["1"])
    assert host_uid != "0"  # the run's uid maps to the host's nobody (or the worker's own uid), never to root
    assert setuid == "setuid refused"


@pytest.mark.skipif(os.geteuid() != 0, reason="the worker is not root here")
def test_a_root_worker_without_user_namespaces_still_runs_the_model_as_nobody(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "_user_namespaces_work", lambda: False)
    code = (
        "import os\n"
        "print(os.getuid(), os.getgid(), os.getgroups())\n"
        "print([line.split()[1] for line in open('/proc/self/status') if line.startswith('CapEff')][0])\n"
        "print(open('/proc/self/uid_map').read().split()[:2])\n"
    )
    assert probe(tmp_path, code) == ["65534 65534 []", "0000000000000000", "['0', '0']"]  # the host's own ids


def test_a_remount_of_every_read_only_bind_fails_and_nothing_is_written(tmp_path):
    """The escape of the issue: remounting a read-only bind writable, then writing into the host's code."""
    code = (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        f"for target in {read_only_mounts()!r}:\n"
        f"    status = libc.mount(None, target.encode(), None, {MS_REMOUNT_BIND}, None)\n"
        "    print(target, 'remounted' if status == 0 else os.strerror(ctypes.get_errno()))\n"
    )
    lines = probe(tmp_path, code)
    assert lines == [f"{target} {os.strerror(errno.EPERM)}" for target in read_only_mounts()]


def test_the_code_the_venv_the_python_installation_and_the_model_are_not_writable(tmp_path):
    targets = [f"{sandbox.APP_MOUNT}/sim/evil.py", f"{sandbox.APP_MOUNT}/evaluator/evil.py",
               f"{sandbox.MODEL_MOUNT}/evil", f"{sandbox.MODEL_MOUNT}/model_metadata.json",
               f"{sys.base_prefix}/evil", "/usr/evil"]
    if sys.prefix != sys.base_prefix:
        targets += [f"{sandbox.VENV_MOUNT}/evil", f"{sandbox.VENV_MOUNT}/pyvenv.cfg"]
    code = (
        "import os\n"
        f"for target in {targets!r}:\n"
        "    try:\n        open(target, 'a').close(); print(target, 'written')\n"
        "    except OSError as error:\n        print(target, 'refused')\n"
    )
    assert probe(tmp_path, code) == [f"{target} refused" for target in targets]
    assert (tmp_path / "model" / "model_metadata.json").read_text() == "{}"
    assert not (Path(sandbox.PROJECT_ROOT) / "sim" / "evil.py").exists()


def test_the_seccomp_filter_refuses_what_reshapes_the_sandbox_or_reaches_the_kernel(tmp_path):
    """unshare, keyctl and ptrace(TRACEME) succeed for any ordinary user: refused here, only the filter does it."""
    native = pyseccomp.system_arch()
    numbers = {name: pyseccomp.resolve_syscall(native, name) for name in (
        "unshare", "setns", "keyctl", "add_key", "request_key", "bpf", "ptrace", "process_vm_readv", "mount",
        "umount2", "pivot_root", "open_tree", "fsopen", "kexec_load", "init_module", "delete_module", "swapon",
        "swapoff", "perf_event_open", "userfaultfd", "open_by_handle_at", "reboot", "syslog", "io_uring_setup")}
    arguments = {"unshare": (0x10000000,),  # CLONE_NEWUSER
                 "keyctl": (0, 2**64 - 3),  # KEYCTL_GET_KEYRING_ID of the session keyring
                 "userfaultfd": (1,),  # UFFD_USER_MODE_ONLY: allowed to anyone
                 "syslog": (10, 0, 0)}  # SYSLOG_ACTION_SIZE_BUFFER
    code = (
        "import ctypes, os, threading, subprocess\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "libc.syscall.restype = ctypes.c_long\n"
        f"arguments = {arguments!r}\n"
        f"for name, number in {numbers!r}.items():\n"
        "    status = libc.syscall(number, *(ctypes.c_ulong(a) for a in arguments.get(name, (0, 0, 0, 0, 0))))\n"
        "    print(name, 'allowed' if status >= 0 else os.strerror(ctypes.get_errno()))\n"
        "print([line.split()[1] for line in open('/proc/self/status') if line.startswith('Seccomp:')][0])\n"
        # what a run does need still works: threads, a child process
        "thread = threading.Thread(target=print, args=('thread ran',)); thread.start(); thread.join()\n"
        "print(subprocess.run(['true']).returncode)\n"
    )
    lines = probe(tmp_path, code)
    assert lines[:-3] == [f"{name} {os.strerror(errno.EPERM)}" for name in numbers]
    assert lines[-3:] == ["2", "thread ran", "0"]  # Seccomp: 2 is "filter mode"


def test_the_filter_is_generated_by_libseccomp_for_this_architecture():
    program = sandbox.seccomp_program()
    assert len(program) % 8 == 0 and len(program) > 8 * len(sandbox.REFUSED_SYSCALLS)


# ------------------------------------------------------------------------------------------------ 2. secrets
def test_bubblewrap_itself_starts_without_the_workers_environment(tmp_path, monkeypatch):
    """A run could read its bubblewrap's /proc/<pid>/environ: bwrap must not hold the worker's secrets either."""
    monkeypatch.setenv("PITLANE_CANARY", "canary-3c1f")
    process = sandbox.start_sandboxed(["-c", "import sys; sys.stdin.read()"], tmp_path / "model",
                                      tmp_path / "scratch", LIMITS)
    try:
        environment = Path(f"/proc/{process.process.pid}/environ").read_bytes()
    finally:
        process.finish(b"")
    assert b"canary-3c1f" not in environment and b"PITLANE_CANARY" not in environment
    assert b"PYTHONPATH=/app" in environment  # it is bwrap's (scrubbed) environment, not an empty read


def test_no_process_inside_shows_a_canary_of_the_workers_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PITLANE_CANARY", "canary-3c1f")
    code = (
        "import glob\n"
        "seen, unreadable = [], 0\n"
        "for path in glob.glob('/proc/*/environ'):\n"
        "    try:\n        data = open(path, 'rb').read()\n"
        "    except OSError:\n        unreadable += 1; continue\n"
        "    seen.append(path)\n"
        "    if b'canary-3c1f' in data or b'PITLANE_CANARY' in data: print('leak', path)\n"
        "print(len(seen) > 0)\n"
    )
    assert probe(tmp_path, code) == ["True"]


# ------------------------------------------------------------------------------------------------ 3. scratch
def test_writing_past_the_scratch_cap_fails_with_enospc_and_never_touches_the_hosts_disk(tmp_path):
    code = (
        "import os\n"
        "written = 0\n"
        "try:\n"
        "    for part in range(64):\n"
        "        with open(f'/scratch/fill{part}', 'wb') as out: out.write(b'x' * 1024**2)\n"
        "        written += 1\n"
        "    print('filled')\n"
        "except OSError as error:\n    print('refused', error.errno, written)\n"
    )
    (result,) = probe(tmp_path, code, SandboxLimits(wall_seconds=60, scratch_bytes=8 * 1024**2))
    word, code_number, written = result.split()
    assert (word, int(code_number)) == ("refused", errno.ENOSPC) and int(written) <= 8
    assert list((tmp_path / "scratch").iterdir()) == []


@pytest.fixture
def evaluate(make_racer, make_race, archive_bytes, monkeypatch):
    """Evaluate a fresh submission once with ``code`` in place of the runner; the submission afterwards."""
    race = make_race(max_submissions_per_racer=10)
    racer = make_racer("Filler")
    model = model_upload(racer, "fresh", io.BytesIO(archive_bytes))

    def evaluate(code: str):
        monkeypatch.setattr(execution, "RUNNER", ("-c", code))
        submission = submission_create(racer, race, model)
        execute_attempt(attempt_claim_next("test-worker"))
        submission.refresh_from_db()
        return submission

    return evaluate


FILL_SCRATCH = (
    "def fill():\n"
    "    for part in range(1000):\n"
    "        with open(f'/scratch/fill{part}', 'wb') as out: out.write(b'x' * 16 * 1024**2)\n"
)


@pytest.mark.django_db(transaction=True)
def test_the_runner_reports_a_full_scratch_as_the_models_failure(evaluate):
    """The runner catches ENOSPC: a model failure with the limit in its message, failed at once, not retried."""
    submission = evaluate(FILL_SCRATCH + "from evaluator import runner\nrunner.main = fill\n"
                                         "raise SystemExit(runner.run())\n")
    assert submission.status == "failed"
    assert submission.failure_reason.startswith("The model exceeded the scratch limit (/scratch 128 MiB, /tmp 64 MiB)")
    assert list(submission.attempts.values_list("status", flat=True)) == ["failed"]


@pytest.mark.django_db(transaction=True)
def test_a_run_dying_of_a_full_disk_is_a_resource_limit_failure_not_a_crash(evaluate):
    """ENOSPC outside the runner's reach (a child process, a thread): the worker classifies it from the exit."""
    submission = evaluate(FILL_SCRATCH + "fill()\n")
    assert submission.status == "failed"
    assert submission.failure_reason.startswith("The evaluation exceeded the sandbox's disk limits (scratch 128 MiB")
    assert "No space left on device" in submission.failure_reason and "crashed" not in submission.failure_reason
    assert list(submission.attempts.values_list("status", flat=True)) == ["failed"]


def test_the_runner_names_the_file_size_limit(tmp_path):
    code = (
        "from evaluator import runner\n"
        "def big():\n"
        "    with open('/scratch/big', 'wb') as out: out.write(b'x' * 9 * 1024**2)\n"
        "runner.main = big\n"
        "raise SystemExit(runner.run())\n"
    )
    (line,) = probe(tmp_path, code, SandboxLimits(wall_seconds=60, file_bytes=8 * 1024**2))
    document = json.loads(line)
    assert (document["ok"], document["kind"]) == (False, "model")
    assert document["error"].startswith("The model exceeded the sandbox's file size limit")
