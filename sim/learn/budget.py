"""When a training run must stop: a hard wall-clock budget for the whole command, an episode budget, Ctrl-C.

The console's stop condition is a hard limit, so the clock starts when the command starts (warm start, folder
set-up and environment construction included) and is checked at every safe point *inside* the work: after each
environment step, each PPO minibatch and each warm-start minibatch. ``RunBudget.check`` raises ``RunStopped``
there; the trainer then drops the unfinished iteration and writes the model from what was committed.

Ctrl-C is cooperative while a run is inside ``RunBudget.interrupts_requested_stop``: the first press only asks for
the stop (the run ends at the next safe point, still writing its model); a second press raises
``KeyboardInterrupt`` at once for a racer who really wants out (files are written atomically, so even then
nothing is left half-written).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sim.learn.config import TrainingError

MAX_MINUTES = "max_minutes"
MAX_EPISODES = "max_episodes"
INTERRUPTED = "interrupted"


class RunStopped(Exception):
    """Raised at a safe point when the run must end now; ``reason`` is one of the stop reasons above."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class StopConditions:
    """``max_minutes``: hard wall-clock budget of the command; ``max_episodes``: total training episodes of the
    model (a resumed run counts the earlier ones)."""

    max_minutes: float | None = None
    max_episodes: int | None = None

    def __post_init__(self) -> None:
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise TrainingError(f"max_minutes must be positive, got {self.max_minutes}")
        if self.max_episodes is not None and self.max_episodes < 1:
            raise TrainingError(f"max_episodes must be at least 1, got {self.max_episodes}")
        if self.max_minutes is None and self.max_episodes is None:
            raise TrainingError("give a stop condition: max_minutes and/or max_episodes")


@dataclass
class RunBudget:
    """The clock and the stop request of one training command (``started``: ``time.monotonic()`` at its start)."""

    stop: StopConditions
    started: float = field(default_factory=time.monotonic)
    interrupted: bool = False

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def seconds_left(self) -> float | None:
        """Seconds until the wall-clock budget runs out (negative once it has), or None without one."""
        if self.stop.max_minutes is None:
            return None
        return self.stop.max_minutes * 60 - self.elapsed()

    def stop_reason(self, episodes: int | None = None) -> str:
        """Why the run must stop now ("" if it may go on); ``episodes``: the model's total so far, if known."""
        if self.interrupted:
            return INTERRUPTED
        left = self.seconds_left()
        if left is not None and left <= 0:
            return MAX_MINUTES
        if episodes is not None and self.stop.max_episodes is not None and episodes >= self.stop.max_episodes:
            return MAX_EPISODES
        return ""

    def check(self) -> None:
        """Raise ``RunStopped`` if the budget is spent or a stop was requested: call at every safe point."""
        if reason := self.stop_reason():
            raise RunStopped(reason)

    def request_stop(self) -> None:
        self.interrupted = True

    @contextlib.contextmanager
    def interrupts_requested_stop(self) -> Iterator[None]:
        """Inside: the first Ctrl-C requests the stop, a second raises ``KeyboardInterrupt`` (main thread only;
        elsewhere signals cannot be handled and Ctrl-C keeps its default)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_interrupt(*_: Any) -> None:
            if self.interrupted:
                raise KeyboardInterrupt
            self.request_stop()

        previous = signal.signal(signal.SIGINT, on_interrupt)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
