"""Run a long-lived `manage.py` command (server, worker) in a subprocess, as an operator would."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def manage_py(args: list[str], env: dict[str, str], log: Path, ready: str, timeout: float = 600) -> Iterator[None]:
    """Start `manage.py *args`, wait until `ready` appears in its output, stop it with SIGTERM on exit.

    The output (stdout and stderr) stays in `log` for assertions after the process ended. ``timeout`` only
    guards against a hang (a start that never comes); a slow or loaded machine gets all the time it needs.
    """
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: gunicorn/dramatiq children stop with it
        )
    try:
        deadline = time.monotonic() + timeout
        while ready not in log.read_text():
            assert process.poll() is None, f"manage.py {args[0]} exited early:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no {ready!r} after {timeout} s:\n{log.read_text()}"
            time.sleep(0.2)
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
