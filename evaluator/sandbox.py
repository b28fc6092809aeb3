"""The sandbox that runs an untrusted model: bubblewrap namespaces, no privileges, a syscall filter, resource limits.

Inside: no network (all namespaces unshared), an unprivileged user (uid/gid 65534, no capabilities, no new
privileges; run by a root worker it is the host's ``nobody`` through a user namespace the worker maps itself, run
by a non-root worker it is that worker's own uid outside, mapped by bwrap, confined by the namespaces), a seccomp
filter refusing the calls that reshape the sandbox or reach the kernel's soft spots (mount, ptrace, keyctl,
bpf, namespaces, kexec, modules, swap, ...), read-only Python, read-only ``sim`` code, the runner and its contract
(all at fixed paths: ``/app``, ``/venv``), the validated model folder read-only, a size-capped in-memory scratch
folder and ``/tmp``, and a scrubbed environment for bubblewrap itself and the run (no settings, no secrets, no
database). Limits: CPU seconds and address space (rlimits), process count (a pids cgroup where the host allows one,
else RLIMIT_NPROC; a non-root worker sets it inside the run's user namespace, where it counts the run's processes,
not all of the worker user's), scratch bytes, output size, and a wall clock after which the whole process group is
killed. Everything but the capped ``/scratch`` and ``/tmp`` is read-only, bubblewrap's own root and ``/dev`` included.
Where bubblewrap cannot run, evaluation is refused unless ``PITLANE_SANDBOX_ALLOW_FALLBACK`` allows the weaker
rlimits-only mode; that choice is logged loudly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import logging
import os
import re
import resource
import select
import shutil
import signal
import stat as stat_module
import subprocess
import sys
import tempfile
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
VENV_MOUNT = "/venv"  # a fixed path: the host's (a checkout under /tmp) would show up in the private /tmp
MODEL_MOUNT = "/model"
SCRATCH_MOUNT = "/scratch"
PIDS_CGROUP_ROOT = Path("/sys/fs/cgroup/pids")
TMPFS_BYTES = 64 * 1024**2  # the private /tmp lives in RAM
STDERR_BYTES = 64 * 1024  # the tail is kept: the last lines say why a run died
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

# Who the run is: nobody/nogroup. A root worker maps them to the host's nobody (never to root), see _start.
SANDBOX_UID = 65534
SANDBOX_GID = 65534
SETPRIV = "/usr/bin/setpriv"  # util-linux (essential on Debian): the last step before python, drops to SANDBOX_UID
PRLIMIT = "/usr/bin/prlimit"  # util-linux too: a non-root worker's process cap, set inside the sandbox (see _start)
# Kept by bubblewrap only so that setpriv can switch users and empty the bounding set; setpriv's setuid clears them.
SETPRIV_CAPABILITIES = ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")
USERNS_HANDSHAKE_S = 10.0  # bwrap reports its child at once; longer means it is stuck

# Refused with EPERM by the seccomp filter. A run needs none of them; each reshapes the sandbox or opens a large
# kernel attack surface. Names libseccomp does not know on this architecture are skipped (see seccomp_program).
REFUSED_SYSCALLS = (
    # the filesystem view: a remount is what turned the read-only binds writable
    "mount", "umount2", "pivot_root", "chroot",
    "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
    # namespaces: a new user namespace hands back every capability inside it
    "unshare", "setns",
    # other processes' memory
    "ptrace", "process_vm_readv", "process_vm_writev",
    # kernel facilities a model never needs
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd", "open_by_handle_at", "syslog",
    # io_uring's operations are out of a seccomp filter's sight
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    # the machine itself
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "swapon", "swapoff",
    "reboot", "acct", "quotactl",
)
# clone() with any of these flags creates a namespace (CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID,
# NEWNET); threads and plain forks pass.
NAMESPACE_CLONE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
TERMINAL_INJECTION_IOCTLS = (0x5412, 0x541C)  # TIOCSTI, TIOCLINUX: typing into a terminal the run shares


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
    # The private /scratch lives in RAM (a tmpfs): past this size writes fail with ENOSPC, the host's disk is untouched.
    scratch_bytes: int = 128 * 1024**2


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


BUBBLEWRAP_RECHECK_S = 60.0
_bubblewrap_checked: tuple[bool, float] | None = None  # (works, when checked)


def bubblewrap_works() -> bool:
    """Whether the full sandbox (namespaces, user switch, seccomp filter) starts on this host, checked by starting
    it. A success holds for the process; a failure is checked again after ``BUBBLEWRAP_RECHECK_S``, so a passing
    fault (the host out of processes for a moment) does not turn a worker away from every evaluation for good."""
    global _bubblewrap_checked
    checked, now = _bubblewrap_checked, time.monotonic()
    if checked is not None and (checked[0] or now - checked[1] < BUBBLEWRAP_RECHECK_S):
        return checked[0]
    works = _start_bubblewrap_probe()
    _bubblewrap_checked = (works, now)
    return works


def _start_bubblewrap_probe() -> bool:
    if shutil.which("bwrap") is None:
        return False
    try:
        with tempfile.TemporaryDirectory(prefix="pitlane-sandbox-probe-") as folder:
            process = _start("bubblewrap", ["-c", "pass"], Path(folder) / "model", Path(folder) / "scratch",
                             SandboxLimits(wall_seconds=30))
            outcome = process.finish(b"")
    except Exception as error:  # no libseccomp, no setpriv, a kernel refusing a namespace: all mean "cannot run"
        log.warning("bubblewrap cannot run the sandbox here: %r", error)
        return False
    if outcome.returncode != 0:
        log.warning("bubblewrap cannot run the sandbox here (exit %s): %s", outcome.returncode,
                    outcome.stderr.decode("utf-8", "replace").strip()[-500:])
        return False
    return True


@functools.cache
def _user_namespaces_work() -> bool:
    """Whether this kernel lets root create a user namespace (some hosts disable them)."""
    try:
        probe = subprocess.run(["bwrap", "--unshare-user", "--ro-bind", "/", "/", "true"],
                               capture_output=True, timeout=10, check=False, env={})
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def _user_switch() -> str:
    """How the run becomes SANDBOX_UID.

    ``mapped``: a root worker with user namespaces maps the namespace itself (only root and nobody, each to itself)
    and setpriv drops to nobody: the run is the host's nobody. ``setpriv``: root without user namespaces, the same
    drop without the namespace. ``bwrap``: a worker that is not root lets bwrap map nobody to its own (unprivileged)
    uid, the only mapping it may write.
    """
    if os.geteuid() != 0:
        return "bwrap"
    return "mapped" if _user_namespaces_work() else "setpriv"


@functools.cache
def seccomp_program() -> bytes:
    """The seccomp BPF program bubblewrap installs just before the run starts, generated once per process by
    libseccomp (a maintained compiler: architecture checks and syscall numbers are its job, not ours)."""
    import pyseccomp  # ctypes over libseccomp.so.2; imported here so a host without it only loses the sandbox

    refuse = pyseccomp.ERRNO(errno.EPERM)
    program = pyseccomp.SyscallFilter(pyseccomp.ALLOW)  # foreign architectures (x32, i386 calls) are killed
    native = pyseccomp.system_arch()
    for name in REFUSED_SYSCALLS:
        if pyseccomp.resolve_syscall(native, name) < 0:
            log.warning("seccomp: libseccomp does not know %s here; it is not filtered", name)
            continue
        program.add_rule(refuse, name)
    for flag in NAMESPACE_CLONE_FLAGS:
        program.add_rule(refuse, "clone", pyseccomp.Arg(0, pyseccomp.MASKED_EQ, flag, flag))
    # clone3 passes its flags in memory, out of a filter's sight: ENOSYS makes glibc fall back to clone.
    program.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "clone3")
    for request in TERMINAL_INJECTION_IOCTLS:
        program.add_rule(refuse, "ioctl", pyseccomp.Arg(1, pyseccomp.MASKED_EQ, 0xFFFFFFFF, request))
    with tempfile.TemporaryFile() as exported:
        program.export_bpf(exported)
        exported.seek(0)
        return exported.read()


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
        f"{_non_root_hint()}"
    )


def _non_root_hint() -> str:
    """What a worker that is not root (the systemd units' ``User=pitlane``) needs besides bwrap itself."""
    if os.geteuid() == 0:
        return ""
    return ("; a worker that is not root also needs the kernel to allow unprivileged user namespaces "
            "(docs/operations.md, 'Workers as a non-root user')")


def status_line(allow_fallback: bool) -> tuple[bool, str]:
    """(healthy, one sentence) about the sandbox on this machine, for the admin and the health checks."""
    if bubblewrap_works():
        return True, ("Sandbox: bubblewrap (no network, unprivileged user, syscall filter, read-only code and model, "
                      "capped private scratch, limits).")
    if allow_fallback:
        return False, ("SANDBOX FALLBACK: bubblewrap cannot run on this machine; untrusted models run with "
                       "resource limits only (they could reach the network and read world-readable files).")
    return False, ("bubblewrap cannot run on this machine: evaluations are refused until it is installed "
                   "(Debian package 'bubblewrap') or PITLANE_SANDBOX_ALLOW_FALLBACK=true accepts the weaker sandbox"
                   f"{_non_root_hint()}.")


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
    clock_from_input: bool = False,
) -> SandboxProcess:
    """Start the contained process now; send its input later with ``send`` / ``finish`` (or ``abort`` it).

    ``model_dir`` must exist; it may still be filled after the start (the bind shows the folder, not a copy),
    which lets the runner import torch while the worker validates the archive. The wall clock starts here, or with
    ``clock_from_input`` when the first input is sent: a sandbox started ahead of its job (``execution.WarmSandbox``)
    may wait idle for as long as it likes, blocked on its stdin, without its wall clock running.
    """
    return _start(sandbox_mode(allow_fallback), python_args, model_dir, scratch_dir, limits, clock_from_input)


def _start(mode: str, python_args: Sequence[str], model_dir: Path, scratch_dir: Path,
           limits: SandboxLimits, clock_from_input: bool = False) -> SandboxProcess:
    model_dir.mkdir(parents=True, exist_ok=True)
    scratch_dir.mkdir(parents=True, exist_ok=True)  # bubblewrap: only its working folder (scratch is a tmpfs)
    passed_fds: list[int] = []
    handshake: _UserNamespaceHandshake | None = None
    # A non-root worker's RLIMIT_NPROC, set before bwrap, would count every task of the worker's user on the host
    # (its threads, its other sandboxes, a web process of the same user), and past the cap bwrap could not even
    # create its namespace (EAGAIN); set inside, in the run's own user namespace, it counts the run's processes.
    nproc_inside = False
    if mode == "bubblewrap":
        user_switch = _user_switch()
        nproc_inside = user_switch == "bwrap"
        passed_fds.append(_seccomp_fd())
        if user_switch == "mapped":
            handshake = _UserNamespaceHandshake()
            passed_fds += [handshake.info_write, handshake.block_read]
        command = [*_bwrap_arguments(model_dir, limits, passed_fds[0], user_switch, handshake),
                   *_run_as_sandbox_user(user_switch, limits.processes), _python_inside(), "-s", "-B", *python_args]
        # bwrap's own process must not carry the worker's secrets either: the run could read its /proc environ.
        env = _scrubbed_environment(home=SCRATCH_MOUNT, pythonpath=APP_MOUNT)
    else:
        command = [sys.executable, "-s", "-B", *python_args]
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
            pass_fds=passed_fds,
            start_new_session=True,  # its own process group, so a timeout kills every descendant
            preexec_fn=functools.partial(_apply_limits, limits, cgroup, nproc=not nproc_inside),
        )
    except BaseException:
        _remove_cgroup(cgroup)
        if handshake is not None:
            handshake.close()
        raise
    finally:
        for fd in passed_fds:
            os.close(fd)
    sandboxed = SandboxProcess(process, cgroup, limits, mode, started, model_dir, handshake, scratch_dir,
                               clock_from_input=clock_from_input)
    if handshake is not None:
        try:
            handshake.map_users()
        except BaseException:
            sandboxed.abort()
            raise
    return sandboxed


class _UserNamespaceHandshake:
    """bwrap (``--userns-block-fd``) waits in its new user namespace until the worker, root outside, has written
    the namespace's maps: root to root (bwrap's own setup runs as the namespace's creator, and the kernel refuses to
    create files for an unmapped owner) and nobody to nobody (the run). No other host user exists inside."""

    def __init__(self) -> None:
        self.info_read, self.info_write = os.pipe()
        self.block_read, self.block_write = os.pipe()

    def map_users(self) -> None:
        try:
            child = self._child_pid()
            if child is None:
                return  # bwrap exited before creating its namespace: finish() reports its error output
            for name, outside in (("uid_map", SANDBOX_UID), ("gid_map", SANDBOX_GID)):
                Path(f"/proc/{child}/{name}").write_text(f"0 0 1\n{outside} {outside} 1\n")
            os.write(self.block_write, b"1")
        finally:
            self._close("block_write")

    def _child_pid(self) -> int | None:
        report = b""
        deadline = time.monotonic() + USERNS_HANDSHAKE_S
        poller = select.poll()  # not select(): a busy worker's descriptors may be numbered past FD_SETSIZE
        poller.register(self.info_read, select.POLLIN)
        while (found := re.search(rb'"child-pid":\s*(\d+)', report)) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError("bubblewrap did not report its sandbox process in time")
            if poller.poll(remaining * 1000):
                chunk = os.read(self.info_read, 4096)
                if not chunk:
                    return None
                report += chunk
        return int(found.group(1))

    def close(self) -> None:
        """Once bwrap has exited: it writes more to its info pipe later and would die of SIGPIPE if it were closed."""
        self._close("info_read")
        self._close("block_write")

    def _close(self, name: str) -> None:
        fd = getattr(self, name)
        if fd >= 0:  # never twice: the number may already belong to another thread's file
            setattr(self, name, -1)
            os.close(fd)


def _seccomp_fd() -> int:
    """An in-memory file holding the filter, for ``bwrap --seccomp FD`` (bwrap reads it to the end, then closes it)."""
    program = seccomp_program()
    fd = os.memfd_create("pitlane-seccomp", os.MFD_CLOEXEC)  # pass_fds hands it to bwrap alone
    if os.write(fd, program) != len(program):
        os.close(fd)
        raise OSError("could not write the seccomp filter")
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


class SandboxProcess:
    """A started sandbox: its output is read with size caps while it runs, and it never outlives ``finish``."""

    def __init__(self, process: subprocess.Popen, cgroup: Path | None, limits: SandboxLimits, mode: str,
                 started: float, model_dir: Path, handshake: _UserNamespaceHandshake | None = None,
                 scratch_dir: Path | None = None, clock_from_input: bool = False) -> None:
        self.process, self.cgroup, self.limits, self.mode, self.started = process, cgroup, limits, mode, started
        self.model_dir, self._handshake, self.scratch_dir = model_dir, handshake, scratch_dir
        self.output_exceeded = False
        # When the wall clock started: at the start, or (a sandbox started ahead) when its job is sent.
        self.clock_started: float | None = None if clock_from_input else started
        self._writer: threading.Thread | None = None
        self._stopped = False
        self._view: ScratchView | None = None
        self._stdout = _CappedReader(process.stdout, limits.output_bytes + 1, self._too_much_output)
        self._stderr = _CappedReader(process.stderr, STDERR_BYTES, None, keep_tail=True)

    def alive(self) -> bool:
        """Whether the process is still running (a sandbox started ahead may have died while it waited)."""
        return self.process.poll() is None

    def set_wall_clock(self, seconds: float) -> None:
        """The job's wall-clock limit, for a sandbox started ahead of knowing its job (the other limits are fixed
        at the start: a job needing other ones gets a sandbox of its own)."""
        self.limits = dataclasses.replace(self.limits, wall_seconds=seconds)

    def send(self, data: bytes) -> None:
        """Write the first part of the input (the job) without ending it: the run may start on it (e.g. prepare the
        track) while the worker still fills the model folder; ``finish`` ends the input."""
        self._start_clock()
        self._writer = self._start_writer(data, close=False)

    def finish(self, stdin: bytes = b"", tick: Callable[[], None] | None = None,
               tick_every_s: float = 5.0) -> SandboxOutcome:
        """Send (the rest of) the input and end it, wait up to the rest of the wall-clock limit, kill the whole group,
        report. The end of the input tells the run its model folder is ready.

        ``tick``: called every ``tick_every_s`` while the run goes (a long job's progress; it may ``interrupt``)."""
        _make_readable_by_sandbox(self.model_dir)  # filled since the start; the run reads it once the input ends
        clock = self._start_clock()
        self._writer = self._start_writer(stdin, close=True)
        timed_out = False
        try:
            while True:
                left = self.limits.wall_seconds - (time.monotonic() - clock)
                try:
                    self.process.wait(timeout=max(0.0, left if tick is None else min(left, tick_every_s)))
                    break
                except subprocess.TimeoutExpired:
                    if tick is None or time.monotonic() - clock >= self.limits.wall_seconds:
                        timed_out = True
                        break
                    tick()
        finally:
            self._stop()
        return SandboxOutcome(
            returncode=self.process.returncode,
            stdout=self._stdout.data(),
            stderr=self._stderr.data(),
            timed_out=timed_out,
            wall_seconds=time.monotonic() - clock,
            mode=self.mode,
        )

    def _start_clock(self) -> float:
        if self.clock_started is None:
            self.clock_started = time.monotonic()
        return self.clock_started

    def _start_writer(self, data: bytes, close: bool) -> threading.Thread:
        """Write on a thread: the run may not read yet (still importing) and a pipe holds only 64 KiB."""
        writer = threading.Thread(target=self._write, args=(data, close, self._writer), daemon=True,
                                  name="sandbox-stdin")
        writer.start()
        return writer

    def abort(self) -> None:
        """Stop a sandbox whose input will never come (e.g. the archive was refused)."""
        self._stop()
        self.close_scratch()

    def interrupt(self) -> bool:
        """Ctrl-C for the run itself (a training run stops cleanly and writes its model); False if not found."""
        pid = self._run_pid()
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGINT)
            return True
        return False

    def scratch(self) -> ScratchView | None:
        """The run's private scratch folder as the worker may read it, or None until the run has set it up.

        Under bubblewrap the scratch is a tmpfs in the run's own mount namespace: it is reached once through
        ``/proc/<run>/root`` and held open by a descriptor, so it stays readable after the run has exited (until
        ``close_scratch``) and never appears on the host's disk. Everything in it was written by untrusted code:
        ``ScratchView`` never follows a link and reads only regular files, with a size cap."""
        if self._view is None:
            if self.mode != "bubblewrap":
                if self.scratch_dir is not None and self.scratch_dir.is_dir():
                    self._view = ScratchView(os.open(self.scratch_dir, os.O_RDONLY | os.O_DIRECTORY))
            else:
                pid = self._run_pid()
                if pid is not None:
                    with contextlib.suppress(OSError):
                        fd = os.open(f"/proc/{pid}/root{SCRATCH_MOUNT}", os.O_RDONLY | os.O_DIRECTORY)
                        if os.fstat(fd).st_dev == os.stat("/").st_dev:  # not yet inside its own root
                            os.close(fd)
                        else:
                            self._view = ScratchView(fd)
        return self._view

    def close_scratch(self) -> None:
        """Let go of the run's scratch (under bubblewrap its memory is freed with the last descriptor)."""
        if self._view is not None:
            self._view.close()
            self._view = None

    def _run_pid(self) -> int | None:
        """The run's python process: the Popen child itself in the fallback, else the last of bubblewrap's chain
        (bwrap -> its namespace's init -> the run), read from /proc."""
        if self.process.poll() is not None:
            return None
        if self.mode != "bubblewrap":
            return self.process.pid
        chain = [self.process.pid]
        while len(chain) < 4:
            try:
                children = Path(f"/proc/{chain[-1]}/task/{chain[-1]}/children").read_text().split()
            except OSError:
                break
            if not children:
                break
            chain.append(int(children[0]))
        return chain[-1] if len(chain) >= 3 else None

    def kill(self) -> None:
        """Kill the run from another thread; ``finish`` then returns its (killed) outcome."""
        _kill_group(self.process)
        _kill_cgroup(self.cgroup)

    def _stop(self) -> None:
        if self._stopped:  # once: a finished sandbox may still be discarded (``abort``) later
            return
        self._stopped = True
        _kill_group(self.process)  # a daemonised grandchild must not outlive the run
        _remove_cgroup(self.cgroup)
        self.process.wait()
        if self._handshake is not None:
            self._handshake.close()
        self._stdout.join()
        self._stderr.join()

    def _write(self, data: bytes, close: bool, previous: threading.Thread | None) -> None:
        if previous is not None:  # the parts arrive in order
            previous.join()
        with contextlib.suppress(OSError, ValueError):  # BrokenPipe: the runner died or was killed before reading
            self.process.stdin.write(data)
            self.process.stdin.flush()
        if close:
            with contextlib.suppress(OSError):
                self.process.stdin.close()

    def _too_much_output(self) -> None:
        self.output_exceeded = True
        _kill_group(self.process)


class ScratchView:
    """Read-only access to an untrusted run's scratch folder through a held directory descriptor.

    Every path is walked one component at a time with ``O_NOFOLLOW`` relative to the descriptor, so a link the run
    planted (``live.json -> /etc/shadow``) is refused instead of read with the worker's rights; only regular files are
    read, never past ``limit`` bytes, and opening never blocks (a FIFO is refused)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def stat(self, relative: str) -> os.stat_result | None:
        """A regular file's stat, or None (missing, a link, a folder, anything else)."""
        try:
            fd = self._open(relative, directory=False)
        except OSError:
            return None
        try:
            result = os.fstat(fd)
            return result if stat_module.S_ISREG(result.st_mode) else None
        finally:
            os.close(fd)

    def listdir(self, relative: str) -> list[str]:
        """The names in a folder (empty when it is missing or not a folder)."""
        try:
            fd = self._open(relative, directory=True)
        except OSError:
            return []
        try:
            return sorted(os.listdir(fd))
        finally:
            os.close(fd)

    def read(self, relative: str, limit: int, tail: bool = False) -> bytes | None:
        """A regular file's bytes (its last ``limit`` with ``tail``); None when missing, not a regular file, or
        larger than ``limit`` (without ``tail``)."""
        try:
            fd = self._open(relative, directory=False)
        except OSError:
            return None
        try:
            info = os.fstat(fd)
            if not stat_module.S_ISREG(info.st_mode):
                return None
            if info.st_size > limit:
                if not tail:
                    return None
                os.lseek(fd, info.st_size - limit, os.SEEK_SET)
            chunks, left = [], limit
            while left > 0 and (chunk := os.read(fd, min(left, 1024 * 1024))):
                chunks.append(chunk)
                left -= len(chunk)
            return b"".join(chunks)
        except OSError:
            return None
        finally:
            os.close(fd)

    def copy(self, relative: str, destination: Path, limit: int) -> bool:
        """Copy a regular file of at most ``limit`` bytes to ``destination``; False if it is not one."""
        try:
            fd = self._open(relative, directory=False)
        except OSError:
            return False
        try:
            info = os.fstat(fd)
            if not stat_module.S_ISREG(info.st_mode) or info.st_size > limit:
                return False
            written = 0
            with destination.open("wb") as out:
                while chunk := os.read(fd, 1024 * 1024):
                    written += len(chunk)
                    if written > limit:  # grew while being copied
                        return False
                    out.write(chunk)
            return True
        except OSError:
            return False
        finally:
            os.close(fd)

    def _open(self, relative: str, directory: bool) -> int:
        parts = [part for part in relative.split("/") if part not in ("", ".")]
        if self._fd < 0 or any(part == ".." for part in parts):
            raise OSError(errno.EINVAL, "not a path inside the scratch folder")
        fd = os.dup(self._fd)
        try:
            for index, part in enumerate(parts):
                last = index == len(parts) - 1
                flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
                if not last or directory:
                    flags |= os.O_DIRECTORY
                child = os.open(part, flags, dir_fd=fd)
                os.close(fd)
                fd = child
            return fd
        except BaseException:
            os.close(fd)
            raise


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


def _bwrap_arguments(model_dir: Path, limits: SandboxLimits, seccomp_fd: int, user_switch: str,
                     handshake: _UserNamespaceHandshake | None) -> list[str]:
    python_home = Path(sys.base_prefix)
    venv = Path(sys.prefix)
    args = ["bwrap", "--die-with-parent", "--new-session", "--clearenv", "--cap-drop", "ALL",
            "--seccomp", str(seccomp_fd)]
    if user_switch == "setpriv":  # every namespace but the user one (--unshare-all would try that one too)
        args += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    else:
        args += ["--unshare-all"]
    if user_switch == "bwrap":
        args += ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID)]
    else:
        for capability in SETPRIV_CAPABILITIES:
            args += ["--cap-add", capability]
    if handshake is not None:
        args += ["--unshare-user", "--userns-block-fd", str(handshake.block_read),
                 "--info-fd", str(handshake.info_write)]
    # The tmpfs goes first: mounted after the binds it would hide a Python installation that lives under /tmp.
    args += ["--perms", "1777", "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp"]  # in memory: capped
    read_only = [(system_dir, system_dir) for system_dir in ("/usr", "/bin", "/lib", "/lib64", "/lib32",
                                                             "/etc/ld.so.cache", "/etc/alternatives")
                 if os.path.exists(system_dir)]
    # The Python installation stays at its own path (the venv's interpreter link and pyvenv.cfg name it).
    read_only.append((str(python_home), str(python_home)))
    if venv != python_home:
        read_only.append((str(venv), VENV_MOUNT))
    if Path("/sys/devices/system/cpu").exists():  # torch reads the CPU topology
        read_only.append(("/sys/devices/system/cpu", "/sys/devices/system/cpu"))
    read_only += [
        (str(PROJECT_ROOT / "sim"), f"{APP_MOUNT}/sim"),
        (str(PROJECT_ROOT / "evaluator" / "runner.py"), f"{APP_MOUNT}/evaluator/runner.py"),
        (str(PROJECT_ROOT / "evaluator" / "training_runner.py"), f"{APP_MOUNT}/evaluator/training_runner.py"),
        (str(PROJECT_ROOT / "evaluator" / "contract.py"), f"{APP_MOUNT}/evaluator/contract.py"),
        (str(PROJECT_ROOT / "evaluator" / "__init__.py"), f"{APP_MOUNT}/evaluator/__init__.py"),
        (str(model_dir), MODEL_MOUNT),
    ]
    # bwrap creates a destination's missing parents 0700 (or with the host parent's mode: /root is 0700), which
    # nobody cannot enter: create them traversable first.
    parents = sorted({str(parent) for _, destination in read_only for parent in Path(destination).parents[:-1]})
    for parent in parents:
        args += ["--perms", "0755", "--dir", parent]
    for source, destination in read_only:
        args += ["--ro-bind", source, destination]
    args += [
        "--perms", "1777", "--size", str(limits.scratch_bytes), "--tmpfs", SCRATCH_MOUNT,
        "--proc", "/proc",
        "--dev", "/dev",
        # The root and /dev are bwrap's own uncapped tmpfs, owned by the namespace's root: under a non-root worker
        # that is the run's own uid, so without this it could write anywhere there (/, /app, /dev/shm...), in RAM,
        # past every cap. Read-only, the capped /scratch and /tmp stay the only places it writes to, as under root.
        "--remount-ro", "/dev",
        "--remount-ro", "/",
        "--chdir", SCRATCH_MOUNT,
    ]
    for name, value in _scrubbed_environment(home=SCRATCH_MOUNT, pythonpath=APP_MOUNT).items():
        args += ["--setenv", name, value]
    return args


def _run_as_sandbox_user(user_switch: str, max_processes: int) -> list[str]:
    """The command prefix that makes the run nobody with no capability left. For a non-root worker bwrap mapped it
    already, and the prefix caps its processes instead (a hard limit: without CAP_SYS_RESOURCE it cannot be raised)."""
    if user_switch == "bwrap":
        return [PRLIMIT, f"--nproc={max_processes}:{max_processes}", "--"]
    return [SETPRIV, "--reuid", str(SANDBOX_UID), "--regid", str(SANDBOX_GID), "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--"]


def _python_inside() -> str:
    """The interpreter's path inside the sandbox: the venv's, at its fixed mount, or the installation's own."""
    if Path(sys.prefix) == Path(sys.base_prefix):
        return sys.executable
    return f"{VENV_MOUNT}/bin/{Path(sys.executable).name}"


def _make_readable_by_sandbox(folder: Path) -> None:
    """The worker (root) validates models with private modes (0600); the run, nobody, must read them."""
    with contextlib.suppress(FileNotFoundError):
        folder.chmod(0o755)
    for root, dirs, files in os.walk(folder):
        for names, mode in ((dirs, 0o755), (files, 0o644)):
            for name in names:
                path = os.path.join(root, name)
                if not os.path.islink(path):  # a link's mode is its target's: never follow one out of the folder
                    with contextlib.suppress(FileNotFoundError):
                        os.chmod(path, mode)


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


def _apply_limits(limits: SandboxLimits, cgroup: Path | None, nproc: bool = True) -> None:
    """Runs in the child between fork and exec: only async-signal-safe-ish work. ``nproc``: without a cgroup, the
    process cap is set here (False: inside the sandbox)."""
    if cgroup is not None:
        (cgroup / "cgroup.procs").write_text(str(os.getpid()))
    elif nproc:
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
