"""What a training run shows while it goes: a live console line, and ``metrics/live.json`` for other processes.

The trainer reports every env step, finished episode, PPO minibatch and phase change to an ``IterationMonitor``.
``RunMonitor`` turns that into a progress bar that moves inside an iteration (steps/s, the episodes finished so
far with their mean reward and progress, time left against the budget) on a terminal, one line per iteration
when the output is a file or a pipe (a log), and a small JSON status, rewritten at most once a second, that the
web console or ``watch`` can follow.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Protocol, TextIO

from sim.io.model_folder import ModelFolder, write_json
from sim.learn.budget import INTERRUPTED, MAX_EPISODES, MAX_MINUTES, RunBudget

REFRESH_SECONDS = 0.25  # the console line
LIVE_STATUS_SECONDS = 1.0  # metrics/live.json
STOP_REASONS = {MAX_MINUTES: "time budget reached", MAX_EPISODES: "episode budget reached",
                INTERRUPTED: "interrupted"}


class IterationMonitor(Protocol):
    """Told what an iteration is doing (``sim.learn.trainer.Trainer.train_iteration``)."""

    def iteration_started(self, iteration: int, episodes: int) -> None: ...

    def phase(self, name: str) -> None: ...

    def env_steps(self, cars: int, finished: list[dict[str, Any]]) -> None: ...

    def minibatches(self, done: int, total: int) -> None: ...


class _SilentMonitor:
    def iteration_started(self, iteration: int, episodes: int) -> None:
        pass

    def phase(self, name: str) -> None:
        pass

    def env_steps(self, cars: int, finished: list[dict[str, Any]]) -> None:
        pass

    def minibatches(self, done: int, total: int) -> None:
        pass


SILENT_MONITOR: IterationMonitor = _SilentMonitor()


class RunMonitor:
    """The console line and the live status of one ``Trainer.run`` (a context manager: closes the bar)."""

    def __init__(self, budget: RunBudget, folder: ModelFolder, iteration: int, episodes: int, console: bool,
                 stream: TextIO | None = None) -> None:
        self.budget, self.folder = budget, folder
        self.stream = stream or sys.stderr
        self.console = console
        self.live_bar = console and self.stream.isatty()
        self.iteration, self.episodes, self.first_episodes = iteration, episodes, episodes
        self.current_phase = "starting"
        self.planned = 0
        self.steps = 0
        self.phase_started = time.monotonic()
        self.finished: list[dict[str, Any]] = []
        self.update_progress = ""
        self.last_row: dict[str, Any] | None = None
        self._refreshed = self._written = 0.0
        self.bar: Any = None

    # --- context ---

    def __enter__(self) -> RunMonitor:
        if self.live_bar:
            from tqdm import tqdm

            # A terminal that reports no size (a pty nobody sized, e.g. `script` without a terminal) got no bar at
            # all (tqdm draws nothing on a screen of 0 rows): it gets a fixed size instead.
            sized = _terminal_is_sized(self.stream)
            self.bar = tqdm(total=1000, file=self.stream, dynamic_ncols=sized, ncols=None if sized else 160,
                            nrows=None if sized else 24,
                            bar_format="{bar:12}| {desc}", mininterval=0)
        self._show(force=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    # --- IterationMonitor ---

    def iteration_started(self, iteration: int, episodes: int) -> None:
        self.iteration, self.planned, self.steps, self.finished = iteration, episodes, 0, []
        self.update_progress = ""
        self.phase("collecting")

    def phase(self, name: str) -> None:
        self.current_phase, self.phase_started = name, time.monotonic()
        self._show(force=True)

    def env_steps(self, cars: int, finished: list[dict[str, Any]]) -> None:
        if self.current_phase == "collecting":
            self.steps += cars
            self.finished.extend(finished)
        self._show()

    def minibatches(self, done: int, total: int) -> None:
        self.update_progress = f"{done}/{total} minibatches"
        self._show()

    # --- the run ---

    def warm_start_progress(self, fraction: float) -> None:
        self.update_progress = f"{fraction:.0%}"
        self._show()

    def iteration_done(self, row: dict[str, Any]) -> None:
        self.last_row, self.episodes = row, row["episodes"]
        if self.console and not self.live_bar:
            self._print(self._iteration_line(row))
        self.phase("collecting next")

    def note(self, text: str) -> None:
        if self.console:
            self._print(text)

    def stopping(self, reason: str) -> None:
        self.phase(f"stopping ({STOP_REASONS.get(reason, reason)}): writing the model")

    def finished_run(self, reason: str, archive: Path) -> None:
        self.current_phase = "done"
        self._write_live_status(reason=reason, archive=str(archive))

    # --- drawing ---

    def _print(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def _show(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.bar is not None and (force or now - self._refreshed >= REFRESH_SECONDS):
            self._refreshed = now
            self.bar.n = round(1000 * self._fraction_done())
            self.bar.set_description_str(self._status_line(), refresh=False)
            self.bar.refresh()
        if force or now - self._written >= LIVE_STATUS_SECONDS:
            self._written = now
            self._write_live_status()

    def _fraction_done(self) -> float:
        stop = self.budget.stop
        fractions = []
        if stop.max_minutes is not None:
            fractions.append(self.budget.elapsed() / (stop.max_minutes * 60))
        if stop.max_episodes is not None:
            fractions.append((self.episodes + len(self.finished)) / stop.max_episodes)
        return min(1.0, max(fractions, default=0.0))

    def _seconds_left(self) -> float | None:
        left = [] if self.budget.seconds_left() is None else [self.budget.seconds_left()]
        done = self.episodes - self.first_episodes
        if self.budget.stop.max_episodes is not None and done > 0:
            rate = self.budget.elapsed() / done
            left.append((self.budget.stop.max_episodes - self.episodes) * rate)
        return min(left) if left else None

    def _status_line(self) -> str:
        parts = [f"it {self.iteration + (self.current_phase == 'collecting next')} {self.current_phase}"]
        if self.current_phase == "collecting":
            seconds = max(time.monotonic() - self.phase_started, 1e-9)
            parts.append(f"{self.steps:,} steps {self.steps / seconds:,.0f}/s")
            parts.append(f"{len(self.finished)}/{self.planned} ep")
            if self.finished:
                parts.append(f"reward {_mean(self.finished, 'reward'):.1f}")
                parts.append(f"progress {_mean(self.finished, 'progress'):.0f}%")
        elif self.update_progress and self.current_phase in ("updating", "warm start"):
            parts.append(self.update_progress)
        if self.last_row is not None:
            evaluation = self.last_row["evaluation_mean_progress"]
            parts.append(f"last: reward {self.last_row['mean_reward']:.1f}, progress "
                         f"{self.last_row['mean_progress']:.0f}%"
                         + (f", eval {evaluation:.0f}%" if evaluation is not None else ""))
        left = self._seconds_left()
        parts.append(f"{_minutes(left)} left" if left is not None else f"{_minutes(self.budget.elapsed())}")
        return " | ".join(parts)

    def _iteration_line(self, row: dict[str, Any]) -> str:
        evaluation = row["evaluation_mean_progress"]
        left = self._seconds_left()
        return (f"iteration {row['iteration']}: {row['episodes']} episodes, {row['env_steps']:,} steps "
                f"({row['steps_per_second']:,.0f}/s), reward {row['mean_reward']:.1f}, progress "
                f"{row['mean_progress']:.1f}%" + (f" (evaluation {evaluation:.1f}%)" if evaluation is not None else "")
                + f", laps {row['laps_completed']}" + (f", {_minutes(left)} left" if left is not None else ""))

    def _write_live_status(self, **extra: Any) -> None:
        if not self.folder.root.is_dir():
            return
        write_json(self.folder.live_status, {
            "phase": self.current_phase,
            "iteration": self.iteration,
            "iteration_episodes_planned": self.planned,
            "iteration_episodes_finished": len(self.finished),
            "iteration_env_steps": self.steps,
            "update": self.update_progress,
            "episodes": self.episodes,
            "elapsed_seconds": round(self.budget.elapsed(), 1),
            "seconds_left": None if (left := self._seconds_left()) is None else round(max(left, 0.0), 1),
            "updated_at": time.time(),
            **extra,
        })


def _terminal_is_sized(stream: TextIO) -> bool:
    try:
        size = os.get_terminal_size(stream.fileno())
    except (OSError, ValueError, AttributeError):  # not a terminal, closed, or no file descriptor (a StringIO)
        return False
    return size.columns > 0 and size.lines > 0


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    return sum(row[key] for row in rows) / len(rows)


def _minutes(seconds: float) -> str:
    seconds = max(0, math.ceil(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"
