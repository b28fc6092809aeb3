"""Simulation traces in DeepRacer's formats (SPEC §7), so the community's log-analysis tools read ours.

Two forms of the same per-step record:
- ``SIM_TRACE_LOG:`` log lines with the simapp v5.3 printf formats, and
- simtrace CSV files (header = field names, values via ``str()``), one per iteration.

Folder layout helpers follow the DRfC single-worker model folder that ``deepracer-utils`` detects:
``training-simtrace/N-iteration.csv``, ``evaluation-<14 digits>/evaluation-simtrace/0-iteration.csv``,
``model/model_metadata.json`` and ``ip/hyperparameters.json``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, TextIO

SIM_TRACE_FIELDS: tuple[str, ...] = (
    "episode",
    "steps",
    "X",
    "Y",
    "yaw",
    "steer",
    "throttle",
    "action",
    "reward",
    "done",
    "all_wheels_on_track",
    "progress",
    "closest_waypoint",
    "track_len",
    "tstamp",
    "episode_status",
    "pause_duration",
    "obstacle_crash_counter",
)
SIM_TRACE_FORMAT = "SIM_TRACE_LOG:%d,%d,%.4f,%.4f,%.4f,%.2f,%.2f,%s,%.4f,%s,%s,%.4f,%d,%.2f,%s,%s,%.2f,%d"
EPISODE_STATUSES = (
    "prepare",
    "in_progress",
    "lap_complete",
    "off_track",
    "crashed",
    "immobilized",
    "reversed",
    "pause",
    "time_up",
)


class SimTraceRow(NamedTuple):
    """One step. ``action`` is the discrete index, or ``"[steer speed]"`` for continuous actions;
    ``tstamp`` is simulation time in seconds after the step's physics; X/Y the point 0.14 m ahead
    of the car origin (as the simapp logs it)."""

    episode: int
    steps: float
    X: float
    Y: float
    yaw: float
    steer: float
    throttle: float
    action: int | str
    reward: float
    done: bool
    all_wheels_on_track: bool
    progress: float
    closest_waypoint: int
    track_len: float
    tstamp: float
    episode_status: str
    pause_duration: float = 0.0
    obstacle_crash_counter: int = 0


def as_row(record: SimTraceRow | Mapping[str, Any]) -> SimTraceRow:
    if isinstance(record, SimTraceRow):
        return record
    return SimTraceRow(**{key: record[key] for key in SimTraceRow._fields if key in record})


def format_sim_trace_line(record: SimTraceRow | Mapping[str, Any]) -> str:
    """The exact ``SIM_TRACE_LOG:`` line the simapp prints (without the trailing newline)."""
    row = as_row(record)
    return SIM_TRACE_FORMAT % (
        row.episode,
        row.steps,
        row.X,
        row.Y,
        row.yaw,
        row.steer,
        row.throttle,
        row.action,
        row.reward,
        bool(row.done),
        bool(row.all_wheels_on_track),
        row.progress,
        row.closest_waypoint,
        row.track_len,
        _tstamp(row.tstamp),
        row.episode_status,
        row.pause_duration,
        row.obstacle_crash_counter,
    )


def write_sim_trace_log(stream: TextIO, records: Iterable[SimTraceRow | Mapping[str, Any]]) -> int:
    """Append log lines to an open text stream; returns how many were written."""
    count = 0
    for record in records:
        stream.write(format_sim_trace_line(record) + "\n")
        count += 1
    return count


class SimTraceCsvWriter:
    """Streams rows into one simtrace CSV; use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        self._writer.writerow(SIM_TRACE_FIELDS)
        self.rows = 0

    def write(self, record: SimTraceRow | Mapping[str, Any]) -> None:
        self._writer.writerow(_csv_values(as_row(record)))
        self.rows += 1

    def write_many(self, records: Iterable[SimTraceRow | Mapping[str, Any]]) -> None:
        for record in records:
            self.write(record)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> SimTraceCsvWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def write_simtrace_csv(path: Path, records: Iterable[SimTraceRow | Mapping[str, Any]]) -> Path:
    with SimTraceCsvWriter(path) as writer:
        writer.write_many(records)
    return Path(path)


def simtrace_csv_text(records: Iterable[SimTraceRow | Mapping[str, Any]]) -> str:
    """The CSV as a string (the evaluator ships it from the sandbox this way)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(SIM_TRACE_FIELDS)
    for record in records:
        writer.writerow(_csv_values(as_row(record)))
    return buffer.getvalue()


def read_simtrace_csv(path_or_text: Path | str) -> Iterator[SimTraceRow]:
    """Read a simtrace CSV written by us or by the simapp (a 17-column file lacks the crash counter)."""
    text = Path(path_or_text).read_text(encoding="utf-8") if isinstance(path_or_text, Path) else path_or_text
    for raw in csv.DictReader(io.StringIO(text)):
        action: int | str = raw["action"]
        if action.lstrip("-").isdigit():
            action = int(action)
        yield SimTraceRow(
            episode=int(raw["episode"]),
            steps=float(raw["steps"]),
            X=float(raw["X"]),
            Y=float(raw["Y"]),
            yaw=float(raw["yaw"]),
            steer=float(raw["steer"]),
            throttle=float(raw["throttle"]),
            action=action,
            reward=float(raw["reward"]),
            done=raw["done"] == "True",
            all_wheels_on_track=raw["all_wheels_on_track"] == "True",
            progress=float(raw["progress"]),
            closest_waypoint=int(raw["closest_waypoint"]),
            track_len=float(raw["track_len"]),
            tstamp=float(raw["tstamp"]),
            episode_status=raw["episode_status"],
            pause_duration=float(raw.get("pause_duration") or 0.0),
            obstacle_crash_counter=int(raw.get("obstacle_crash_counter") or 0),
        )


def training_simtrace_path(model_dir: Path, iteration: int) -> Path:
    return Path(model_dir) / "training-simtrace" / f"{iteration}-iteration.csv"


def evaluation_simtrace_path(model_dir: Path, started: datetime | None = None) -> Path:
    """``evaluation-YYYYmmddHHMMSS/evaluation-simtrace/0-iteration.csv`` (the stamp names the run)."""
    stamp = (started or datetime.now()).strftime("%Y%m%d%H%M%S")
    return Path(model_dir) / f"evaluation-{stamp}" / "evaluation-simtrace" / "0-iteration.csv"


def model_metadata_path(model_dir: Path) -> Path:
    return Path(model_dir) / "model" / "model_metadata.json"


def hyperparameters_path(model_dir: Path) -> Path:
    return Path(model_dir) / "ip" / "hyperparameters.json"


def _csv_values(row: SimTraceRow) -> list[Any]:
    # str() of every value like the simapp's OrderedDict dump (steps as 1.0, bools as True/False).
    return [
        row.episode,
        float(row.steps),
        row.X,
        row.Y,
        row.yaw,
        row.steer,
        row.throttle,
        row.action,
        row.reward,
        bool(row.done),
        bool(row.all_wheels_on_track),
        row.progress,
        row.closest_waypoint,
        row.track_len,
        row.tstamp,
        row.episode_status,
        row.pause_duration,
        row.obstacle_crash_counter,
    ]


def _tstamp(seconds: float) -> str:
    # The simapp prints the float with %s (Python's shortest repr); rounding to ms keeps lines short.
    return f"{float(seconds):.3f}"
