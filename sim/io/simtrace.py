"""Simulation traces in DeepRacer's formats (SPEC §7), so the community's log-analysis tools read ours.

Two forms of the same per-step record (simapp v5.3, ``metrics/s3_metrics.py``):
- ``SIM_TRACE_LOG:`` log lines with the simapp's printf formats (``SIM_TRACE_FORMAT``), and
- simtrace CSV files: header = ``SIM_TRACE_FIELDS``, values via ``str()`` (full float precision, ``steps``
  as ``1.0``, booleans as ``True``/``False``), one file per iteration.

``tstamp`` is simulation time in seconds; like Gazebo's clock it has millisecond resolution, so it is
rounded to the millisecond and printed with ``%s`` / ``str()`` (``6.211``).

Folder layout helpers follow the DRfC single-worker model folder that ``deepracer-utils`` detects:
``training-simtrace/N-iteration.csv`` (N from 0), ``evaluation-<14 digits>/evaluation-simtrace/0-iteration.csv``,
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
SIM_TRACE_PREFIX = "SIM_TRACE_LOG:"
SIM_TRACE_FORMAT = SIM_TRACE_PREFIX + "%d,%d,%.4f,%.4f,%.4f,%.2f,%.2f,%s,%.4f,%s,%s,%.4f,%d,%.2f,%s,%s,%.2f,%d"
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
_DEFAULTS = {"pause_duration": 0.0, "obstacle_crash_counter": 0}


class SimTraceError(ValueError):
    """A simtrace record or file that does not have the SPEC §7 columns."""


class SimTraceRow(NamedTuple):
    """One step, as the env records it.

    ``steps`` counts from 1.0 (the ``prepare`` step); ``X``/``Y`` are the point 0.14 m ahead of the car
    origin; ``yaw`` in degrees; ``steer``/``throttle`` the action's steering (deg) and speed (m/s);
    ``episode`` the training episode (global, from 0), or in a race the lap the step belongs to (from 0; the
    ``lap_complete`` row belongs to the lap it completes);
    ``action`` the discrete index, or ``"[steer speed]"`` for continuous actions (no commas);
    ``closest_waypoint`` the nearer of the params' ``closest_waypoints``; ``pause_duration`` the penalty
    seconds still to wait; ``obstacle_crash_counter`` the collisions so far in the lap.
    """

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


Record = SimTraceRow | Mapping[str, Any]


def as_row(record: Record) -> SimTraceRow:
    """A ``SimTraceRow`` from a row or a mapping with the field names (the last two fields may be absent)."""
    if isinstance(record, SimTraceRow):
        return record
    missing = [name for name in SIM_TRACE_FIELDS if name not in record and name not in _DEFAULTS]
    if missing:
        raise SimTraceError(f"simtrace record is missing {', '.join(missing)}")
    return SimTraceRow(**{name: record[name] for name in SIM_TRACE_FIELDS if name in record})


def format_sim_trace_line(record: Record) -> str:
    """The exact ``SIM_TRACE_LOG:`` line the simapp prints (without the trailing newline)."""
    row = as_row(record)
    return SIM_TRACE_FORMAT % tuple(_csv_values(row))


def write_sim_trace_log(stream: TextIO, records: Iterable[Record]) -> int:
    """Append log lines to an open text stream; returns how many were written."""
    count = 0
    for record in records:
        stream.write(format_sim_trace_line(record) + "\n")
        count += 1
    return count


class SimTraceCsvWriter:
    """Streams rows into one simtrace CSV (parent folders created); use as a context manager."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file, lineterminator="\n")
        self._writer.writerow(SIM_TRACE_FIELDS)
        self.rows = 0

    def write(self, record: Record) -> None:
        self._writer.writerow(_csv_values(as_row(record)))
        self.rows += 1

    def write_many(self, records: Iterable[Record]) -> None:
        for record in records:
            self.write(record)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> SimTraceCsvWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def write_simtrace_csv(path: str | Path, records: Iterable[Record]) -> Path:
    """Write a whole simtrace CSV; returns its path."""
    with SimTraceCsvWriter(path) as writer:
        writer.write_many(records)
    return Path(path)


def simtrace_csv_text(records: Iterable[Record]) -> str:
    """The CSV as a string (the evaluator ships it out of the sandbox this way)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SIM_TRACE_FIELDS)
    for record in records:
        writer.writerow(_csv_values(as_row(record)))
    return buffer.getvalue()


def read_simtrace_csv(path: str | Path) -> list[SimTraceRow]:
    """Read a simtrace CSV file written by us or by the simapp."""
    return list(parse_simtrace_csv(Path(path).read_text(encoding="utf-8")))


def parse_simtrace_csv(text: str) -> Iterator[SimTraceRow]:
    """Parse simtrace CSV text. Files of simapp v4.x-v5.2 lack ``obstacle_crash_counter`` (read as 0)."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [name for name in SIM_TRACE_FIELDS if name not in (reader.fieldnames or ()) and name not in _DEFAULTS]
    if missing:
        raise SimTraceError(f"not a simtrace CSV: the header lacks {', '.join(missing)}")
    for line, raw in enumerate(reader, start=2):
        try:
            yield _parse_row(raw)
        except (TypeError, ValueError) as error:
            raise SimTraceError(f"simtrace CSV line {line}: {error}") from None


def training_simtrace_path(model_dir: str | Path, number: int) -> Path:
    """``model_dir/training-simtrace/{number}-iteration.csv``, DeepRacer's file ``number`` (counted from 0, the
    first iteration's being ``0-iteration.csv``; a model folder maps its iterations with
    ``ModelFolder.training_simtrace``)."""
    return Path(model_dir) / "training-simtrace" / f"{number}-iteration.csv"


def evaluation_simtrace_path(model_dir: str | Path, started: datetime | None = None) -> Path:
    """``model_dir/evaluation-YYYYmmddHHMMSS/evaluation-simtrace/0-iteration.csv``.

    The stamp (``started``, default now) names the evaluation run, as in DRfC's model folders; deepracer-utils
    finds evaluation runs by this 14-digit folder name.
    """
    stamp = (started or datetime.now()).strftime("%Y%m%d%H%M%S")
    return Path(model_dir) / f"evaluation-{stamp}" / "evaluation-simtrace" / "0-iteration.csv"


def model_metadata_path(model_dir: str | Path) -> Path:
    return Path(model_dir) / "model" / "model_metadata.json"


def hyperparameters_path(model_dir: str | Path) -> Path:
    return Path(model_dir) / "ip" / "hyperparameters.json"


def _csv_values(row: SimTraceRow) -> list[Any]:
    # The field values in order, normalised once for both forms: csv.writer applies str() to each (like the
    # simapp's OrderedDict dump) and the log line applies SIM_TRACE_FORMAT.
    return [
        int(row.episode),
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
        int(row.closest_waypoint),
        row.track_len,
        _tstamp(row.tstamp),
        row.episode_status,
        row.pause_duration,
        int(row.obstacle_crash_counter),
    ]


def _parse_row(raw: Mapping[str, str]) -> SimTraceRow:
    action: int | str = raw["action"]
    if action.lstrip("-").isdigit():
        action = int(action)
    return SimTraceRow(
        episode=int(raw["episode"]),
        steps=float(raw["steps"]),
        X=float(raw["X"]),
        Y=float(raw["Y"]),
        yaw=float(raw["yaw"]),
        steer=float(raw["steer"]),
        throttle=float(raw["throttle"]),
        action=action,
        reward=float(raw["reward"]),
        done=_bool(raw["done"]),
        all_wheels_on_track=_bool(raw["all_wheels_on_track"]),
        progress=float(raw["progress"]),
        closest_waypoint=int(raw["closest_waypoint"]),
        track_len=float(raw["track_len"]),
        tstamp=float(raw["tstamp"]),
        episode_status=raw["episode_status"],
        pause_duration=float(raw.get("pause_duration") or 0.0),
        obstacle_crash_counter=int(raw.get("obstacle_crash_counter") or 0),
    )


def _bool(text: str) -> bool:
    if text not in ("True", "False"):
        raise ValueError(f"expected True or False, got {text!r}")
    return text == "True"


def _tstamp(seconds: float) -> float:
    return round(float(seconds), 3)
