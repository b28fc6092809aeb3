"""A training run yields the CPU to evaluations: its process and its session (the kernel's autogroup) at nice 10."""

import errno
import io
import os

import pytest

from evaluator import training_runner


@pytest.mark.parametrize(("failures", "error", "writes"), [(2, errno.EAGAIN, 3), (1, errno.EACCES, 1)])
def test_a_training_run_retries_the_session_nice_the_kernel_rate_limits(monkeypatch, failures, error, writes):
    """The kernel changes an autogroup's nice at most once per 100 ms machine-wide for a process like ours (EAGAIN
    inside that window): two runs starting together once left the second one's session at nice 0."""
    attempts = []
    real_open = open

    def fake_open(path, *args, **kwargs):
        if path != "/proc/self/autogroup":
            return real_open(path, *args, **kwargs)
        attempts.append(path)
        if len(attempts) <= failures:
            raise OSError(error, os.strerror(error))
        return io.StringIO()

    monkeypatch.setattr(training_runner, "open", fake_open, raising=False)
    monkeypatch.setattr(training_runner.os, "nice", lambda increment: 0)  # the test process keeps its priority
    monkeypatch.setattr(training_runner.time, "sleep", lambda seconds: None)
    training_runner.yield_cpu_to_evaluations()
    assert len(attempts) == writes
