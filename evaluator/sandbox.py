"""The sandbox that runs an untrusted model: bubblewrap namespaces plus resource limits.

Inside: no network (all namespaces unshared), read-only Python, read-only ``sim`` code, the runner and its
contract, the validated model folder read-only, one private writable scratch folder, a scrubbed environment
(no settings, no secrets, no database). Limits: CPU seconds and address space (rlimits), process count (a pids cgroup
where the host allows one, else RLIMIT_NPROC), output size, and a wall clock after which the whole
process group is killed. Where bubblewrap cannot run, evaluation is refused unless
``PITLANE_SANDBOX_ALLOW_FALLBACK`` allows the weaker rlimits-only mode; that choice is logged loudly.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
APP_MOUNT = "/app"
MODEL_MOUNT = "/model"
SCRATCH_MOUNT = "/scratch"
PIDS_CGROUP_ROOT = Path("/sys/fs/cgroup/pids")
TMPFS_BYTES = 64 * 1024**2  # the private /tmp lives in RAM
STDERR_BYTES = 64 * 1024  # the tail is kept: the last lines say why a run died
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class SandboxUnavailable(RuntimeError):
    """Bubblewrap cannot run here and the weaker fallback is not allowed."""


@dataclass(frozen=True)
class SandboxLimits:
    wall_seconds: float = 120.0
    cpu_seconds: int = 300
    # Address space. Measured: a camera + 3-layer model racing peaks at 0.78 GB mapped / 0.41 GB resident;
    # the largest network (stereo + 5-layer, 461 MB of weights) adds about twice its weights while loading.
    memory_bytes: int = 6 * 1024**3
    processes: int = 64
    file_bytes: int = 64 * 1024**2
    open_files: int = 256
    output_bytes: int = 32 * 1024**2


@dataclass(frozen=True)
class SandboxOutcome:
    returncode: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool
    wall_seconds: float
    mode: str

    @property
    def signal_name(self) -> str | None:
        """The signal that ended the run: bwrap reports its child's death by signal N as exit code 128 + N."""
        code = self.returncode
        if code is not None and code < 0:
            return signal.Signals(-code).name
        if code is not None and self.mode == "bubblewrap" and 128 < code < 128 + signal.NSIG:
            with contextlib.suppress(ValueError):
                return signal.Signals(code - 128).name
        return None


@functools.cache
def bubblewrap_works() -> bool:
    """Whether bwrap can create its namespaces on this host (checked once per process)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False
    try:
        probe = subprocess.run(
            [bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"],
            capture_output=True, timeout=10, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def sandbox_mode(allow_fallback: bool) -> str:
    if bubblewrap_works():
        return "bubblewrap"
    if allow_fallback:
        log.warning("SANDBOX FALLBACK: bubblewrap is unavailable; untrusted models run with rlimits only "
                    "(no namespaces: the model could reach the network and read world-readable files)")
        return "fallback"
    raise SandboxUnavailable(
        "bubblewrap (bwrap) cannot run on this machine, so evaluations are refused; install the Debian package "
        "'bubblewrap' or set PITLANE_SANDBOX_ALLOW_FALLBACK=true to accept the weaker rlimits-only sandbox"
    )


def status_line(allow_fallback: bool) -> tuple[bool, str]:
    """(healthy, one sentence) about the sandbox on this machine, for the admin and the health checks."""
    if bubblewrap_works():
        return True, "Sandbox: bubblewrap (no network, read-only code and model, private scratch, limits)."
    if allow_fallback:
        return False, ("SANDBOX FALLBACK: bubblewrap cannot run on this machine; untrusted models run with "
                       "resource limits only (they could reach the network and read world-readable files).")
    return False, ("bubblewrap cannot run on this machine: evaluations are refused until it is installed "
                   "(Debian package 'bubblewrap') or PITLANE_SANDBOX_ALLOW_FALLBACK=true accepts the weaker sandbox.")


def run_sandboxed(
    python_args: Sequence[str],
    stdin: bytes,
    model_dir: Path,
    scratch_dir: Path,
    limits: SandboxLimits = SandboxLimits(),
    allow_fallback: bool = False,
) -> SandboxOutcome:
    """Run ``python <python_args>`` (e.g. ``["-m", "evaluator.runner"]``) with ``stdin``, contained."""
    return start_sandboxed(python_args, model_dir, scratch_dir, limits, allow_fallback).finish(stdin)


def start_sandboxed(
    python_args: Sequence[str],
    model_dir: Path,
    scratch_dir: Path,
    limits: SandboxLimits = SandboxLimits(),
    allow_fallback: bool = False,
) -> SandboxProcess:
    """Start the contained process now; send its input later with ``finish`` (or ``abort`` it).

    ``model_dir`` must exist; it may still be filled after the start (the bind shows the folder, not a copy),
    which lets the runner import torch while the worker validates the archive. The wall clock starts here.
    """
    mode = sandbox_mode(allow_fallback)
    model_dir.mkdir(parents=True, exist_ok=True)
    scratch_dir.mkdir(parents=True, exist_ok=True)
    python = Path(sys.executable)
    if mode == "bubblewrap":
        command = [*_bwrap_arguments(model_dir, scratch_dir), str(python), "-s", "-B", *python_args]
        env = None  # --clearenv inside bwrap decides the environment
    else:
        command = [str(python), "-s", "-B", *python_args]
        env = _scrubbed_environment(home=str(scratch_dir), pythonpath=str(PROJECT_ROOT))
    cgroup = _new_pids_cgroup(limits.processes)
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=str(scratch_dir),
            env=env,
            start_new_session=True,  # its own process group, so a timeout kills every descendant
            preexec_fn=functools.partial(_apply_limits, limits, cgroup),
        )
    except BaseException:
        _remove_cgroup(cgroup)
        raise
    return SandboxProcess(process, cgroup, limits, mode, started)


class SandboxProcess:
    """A started sandbox: its output is read with size caps while it runs, and it never outlives ``finish``."""

    def __init__(self, process: subprocess.Popen, cgroup: Path | None, limits: SandboxLimits, mode: str,
                 started: float) -> None:
        self.process, self.cgroup, self.limits, self.mode, self.started = process, cgroup, limits, mode, started
        self.output_exceeded = False
        self._stdout = _CappedReader(process.stdout, limits.output_bytes + 1, self._too_much_output)
        self._stderr = _CappedReader(process.stderr, STDERR_BYTES, None, keep_tail=True)

    def finish(self, stdin: bytes) -> SandboxOutcome:
        """Send the input, wait up to the rest of the wall-clock limit, kill the whole group, report."""
        writer = threading.Thread(target=self._write, args=(stdin,), daemon=True, name="sandbox-stdin")
        writer.start()
        timed_out = False
        try:
            self.process.wait(timeout=max(0.0, self.limits.wall_seconds - (time.monotonic() - self.started)))
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            self._stop()
        return SandboxOutcome(
            returncode=self.process.returncode,
            stdout=self._stdout.data(),
            stderr=self._stderr.data(),
            timed_out=timed_out,
            wall_seconds=time.monotonic() - self.started,
            mode=self.mode,
        )

    def abort(self) -> None:
        """Stop a sandbox whose input will never come (e.g. the archive was refused)."""
        self._stop()

    def kill(self) -> None:
        """Kill the run from another thread; ``finish`` then returns its (killed) outcome."""
        _kill_group(self.process)
        _kill_cgroup(self.cgroup)

    def _stop(self) -> None:
        _kill_group(self.process)  # a daemonised grandchild must not outlive the run
        _remove_cgroup(self.cgroup)
        self.process.wait()
        self._stdout.join()
        self._stderr.join()

    def _write(self, data: bytes) -> None:
        with contextlib.suppress(OSError):  # BrokenPipe: the runner died or was killed before reading
            self.process.stdin.write(data)
        with contextlib.suppress(OSError):
            self.process.stdin.close()

    def _too_much_output(self) -> None:
        self.output_exceeded = True
        _kill_group(self.process)


class _CappedReader:
    """Drains a pipe on a thread, keeping at most ``cap`` bytes (the head, or the tail for stderr)."""

    def __init__(self, stream: IO[bytes], cap: int, on_overflow: Callable[[], None] | None,
                 keep_tail: bool = False) -> None:
        self._chunks = bytearray()
        self._thread = threading.Thread(target=self._drain, args=(stream, cap, on_overflow, keep_tail),
                                        daemon=True, name="sandbox-output")
        self._thread.start()

    def _drain(self, stream: IO[bytes], cap: int, on_overflow: Callable[[], None] | None, keep_tail: bool) -> None:
        overflowed = False
        with stream:
            while chunk := stream.read1(64 * 1024):
                if keep_tail:
                    self._chunks += chunk
                    del self._chunks[:-cap]
                elif len(self._chunks) < cap:
                    self._chunks += chunk[: cap - len(self._chunks)]
                if not keep_tail and len(self._chunks) >= cap and not overflowed:
                    overflowed = True
                    if on_overflow is not None:
                        on_overflow()

    def join(self) -> None:
        self._thread.join(timeout=10)

    def data(self) -> bytes:
        return bytes(self._chunks)


def _bwrap_arguments(model_dir: Path, scratch_dir: Path) -> list[str]:
    python_home = Path(sys.base_prefix)
    venv = Path(sys.prefix)
    # The tmpfs goes first: mounted after the binds it would hide a venv or checkout that lives under /tmp.
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--clearenv",
            "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp"]  # in memory: capped
    for system_dir in ("/usr", "/bin", "/lib", "/lib64", "/lib32", "/etc/ld.so.cache", "/etc/alternatives"):
        if os.path.exists(system_dir):
            args += ["--ro-bind", system_dir, system_dir]
    for tree in {python_home, venv}:
        args += ["--ro-bind", str(tree), str(tree)]
    if Path("/sys/devices/system/cpu").exists():  # torch reads the CPU topology
        args += ["--ro-bind", "/sys/devices/system/cpu", "/sys/devices/system/cpu"]
    args += [
        "--ro-bind", str(PROJECT_ROOT / "sim"), f"{APP_MOUNT}/sim",
        "--ro-bind", str(PROJECT_ROOT / "evaluator" / "runner.py"), f"{APP_MOUNT}/evaluator/runner.py",
        "--ro-bind", str(PROJECT_ROOT / "evaluator" / "contract.py"), f"{APP_MOUNT}/evaluator/contract.py",
        "--ro-bind", str(PROJECT_ROOT / "evaluator" / "__init__.py"), f"{APP_MOUNT}/evaluator/__init__.py",
        "--ro-bind", str(model_dir), MODEL_MOUNT,
        "--bind", str(scratch_dir), SCRATCH_MOUNT,
        "--proc", "/proc",
        "--dev", "/dev",
        "--chdir", SCRATCH_MOUNT,
    ]
    for name, value in _scrubbed_environment(home=SCRATCH_MOUNT, pythonpath=APP_MOUNT).items():
        args += ["--setenv", name, value]
    return args


def _scrubbed_environment(home: str, pythonpath: str) -> dict[str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": home,
        "LANG": "C.UTF-8",
        "PYTHONPATH": pythonpath,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "MPLCONFIGDIR": f"{home}/.matplotlib",
    }
    env |= {name: "1" for name in THREAD_VARIABLES}
    return env


def _apply_limits(limits: SandboxLimits, cgroup: Path | None) -> None:
    """Runs in the child between fork and exec: only async-signal-safe-ish work."""
    if cgroup is not None:
        (cgroup / "cgroup.procs").write_text(str(os.getpid()))
    else:
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _new_pids_cgroup(max_processes: int) -> Path | None:
    """A pids cgroup capping the run's process count (RLIMIT_NPROC does not bind root on this kind)."""
    if not os.access(PIDS_CGROUP_ROOT, os.W_OK):
        return None
    path = PIDS_CGROUP_ROOT / f"pitlane-{uuid.uuid4().hex[:12]}"
    try:
        path.mkdir()
        (path / "pids.max").write_text(str(max_processes))
    except OSError:
        return None
    return path


def _kill_cgroup(path: Path | None) -> None:
    """Kill every process in the run's cgroup (escapees from the process group included)."""
    if path is None:
        return
    try:
        for pid in (path / "cgroup.procs").read_text().split():
            os.kill(int(pid), signal.SIGKILL)
    except (OSError, ValueError):
        pass


def _remove_cgroup(path: Path | None) -> None:
    """Kill whatever is left in the run's cgroup, then remove it."""
    if path is None:
        return
    for _ in range(50):
        _kill_cgroup(path)
        try:
            path.rmdir()
            return
        except OSError:  # still has tasks for a moment after the kill
            time.sleep(0.02)


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
