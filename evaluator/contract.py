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
# race_s includes policy_s: the models' networks choosing actions (both cars' in a match); the rest is the simulator.
TIMING_KEYS = ("import_s", "wait_s", "track_s", "model_wait_s", "load_s", "race_s", "policy_s")
MAX_TRACE_POINTS = 20_000
MAX_SIMTRACE_CHARS = 16 * 1024 * 1024
MAX_ERROR_CHARS = 2000
MAX_SOURCE_CHARS = 256 * 1024  # a reward function's source
# A long-running runner creates this file in its scratch once SIGINT means "stop cleanly" (before, it would kill it).
READY_MARKER = ".ready"


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


@dataclass(frozen=True)
class TrainingTrack:
    """One track of a training job: its name and (N, 6) rows in file order; the runner applies the direction."""

    name: str
    rows: list[list[float]]


@dataclass(frozen=True)
class TrainingJob:
    """A training run: the runner trains a model folder in its scratch from these settings, for at most
    ``max_seconds`` (what is left of the job's budget) and, when set, until the model has ``max_episodes``.

    ``start``: "new" (random weights), "clone" (the validated archive in ``clone_dir`` gives the starting weights)
    or "resume" (``resume_dir`` holds the model folder as last stored: its latest checkpoint carries on). A new run
    with ``warm_start`` first imitates the racing-line driver (``sim.learn.trainer``), within the budget. ``vehicle``
    is ``sim.world.vehicle.Vehicle.to_file_dict()``, ``hyperparameters`` ``Hyperparameters.to_dict()``; the runner
    builds both (a bad one is a job error). ``tracks`` rotate per episode (the first is the main track; the
    simulator trains on one today), ``best_by`` chooses the exported checkpoint ("progress" today).
    """

    tracks: list[TrainingTrack]
    vehicle: dict[str, Any]
    reward_function_source: str
    hyperparameters: dict[str, Any]
    max_seconds: float
    direction: str = "counterclockwise"
    max_episodes: int | None = None
    seed: int = 0
    best_by: str = "progress"
    race_type: str = "TIME_TRIAL"
    objects: dict[str, Any] | None = None
    evaluation_episodes: int = 5
    max_episode_steps: int = 1500
    start: Literal["new", "clone", "resume"] = "new"
    warm_start: bool = False
    clone_dir: str = f"{DEFAULT_MODEL_DIR}/clone"
    resume_dir: str = f"{DEFAULT_MODEL_DIR}/resume"

    def to_json(self) -> dict[str, Any]:
        return {
            "version": CONTRACT_VERSION, "kind": "training",
            "tracks": [{"name": track.name, "rows": track.rows} for track in self.tracks],
            "direction": self.direction, "vehicle": self.vehicle,
            "reward_function_source": self.reward_function_source, "hyperparameters": self.hyperparameters,
            "stop": {"max_seconds": self.max_seconds, "max_episodes": self.max_episodes},
            "seed": self.seed, "best_by": self.best_by, "race_type": self.race_type, "objects": self.objects,
            "evaluation_episodes": self.evaluation_episodes, "max_episode_steps": self.max_episode_steps,
            "start": self.start, "warm_start": self.warm_start, "clone_dir": self.clone_dir,
            "resume_dir": self.resume_dir,
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> TrainingJob:
        tracks = document["tracks"]
        if not isinstance(tracks, list) or not tracks:
            raise JobError("a training job names at least one track")
        stop = document["stop"]
        max_episodes = stop.get("max_episodes")
        job = cls(
            tracks=[TrainingTrack(name=str(track["name"]), rows=track["rows"]) for track in tracks],
            direction=str(document.get("direction", "counterclockwise")),
            vehicle=_mapping(document["vehicle"], "vehicle"),
            reward_function_source=_text(document["reward_function_source"], "reward_function_source",
                                         MAX_SOURCE_CHARS),
            hyperparameters=_mapping(document["hyperparameters"], "hyperparameters"),
            max_seconds=float(stop["max_seconds"]),
            max_episodes=None if max_episodes is None else int(max_episodes),
            seed=int(document.get("seed", 0)),
            best_by=str(document.get("best_by", "progress")),
            race_type=str(document.get("race_type", "TIME_TRIAL")),
            objects=document.get("objects"),
            evaluation_episodes=int(document.get("evaluation_episodes", 5)),
            max_episode_steps=int(document.get("max_episode_steps", 1500)),
            start=document.get("start", "new"),
            warm_start=document.get("warm_start", False),
            clone_dir=str(document.get("clone_dir", cls.clone_dir)),
            resume_dir=str(document.get("resume_dir", cls.resume_dir)),
        )
        if job.start not in ("new", "clone", "resume"):
            raise JobError(f"unknown start {str(job.start)[:20]!r} (new, clone or resume)")
        if not isinstance(job.warm_start, bool):
            raise JobError("warm_start must be true or false")
        if job.warm_start and job.start != "new":
            raise JobError("a warm start begins a new model: not with a clone or a resumed run")
        if not (math.isfinite(job.max_seconds) and job.max_seconds > 0):
            raise JobError("max_seconds must be a positive number")
        if job.max_episodes is not None and job.max_episodes < 1:
            raise JobError("max_episodes must be at least 1")
        return job


Job = RaceJob | MatchJob | TrainingJob


def _job_document(job: Job) -> dict[str, Any]:
    return {"version": CONTRACT_VERSION, "track": {"name": job.track_name, "rows": job.track_rows},
            "direction": job.direction, "rules": job.rules.to_dict(), "seed": job.seed}


def job_from_json(document: Any) -> Job:
    """The job the runner received; ``JobError`` names what is missing or wrong."""
    from sim.world.rules import RaceRules

    try:
        _check_version(document, JobError)
        if document.get("kind") == "training":
            return TrainingJob.from_json(document)
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
    duration_s: float = 0.0  # from the job reaching the runner to this result (the runtime import is in timings)
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


STOP_REASONS = ("max_minutes", "max_episodes", "interrupted")  # sim.learn.budget's


@dataclass(frozen=True)
class TrainingOutcome:
    """How a training run ended (the runner prints it last). The model itself, ``model.tar.gz`` in the run's
    scratch (``archive``, relative to it), is validated by the worker with ``sim.io.archive``: nothing here is
    trusted. The totals count earlier attempts' iterations too (a resumed run carries on)."""

    stopped_by: str
    iterations: int
    episodes: int
    env_steps: int
    iterations_this_run: int
    best_iteration: int | None = None
    best_progress: float | None = None
    archive: str = "training/model/model.tar.gz"
    duration_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"version": CONTRACT_VERSION, "ok": True, "kind": "training", "stopped_by": self.stopped_by,
                "iterations": self.iterations, "episodes": self.episodes, "env_steps": self.env_steps,
                "iterations_this_run": self.iterations_this_run, "best_iteration": self.best_iteration,
                "best_progress": self.best_progress, "archive": self.archive, "duration_s": self.duration_s,
                "timings": self.timings}

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> TrainingOutcome:
        if document.get("kind") != "training":
            raise ResultError("a training job's outcome says kind 'training'")
        if document.get("stopped_by") not in STOP_REASONS:
            raise ResultError(f"unknown stop reason {str(document.get('stopped_by'))[:40]!r}")
        archive = _text(document.get("archive"), "archive", 200)
        if archive.startswith("/") or ".." in archive.split("/"):
            raise ResultError("the archive is a path inside the scratch folder")
        best_iteration = document.get("best_iteration")
        best_progress = document.get("best_progress")
        return cls(
            stopped_by=document["stopped_by"],
            iterations=_count(document.get("iterations"), "iterations"),
            episodes=_count(document.get("episodes"), "episodes"),
            env_steps=_count(document.get("env_steps"), "env_steps"),
            iterations_this_run=_count(document.get("iterations_this_run"), "iterations_this_run"),
            best_iteration=None if best_iteration is None else _count(best_iteration, "best_iteration"),
            best_progress=None if best_progress is None else _number(best_progress, "best_progress", 0, 100),
            archive=archive,
            duration_s=_number(document.get("duration_s"), "duration_s", 0, 7 * 24 * 3600),
            timings=_timings(document.get("timings", {}), TRAINING_TIMING_KEYS, high=7 * 24 * 3600),
        )


RunnerOutput = RaceResult | MatchResult | TrainingOutcome | RunnerFailure
TRAINING_TIMING_KEYS = ("import_s", "wait_s", "setup_s", "train_s", "export_s")


def parse_training_output(raw: bytes, limit: int) -> TrainingOutcome | RunnerFailure:
    """Parse and validate what the training runner printed: a ``TrainingOutcome`` or its failure report."""
    document = _document(raw, limit)
    if not document["ok"]:
        return RunnerFailure.from_json(document, match=False)
    return TrainingOutcome.from_json(document)


def parse_runner_output(raw: bytes, total_laps: int, limit: int, match: bool = False) -> RunnerOutput:
    """Parse and validate what the runner printed: a result, or the runner's own failure report.

    ``match``: the output of a ``MatchJob`` (``cars`` and ``lanes`` instead of one car's laps, trace and simtrace;
    a model failure may name its ``car``). Anything malformed raises ``ResultError`` with a clear message.
    """
    document = _document(raw, limit)
    if not document["ok"]:
        return RunnerFailure.from_json(document, match)
    return MatchResult.from_json(document, total_laps) if match else RaceResult.from_json(document, total_laps)


def _document(raw: bytes, limit: int) -> dict[str, Any]:
    """The runner's one JSON object, with its boolean ``ok`` and this contract's version."""
    if len(raw) > limit:
        raise ResultError(f"the runner printed more than {limit} bytes")
    try:
        document = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as error:
        raise ResultError(f"the runner printed no valid JSON document ({error})") from None
    if not isinstance(document, dict) or not isinstance(document.get("ok"), bool):
        raise ResultError("the runner's document has no boolean 'ok'")
    _check_version(document, ResultError)
    return document


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


def _timings(timings: Any, keys: tuple[str, ...] = TIMING_KEYS, high: float = 3600) -> dict[str, float]:
    if not isinstance(timings, dict) or not set(timings) <= set(keys):
        raise ResultError(f"timings must be an object with keys among {', '.join(keys)}")
    return {key: _number(value, f"timings {key}", 0, high) for key, value in timings.items()}


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**12:
        raise ResultError(f"{name} must be a non-negative integer")
    return value


def _mapping(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise JobError(f"{name} must be an object")
    return value


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
