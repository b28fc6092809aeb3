"""The training run's console side: a progress bar over episodes, and Ctrl-C held while files are written."""

from __future__ import annotations

import contextlib
import math
import signal
import threading
from collections.abc import Iterator
from typing import Any, Protocol


class StopLimits(Protocol):
    """The stop conditions the bar measures against (``sim.learn.trainer.StopConditions``)."""

    max_minutes: float | None
    max_episodes: int | None


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C while files are written, then raise it: a checkpoint or archive is never cut in half."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[Any] = []
    previous = signal.signal(signal.SIGINT, lambda *args: received.append(args))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


class ProgressBar:
    """tqdm bar over episodes: iteration, episodes, mean reward, mean progress, laps, time left."""

    def __init__(self, stop: StopLimits, episodes: int, enabled: bool) -> None:
        self.stop, self.enabled, self.first_episodes = stop, enabled, episodes
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=stop.max_episodes, initial=episodes, unit="ep", dynamic_ncols=True,
                            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} ep [{elapsed}{postfix}]"
                            if stop.max_episodes else "{n_fmt} ep [{elapsed}{postfix}]")

    def update(self, row: dict[str, Any], elapsed: float) -> None:
        """Show an iteration's metrics row; ``elapsed`` seconds of this session so far."""
        if self.bar is None:
            return
        self.bar.update(row["episodes"] - self.bar.n)
        left = []
        if self.stop.max_minutes is not None:
            left.append(self.stop.max_minutes * 60 - elapsed)
        done = row["episodes"] - self.first_episodes
        if self.stop.max_episodes is not None and done > 0:
            left.append((self.stop.max_episodes - row["episodes"]) * elapsed / done)
        evaluation = row["evaluation_mean_progress"]
        self.bar.set_postfix_str(
            f"it {row['iteration']} | reward {row['mean_reward']:.1f} | progress {row['mean_progress']:.1f}%"
            + (f" (eval {evaluation:.1f}%)" if evaluation is not None else "")
            + f" | laps {row['laps_completed']} | left {_minutes(min(left)) if left else '?'}"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _minutes(seconds: float) -> str:
    seconds = max(0, math.ceil(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"
