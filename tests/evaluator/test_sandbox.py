"""The sandbox contains an untrusted run: no network, no secrets, read-only code, limits enforced."""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

import pytest

from evaluator import sandbox
from evaluator.sandbox import SandboxLimits, run_sandboxed

pytestmark = pytest.mark.skipif(not sandbox.bubblewrap_works(), reason="bubblewrap cannot run on this machine")


DEFAULT_LIMITS = SandboxLimits(wall_seconds=60)


def probe(tmp_path, code: str, limits: SandboxLimits = DEFAULT_LIMITS):
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "model_metadata.json").write_text("{}")
    return run_sandboxed(["-c", code], b"", model, tmp_path / "scratch", limits)


def test_a_run_cannot_reach_the_network(tmp_path):
    code = (
        "import socket\n"
        "try:\n    socket.create_connection(('127.0.0.1', 5432), timeout=2); print('connected')\n"
        "except OSError as error: print('blocked', type(error).__name__)\n"
    )
    outcome = probe(tmp_path, code)
    assert outcome.stdout.decode().startswith("blocked") and outcome.mode == "bubblewrap"


def test_a_run_sees_no_settings_no_data_and_no_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("PITLANE_SECRET_KEY", "do-not-leak-this")
    code = (
        "import os, pathlib\n"
        "print(sorted(os.environ))\n"
        "print(pathlib.Path('/work/main/league/settings.py').exists(), pathlib.Path('/work/main/data').exists())\n"
        "print(sorted(p.name for p in pathlib.Path('/app').iterdir()))\n"
    )
    env_line, files_line, app_line = probe(tmp_path, code).stdout.decode().splitlines()
    assert "PITLANE_SECRET_KEY" not in env_line and "do-not-leak" not in env_line
    assert files_line == "False False"
    assert app_line == "['evaluator', 'sim']"


def test_a_run_can_write_only_its_scratch_folder(tmp_path):
    """Scratch is the run's own (in memory): nothing it writes there reaches the host's disk."""
    code = (
        "import pathlib\n"
        "for target in ('/app/sim/evil.py', '/model/evil', '/usr/evil', '/scratch/fine'):\n"
        "    try:\n        pathlib.Path(target).write_text('x'); print(target, 'written')\n"
        "    except OSError:\n        print(target, 'refused')\n"
        "print(pathlib.Path('/scratch/fine').read_text())\n"
    )
    lines = probe(tmp_path, code).stdout.decode().splitlines()
    assert lines == ["/app/sim/evil.py refused", "/model/evil refused", "/usr/evil refused", "/scratch/fine written",
                     "x"]
    assert not (tmp_path / "model" / "evil").exists()
    assert list((tmp_path / "scratch").iterdir()) == []


def host_processes_mentioning(text: str) -> list[int]:
    """The host's processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:  # gone meanwhile
                pass
    return found


def test_a_hanging_run_is_killed_at_its_wall_limit_with_its_children(tmp_path):
    marker = f"grandchild-{uuid.uuid4().hex}"  # in the grandchild's command line, visible in the host's /proc
    code = (
        "import subprocess, time\n"
        f"subprocess.Popen(['sh', '-c', 'while true; do sleep 0.2; done; echo {marker}'])\n"
        "time.sleep(600)\n"
    )
    started = time.monotonic()
    outcome = probe(tmp_path, code, SandboxLimits(wall_seconds=3))
    assert outcome.timed_out and time.monotonic() - started < 15
    time.sleep(0.5)
    assert host_processes_mentioning(marker) == [], "the grandchild survived the kill"


def test_memory_beyond_the_limit_is_refused(tmp_path):
    code = "b = bytearray(3 * 1024**3)\nprint('allocated')\n"
    outcome = probe(tmp_path, code, SandboxLimits(wall_seconds=30, memory_bytes=2 * 1024**3))
    assert b"allocated" not in outcome.stdout and b"MemoryError" in outcome.stderr


@pytest.mark.skipif(not os.access(sandbox.PIDS_CGROUP_ROOT, os.W_OK), reason="no writable pids cgroup here")
def test_a_fork_bomb_hits_the_process_limit(tmp_path):
    code = (
        "import subprocess\nprocs = []\n"
        "try:\n"
        "    for _ in range(200): procs.append(subprocess.Popen(['sleep', '30']))\n"
        "    print('spawned all')\n"
        "except OSError as error:\n    print('stopped after', len(procs))\n"
    )
    outcome = probe(tmp_path, code, SandboxLimits(wall_seconds=30, processes=20))
    text = outcome.stdout.decode()
    assert text.startswith("stopped after") and int(text.split()[-1]) < 20


def test_a_flood_of_output_is_cut_at_the_cap_and_the_run_killed(tmp_path):
    code = "import sys\nwhile True: sys.stdout.write('x' * 65536)\n"
    started = time.monotonic()
    outcome = probe(tmp_path, code, SandboxLimits(wall_seconds=30, output_bytes=100_000))
    assert len(outcome.stdout) == 100_001 and not outcome.timed_out
    assert outcome.signal_name == "SIGKILL" and time.monotonic() - started < 10


def test_a_started_sandbox_can_be_aborted_before_its_input(tmp_path):
    model = tmp_path / "model"
    process = sandbox.start_sandboxed(["-c", "import sys; sys.stdin.read(); print('ran')"], model,
                                      tmp_path / "scratch", DEFAULT_LIMITS)
    process.abort()
    assert process.process.returncode is not None


def test_the_model_folder_may_be_filled_after_the_start(tmp_path):
    """The worker validates the archive while the runner imports: the bind shows files added later."""
    model = tmp_path / "model"
    process = sandbox.start_sandboxed(["-c", "import sys; sys.stdin.read(); print(open('/model/w').read())"],
                                      model, tmp_path / "scratch", DEFAULT_LIMITS)
    (model / "w").write_text("weights")
    assert process.finish(b"go").stdout.decode().strip() == "weights"


def test_a_failed_bubblewrap_check_is_checked_again_later_and_a_success_holds(monkeypatch):
    """A passing fault (the host out of processes for a moment) must not turn a worker away for good."""
    answers, asked = [False, True], []
    monkeypatch.setattr(sandbox, "_start_bubblewrap_probe", lambda: asked.append(1) or answers[len(asked) - 1])
    monkeypatch.setattr(sandbox, "_bubblewrap_checked", None)

    assert not sandbox.bubblewrap_works() and not sandbox.bubblewrap_works() and len(asked) == 1
    works, checked_at = sandbox._bubblewrap_checked
    sandbox._bubblewrap_checked = (works, checked_at - sandbox.BUBBLEWRAP_RECHECK_S)  # a minute later
    assert sandbox.bubblewrap_works() and len(asked) == 2
    works, checked_at = sandbox._bubblewrap_checked
    sandbox._bubblewrap_checked = (works, checked_at - 10 * sandbox.BUBBLEWRAP_RECHECK_S)
    assert sandbox.bubblewrap_works() and len(asked) == 2


def test_without_bubblewrap_evaluation_is_refused_unless_the_fallback_is_allowed(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(sandbox, "bubblewrap_works", lambda: False)
    monkeypatch.setenv("PITLANE_SECRET_KEY", "do-not-leak-this")
    with pytest.raises(sandbox.SandboxUnavailable, match="PITLANE_SANDBOX_ALLOW_FALLBACK"):
        probe(tmp_path, "print('ran')")
    model = tmp_path / "model"
    outcome = run_sandboxed(["-c", "import os; print(sorted(os.environ))"], b"", model, tmp_path / "scratch",
                            DEFAULT_LIMITS, allow_fallback=True)
    assert outcome.mode == "fallback" and "PITLANE_SECRET_KEY" not in outcome.stdout.decode()
    assert "SANDBOX FALLBACK" in caplog.text


def test_the_private_tmp_is_small_and_private(tmp_path):
    """Empty wherever the checkout lives (the code and the venv are mounted at fixed paths); only a Python
    installation that itself lives under /tmp shows there, at its own path."""
    python_home = Path(sys.base_prefix)
    expected = [python_home.relative_to("/tmp").parts[0]] if python_home.is_relative_to("/tmp") else []
    code = (
        "import os\n"
        "print(os.listdir('/tmp'))\n"
        "try:\n"
        "    for i in range(20):\n"
        "        with open(f'/tmp/fill{i}', 'wb') as f: f.write(b'x' * 10 * 1024**2)\n"
        "    print('filled')\n"
        "except OSError as error:\n    print('full', error.errno)\n"
    )
    listing, result = probe(tmp_path, code).stdout.decode().splitlines()
    assert listing == str(expected) and result == "full 28"  # ENOSPC: many small files cannot fill the RAM either


def test_input_in_two_parts_and_a_wall_clock_that_starts_with_it(tmp_path):
    """A sandbox started ahead of its job waits as long as it likes; its wall clock runs from the first input."""
    code = ("import sys, time\n"
            "job = sys.stdin.readline()\n"
            "rest = sys.stdin.read()\n"  # the end of input: the model folder is ready
            "print(repr(job), repr(rest))\n"
            "time.sleep(float(job))\n")
    model = tmp_path / "model"
    started = sandbox.start_sandboxed(["-c", code], model, tmp_path / "scratch", SandboxLimits(wall_seconds=1.5),
                                      clock_from_input=True)
    time.sleep(2.5)  # idle for longer than the wall clock
    assert started.alive()
    started.send(b"0.1\n")
    (model / "weights").write_text("filled after the job was sent")
    outcome = started.finish()
    assert not outcome.timed_out and outcome.stdout.decode().strip() == "'0.1\\n' ''"
    assert outcome.wall_seconds < 1.5

    sleeper = sandbox.start_sandboxed(["-c", code], tmp_path / "model2", tmp_path / "scratch2",
                                      SandboxLimits(wall_seconds=1.5), clock_from_input=True)
    sleeper.send(b"600\n")
    outcome = sleeper.finish()
    assert outcome.timed_out and 1.4 < outcome.wall_seconds < 5
