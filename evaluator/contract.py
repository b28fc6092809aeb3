"""The sandbox contract: the job the worker hands to the runner and the result the runner prints, typed and versioned.

Both sides of the sandbox wall use these classes: a target builds the job (``RaceJob`` or ``MatchJob``), the worker
sends ``job.to_json()``, the runner (inside the sandbox, no Django) reads it with ``job_from_json`` and prints one
``RaceResult``, ``MatchResult`` or ``RunnerFailure``; the worker validates that output with ``parse_runner_output``
before anything reaches the database (nothing the runner prints is trusted), and the target consumes the typed result.

Every document carries ``"version": CONTRACT_VERSION``. A document without one is version 1 (the format before it
was versioned); any other version is refused. Only the standard library is imported at the top: ``sim`` is imported
where it is needed, so a broken installation still lets the runner report a ``RunnerFailure``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from sim.world.rules import RaceRules

CONTRACT_VERSION = 1
DEFAULT_MODEL_DIR = "/model"  # the sandbox's model mount (evaluator.sandbox.MODEL_MOUNT)
LAP_INT_FIELDS = ("trial", "elapsed_time_in_milliseconds", "off_track_count", "crash_count", "immobilized_count",
                  "reversed_count", "reset_count")
TRACE_KEYS = ("t", "x", "y", "yaw", "speed", "status")
TIMING_KEYS = ("import_s", "wait_s", "load_s", "race_s")
MAX_TRACE_POINTS = 20_000
MAX_SIMTRACE_CHARS = 16 * 1024 * 1024
MAX_ERROR_CHARS = 2000


class ResultError(ValueError):
    """The runner's output is malformed: treated as a crash of the evaluation, never as a result."""


class JobError(ValueError):
    """The job document is unusable (the runner reports it as a job failure, never as the model's)."""


# --------------------------------------------------------------------------------------------------- the job
@dataclass(frozen=True)
class RaceJob:
    """One model races alone (time trial, object avoidance, head-to-bot): everything the runner needs."""

    track_name: str
    track_rows: list[list[float]]  # the track's (N, 6) rows in file order; the runner applies the direction
    rules: RaceRules
    direction: str = "counterclockwise"
    seed: int = 0
    objects: dict[str, Any] | None = None  # boxes or bot cars (``sim.world.objects.objects_from_spec`` checks it)
    model_dir: str = DEFAULT_MODEL_DIR

    def to_json(self) -> dict[str, Any]:
        return _job_document(self) | {"objects": self.objects, "model_dir": self.model_dir}


@dataclass(frozen=True)
class MatchJob:
    """A head-to-head match: car A's and car B's models race each other (they are each other's only objects)."""

    track_name: str
    track_rows: list[list[float]]
    rules: RaceRules
    model_dirs: tuple[str, str]
    direction: str = "counterclockwise"
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        return _job_document(self) | {"kind": "match", "model_dirs": list(self.model_dirs)}


Job = RaceJob | MatchJob


def _job_document(job: Job) -> dict[str, Any]:
    return {"version": CONTRACT_VERSION, "track": {"name": job.track_name, "rows": job.track_rows},
            "direction": job.direction, "rules": job.rules.to_dict(), "seed": job.seed}


def job_from_json(document: Any) -> Job:
    """The job the runner received; ``JobError`` names what is missing or wrong."""
    from sim.world.rules import RaceRules

    try:
        _check_version(document, JobError)
        common = {
            "track_name": str(document["track"]["name"]),
            "track_rows": document["track"]["rows"],
            "rules": RaceRules(**document["rules"]),
            "direction": document.get("direction", "counterclockwise"),
            "seed": int(document.get("seed", 0)),
        }
        if document.get("kind") == "match":
            model_dirs = tuple(str(folder) for folder in document["model_dirs"])
            if len(model_dirs) != 2:
                raise JobError("a match job names exactly two model folders")
            return MatchJob(model_dirs=model_dirs, **common)
        return RaceJob(objects=document.get("objects"), model_dir=str(document.get("model_dir", DEFAULT_MODEL_DIR)),
                       **common)
    except JobError:
        raise
    except (ValueError, KeyError, TypeError) as error:
        raise JobError(str(error)) from None


# ------------------------------------------------------------------------------------------------ the results
@dataclass(frozen=True)
class RaceResult:
    """One car's race: laps (``LapMetrics`` dicts), the replay trace (columns), the simtrace CSV, timings."""

    laps: list[dict[str, Any]]
    trace: dict[str, list]
    simtrace_csv: str = ""
    duration_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"version": CONTRACT_VERSION, "ok": True, "laps": self.laps, "trace": self.trace,
                "simtrace_csv": self.simtrace_csv, "duration_s": self.duration_s, "timings": self.timings}

    @classmethod
    def from_json(cls, document: Mapping[str, Any], total_laps: int) -> RaceResult:
        return cls(
            laps=_laps(document.get("laps"), total_laps),
            trace=_trace(document.get("trace")),
            simtrace_csv=_text(document.get("simtrace_csv"), "simtrace_csv", MAX_SIMTRACE_CHARS),
            duration_s=_number(document.get("duration_s"), "duration_s", 0, 3600),
            timings=_timings(document.get("timings", {})),
        )


@dataclass(frozen=True)
class CarRun:
    """One car of a match: its laps and its trace."""

    laps: list[dict[str, Any]]
    trace: dict[str, list]

    def to_json(self) -> dict[str, Any]:
        return {"laps": self.laps, "trace": self.trace}


@dataclass(frozen=True)
class MatchResult:
    """A head-to-head match: car A's and car B's runs and their starting lanes. The winner is decided on the
    trusted side, from the laps."""

    cars: tuple[CarRun, CarRun]
    lanes: list[str]
    duration_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"version": CONTRACT_VERSION, "ok": True, "cars": [car.to_json() for car in self.cars],
                "lanes": self.lanes, "duration_s": self.duration_s, "timings": self.timings}

    @classmethod
    def from_json(cls, document: Mapping[str, Any], total_laps: int) -> MatchResult:
        return cls(
            cars=_cars(document.get("cars"), total_laps),
            lanes=_lanes(document.get("lanes")),
            duration_s=_number(document.get("duration_s"), "duration_s", 0, 3600),
            timings=_timings(document.get("timings", {})),
        )


@dataclass(frozen=True)
class RunnerFailure:
    """The runner's own failure report. ``kind``: "model" (deterministic: the same archive fails the same way)
    or "job" (our side: the job or the installation). In a match, ``car`` (0 or 1) may name the model at fault."""

    kind: Literal["model", "job"]
    error: str
    car: int | None = None

    def to_json(self) -> dict[str, Any]:
        document = {"version": CONTRACT_VERSION, "ok": False, "kind": self.kind, "error": self.error}
        return document | ({"car": self.car} if self.car is not None else {})

    @classmethod
    def from_json(cls, document: Mapping[str, Any], match: bool) -> RunnerFailure:
        if document.get("kind") not in ("model", "job") or not isinstance(document.get("error"), str):
            raise ResultError("the runner's failure report is malformed")
        car = document.get("car")
        if car is not None and (not match or car not in (0, 1) or isinstance(car, bool)):
            raise ResultError("the runner's failure report names no car of the match")
        return cls(kind=document["kind"], error=document["error"][:MAX_ERROR_CHARS], car=car)


RunnerOutput = RaceResult | MatchResult | RunnerFailure


def parse_runner_output(raw: bytes, total_laps: int, limit: int, match: bool = False) -> RunnerOutput:
    """Parse and validate what the runner printed: a result, or the runner's own failure report.

    ``match``: the output of a ``MatchJob`` (``cars`` and ``lanes`` instead of one car's laps, trace and simtrace;
    a model failure may name its ``car``). Anything malformed raises ``ResultError`` with a clear message.
    """
    if len(raw) > limit:
        raise ResultError(f"the runner printed more than {limit} bytes")
    try:
        document = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as error:
        raise ResultError(f"the runner printed no valid JSON document ({error})") from None
    if not isinstance(document, dict) or not isinstance(document.get("ok"), bool):
        raise ResultError("the runner's document has no boolean 'ok'")
    _check_version(document, ResultError)
    if not document["ok"]:
        return RunnerFailure.from_json(document, match)
    return MatchResult.from_json(document, total_laps) if match else RaceResult.from_json(document, total_laps)


def _check_version(document: Any, error: type[ValueError]) -> None:
    if not isinstance(document, Mapping):
        raise error("the document is not a JSON object")
    version = document.get("version", 1)
    if type(version) is not int or version != CONTRACT_VERSION:
        raise error(f"contract version {str(version)[:20]!r} is not this evaluator's version {CONTRACT_VERSION}")


def _cars(cars: Any, total_laps: int) -> tuple[CarRun, CarRun]:
    if not isinstance(cars, list) or len(cars) != 2:
        raise ResultError("a match result has exactly two cars")
    checked = []
    for car in cars:
        if not isinstance(car, dict) or set(car) != {"laps", "trace"}:
            raise ResultError("each car of a match is exactly {laps, trace}")
        checked.append(CarRun(laps=_laps(car["laps"], total_laps), trace=_trace(car["trace"])))
    return checked[0], checked[1]


def _lanes(lanes: Any) -> list[str]:
    from sim.world.objects import LANES

    if not isinstance(lanes, list) or sorted(lanes) != sorted(LANES):
        raise ResultError(f"a match's lanes are {' and '.join(LANES)}, one per car")
    return lanes


def _laps(laps: Any, total_laps: int) -> list[dict[str, Any]]:
    from sim.race.scoring import LapMetrics
    from sim.world.rules import STATUS_LABELS

    if not isinstance(laps, list) or not laps or len(laps) > total_laps:
        raise ResultError(f"expected 1 to {total_laps} lap records")
    checked = []
    for index, lap in enumerate(laps, start=1):
        if not isinstance(lap, dict):
            raise ResultError(f"lap record {index} is not an object")
        for name in LAP_INT_FIELDS:
            value = lap.get(name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**9:
                raise ResultError(f"lap {index}: {name} must be a non-negative integer")
        if lap["trial"] != index:
            raise ResultError(f"lap records must be numbered 1..n (record {index} says {lap['trial']})")
        completion = _number(lap.get("completion_percentage"), f"lap {index} completion_percentage", 0, 100)
        if lap.get("episode_status") not in STATUS_LABELS:
            raise ResultError(f"lap {index}: unknown episode_status {str(lap.get('episode_status'))[:40]!r}")
        if (lap["episode_status"] == "Lap complete") != (completion == 100):
            raise ResultError(f"lap {index}: 'Lap complete' if and only if completion_percentage is 100")
        checked.append(LapMetrics.from_dict(lap).to_dict())
    return checked


def _trace(trace: Any) -> dict[str, list]:
    if not isinstance(trace, dict) or not set(TRACE_KEYS) <= set(trace) <= {*TRACE_KEYS, "bots"}:
        raise ResultError(f"the trace must have exactly the keys {', '.join(TRACE_KEYS)} (and bots with bot cars)")
    lengths = {len(values) if isinstance(values, list) else -1 for values in trace.values()}
    if len(lengths) != 1 or -1 in lengths or lengths.pop() > MAX_TRACE_POINTS:
        raise ResultError(f"trace columns must be lists of equal length (at most {MAX_TRACE_POINTS})")
    for key in ("t", "x", "y", "yaw", "speed"):
        for value in trace[key]:
            _number(value, f"trace {key}", -1e6, 1e6)
    if not all(isinstance(status, str) and len(status) <= 20 for status in trace["status"]):
        raise ResultError("trace statuses must be short strings")
    if "bots" in trace:
        _bot_poses(trace["bots"])
    return trace


def _bot_poses(steps: list) -> None:
    """Each step: the flat [x, y, yaw] of the same 1..MAX_BOTS bot cars."""
    from sim.world.objects import MAX_BOTS

    sizes = {len(step) if isinstance(step, list) else -1 for step in steps}
    if len(sizes) > 1 or not all(3 <= size <= 3 * MAX_BOTS and size % 3 == 0 for size in sizes):
        raise ResultError(f"trace bots must list [x, y, yaw] of the same 1 to {MAX_BOTS} bot cars at every step")
    for step in steps:
        for value in step:
            _number(value, "trace bots", -1e6, 1e6)


def _timings(timings: Any) -> dict[str, float]:
    if not isinstance(timings, dict) or not set(timings) <= set(TIMING_KEYS):
        raise ResultError(f"timings must be an object with keys among {', '.join(TIMING_KEYS)}")
    return {key: _number(value, f"timings {key}", 0, 3600) for key, value in timings.items()}


def _number(value: Any, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ResultError(f"{name} must be a finite number")
    if not low <= value <= high:
        raise ResultError(f"{name} is out of range")
    return float(value)


def _text(value: Any, name: str, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise ResultError(f"{name} must be a string of at most {limit} characters")
    return value


def _reject_constant(name: str) -> None:
    raise ValueError(f"non-finite number {name}")
