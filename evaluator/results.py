"""Validation of what the sandboxed runner printed: nothing unchecked reaches the database."""

from __future__ import annotations

import json
import math
from typing import Any

from sim.race.scoring import LapMetrics
from sim.world.objects import LANES, MAX_BOTS
from sim.world.rules import STATUS_LABELS

LAP_INT_FIELDS = ("trial", "elapsed_time_in_milliseconds", "off_track_count", "crash_count", "immobilized_count",
                  "reversed_count", "reset_count")
TRACE_KEYS = ("t", "x", "y", "yaw", "speed", "status")
TIMING_KEYS = ("import_s", "wait_s", "load_s", "race_s")
MAX_TRACE_POINTS = 20_000
MAX_SIMTRACE_CHARS = 16 * 1024 * 1024


class ResultError(ValueError):
    """The runner's output is malformed: treated as a crash of the evaluation, never as a result."""


def parse_runner_output(raw: bytes, total_laps: int, limit: int, match: bool = False) -> dict[str, Any]:
    """Parse and validate; returns either an ``ok`` result or the runner's own failure report.

    ``match``: the output of a head-to-head match job: ``cars`` (car A, car B: ``{"laps", "trace"}``) and
    ``lanes`` instead of one car's laps, trace and simtrace; a model failure may name its ``car`` (0 or 1).
    """
    if len(raw) > limit:
        raise ResultError(f"the runner printed more than {limit} bytes")
    try:
        document = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as error:
        raise ResultError(f"the runner printed no valid JSON document ({error})") from None
    if not isinstance(document, dict) or not isinstance(document.get("ok"), bool):
        raise ResultError("the runner's document has no boolean 'ok'")
    if not document["ok"]:
        if document.get("kind") not in ("model", "job") or not isinstance(document.get("error"), str):
            raise ResultError("the runner's failure report is malformed")
        car = document.get("car")
        if car is not None and (not match or car not in (0, 1) or isinstance(car, bool)):
            raise ResultError("the runner's failure report names no car of the match")
        report = {"ok": False, "kind": document["kind"], "error": document["error"][:2000]}
        return report | {"car": car} if match else report
    if match:
        return {
            "ok": True,
            "cars": _cars(document.get("cars"), total_laps),
            "lanes": _lanes(document.get("lanes")),
            "duration_s": _number(document.get("duration_s"), "duration_s", 0, 3600),
            "timings": _timings(document.get("timings", {})),
        }
    return {
        "ok": True,
        "laps": _laps(document.get("laps"), total_laps),
        "trace": _trace(document.get("trace")),
        "simtrace_csv": _text(document.get("simtrace_csv"), "simtrace_csv", MAX_SIMTRACE_CHARS),
        "duration_s": _number(document.get("duration_s"), "duration_s", 0, 3600),
        "timings": _timings(document.get("timings", {})),
    }


def _cars(cars: Any, total_laps: int) -> list[dict[str, Any]]:
    if not isinstance(cars, list) or len(cars) != 2:
        raise ResultError("a match result has exactly two cars")
    checked = []
    for car in cars:
        if not isinstance(car, dict) or set(car) != {"laps", "trace"}:
            raise ResultError("each car of a match is exactly {laps, trace}")
        checked.append({"laps": _laps(car["laps"], total_laps), "trace": _trace(car["trace"])})
    return checked


def _lanes(lanes: Any) -> list[str]:
    if not isinstance(lanes, list) or sorted(lanes) != sorted(LANES):
        raise ResultError(f"a match's lanes are {' and '.join(LANES)}, one per car")
    return lanes


def _laps(laps: Any, total_laps: int) -> list[dict[str, Any]]:
    if not isinstance(laps, list) or not laps or len(laps) > total_laps:
        raise ResultError(f"expected 1 to {total_laps} lap records")
    checked = []
    for index, lap in enumerate(laps, start=1):
        if not isinstance(lap, dict):
            raise ResultError(f"lap record {index} is not an object")
        for field in LAP_INT_FIELDS:
            value = lap.get(field)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**9:
                raise ResultError(f"lap {index}: {field} must be a non-negative integer")
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
