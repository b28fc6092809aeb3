"""Runs INSIDE the sandbox: read a job on stdin, drive the model through the race, print one JSON result.

No Django, no settings, no database, no network: only the read-only ``sim`` package, the sandbox contract
(``evaluator.contract``), the validated model folder (``/model``) and a scratch folder. The job and the result are
the contract's classes (``RaceJob`` / ``MatchJob`` in, ``RaceResult`` / ``MatchResult`` / ``RunnerFailure`` out);
the trusted side validates everything printed here (``evaluator.contract.parse_runner_output``) before anything
reaches the database.

The imports (ONNX Runtime, the simulator) happen BEFORE the job is read: the worker starts the sandbox first (or
keeps one started ahead, idle on its stdin: ``evaluator.execution.WarmSandbox``). The input comes in two parts:
the job, one JSON line, sent as soon as the worker has claimed the work, and the end of the input, once the worker
has copied and validated the archive into ``/model``. Between the two this process builds what depends on the
track alone (its road polygon, and its floor raster for the camera, mapped from the one the worker saved in
``/model/track`` before the job line, or drawn), so that work overlaps the archive's validation; it reads nothing
else under ``/model`` before the input has ended.

A race job's ``objects`` is null (time trial), ``{"kind": "boxes", "items": [{"ndist", "lane"}, ...]}`` or
``{"kind": "bots", "items": [...], "speed", "lane_change_every_s"}`` with ``ndist`` the fraction of the lap in the
direction raced and ``lane`` inner or outer (``sim.world.objects.objects_from_spec`` checks it; a bad spec is a job
error). A match job is raced with ``sim.race.head_to_head.run_match``; a failure of one car's model names the car.

The network drives with the ONNX race plan the worker wrote beside the validated weights (``--precision onnx``, the
default: ``sim.race.onnx_policy``, ONNX Runtime with int8 weights for the large dense layer), so this process never
imports torch (~2 s of CPU per evaluation, more than the race). ``--precision fp32`` races the network exactly as
trained with torch, to re-check the tolerance the plans are tested to (tests/sim/test_race_inference.py);
``auto``, ``int8`` and ``int8+bf16`` are torch's own fast plans (``sim.learn.inference``).

The sandbox caps the disk a run may fill (a size-limited ``/scratch`` and ``/tmp``, a size per file): running out of it
(ENOSPC, EFBIG) is the model's failure, reported as such by ``run``, not a crash of the evaluator.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import evaluator.contract as contract  # the standard library only: importable before (and without) the simulator

TRACE_EVERY = 2  # every 2nd step (7.5 Hz) is plenty for the replay and keeps results small
TRACE_DECIMALS = 3  # millimetres, milliradians: finer than the replay can show
SCRATCH = "/scratch"  # the sandbox's private scratch folder (evaluator.sandbox.SCRATCH_MOUNT)


ONNX = "onnx"  # the race plan of the model folder, raced with ONNX Runtime (no torch)
PRECISION = ONNX  # the network's plan: ONNX, or one of sim.learn.inference.PRECISIONS; the command line may set it
TORCH_PRECISIONS = ("auto", "fp32", "int8", "int8+bf16")  # sim.learn.inference.PRECISIONS, which imports torch


def main() -> int:
    started = time.monotonic()
    precision = PRECISION
    if precision != ONNX and precision not in TORCH_PRECISIONS:
        choices = ", ".join((ONNX, *TORCH_PRECISIONS))
        return _emit(contract.RunnerFailure("job", f"runner arguments: precision must be one of {choices}, "
                                                   f"got {precision!r}"))
    try:
        import numpy as np

        from sim.io.simtrace import simtrace_csv_text
        from sim.race.evaluation import run_race
        from sim.race.head_to_head import run_match  # noqa: F401  (imported before the job arrives, used by matches)
        from sim.world.objects import objects_from_spec
        from sim.world.track import Track

        load_model = _model_loader(precision)
    except Exception as error:  # a broken installation is our fault, not the model's
        return _emit(contract.RunnerFailure("job", f"runner import failed: {error!r}"))
    imported = time.monotonic()

    try:
        job = contract.job_from_json(json.loads(sys.stdin.readline()))
        job_read = time.monotonic()
        track = Track.from_array(np.asarray(job.track_rows, dtype=np.float64), name=job.track_name)
        track = track.with_direction(job.direction)
        if isinstance(job, contract.MatchJob):
            model_dirs = list(job.model_dirs)
        else:
            objects = objects_from_spec(track, job.objects)  # a bad spec is refused before the model loads
            model_dirs = [job.model_dir]
    except (contract.JobError, ValueError, KeyError, TypeError) as error:
        return _emit(contract.RunnerFailure("job", f"unusable job: {error}"))
    _prepare_track(track, _track_folder(job))
    prepared = time.monotonic()
    sys.stdin.read()  # the end of the input: the model folder is complete and validated
    model_ready = time.monotonic()
    is_match = isinstance(job, contract.MatchJob)
    rules, seed = job.rules, job.seed

    loaded_models = []
    for car, model_dir in enumerate(model_dirs):
        try:
            loaded_models.append(load_model(model_dir))
        except FileNotFoundError as error:  # the worker validates the folder and writes the plan: not the model's
            return _emit(contract.RunnerFailure("job", f"incomplete model folder: {error}"))
        except (RuntimeError, ValueError, KeyError, OSError) as error:  # ArchiveError is a ValueError
            return _emit(contract.RunnerFailure("model", f"the model could not be loaded: {error}",
                                       car=car if is_match else None))
    loaded = time.monotonic()
    timings = {"import_s": round(imported - started, 3), "wait_s": round(job_read - imported, 3),
               "track_s": round(prepared - job_read, 3), "model_wait_s": round(model_ready - prepared, 3),
               "load_s": round(loaded - model_ready, 3)}

    if is_match:
        return _race_match(loaded_models, track, rules, seed, job_read, loaded, timings)
    vehicle, policy = loaded_models[0]
    try:
        run = run_race(policy, track, vehicle, rules, seed=seed, objects=objects)
    except (RuntimeError, ValueError) as error:
        return _emit(contract.RunnerFailure("model", f"the model failed while driving: {error}"))
    raced = time.monotonic()
    return _emit(contract.RaceResult(
        laps=[lap.to_dict() for lap in run.laps],
        trace=_compact_trace(run.trace),
        simtrace_csv=simtrace_csv_text(run.simtrace),
        # From the job to the result: a sandbox started ahead imports, then may wait minutes for its job (a racer's
        # page said "evaluated in 21.3 s" for a run scored 1 s after it was queued). import_s and wait_s say the rest.
        duration_s=round(raced - job_read, 3),
        # import_s overlaps the worker's archive validation; the job arrives when the archive is ready.
        timings=timings | {"race_s": round(raced - loaded, 3), "policy_s": round(run.policy_s, 3)},
    ))


def _prepare_track(track, folder: str) -> None:
    """Build the track's lazily computed parts a race needs whatever the model (every car has a camera): the floor
    raster the camera samples (mapped from the one the worker drew, ``folder``; drawn here, ~0.6 s for the technical
    loop, if it is missing or another track's) and the road polygon (~0.15 s). Deterministic (fixed texture seed),
    memoised on the track object the race then uses."""
    import numpy as np

    from sim.sensors.floor import floor_raster, load_floor_raster

    if load_floor_raster(track, folder) is None:
        floor_raster(track)
    track.contains(np.zeros((1, 2)))


def _track_folder(job: contract.RaceJob | contract.MatchJob) -> str:
    """Where the worker put the prepared track: the top of the model mount (``sim.io.model_files.TRACK_FOLDER``)."""
    from sim.io.model_files import TRACK_FOLDER

    top = job.model_dir if isinstance(job, contract.RaceJob) else os.path.dirname(job.model_dirs[0])
    return os.path.join(top, TRACK_FOLDER)


def _model_loader(precision: str) -> Callable[[str], tuple[Any, Callable[[Any], Any]]]:
    """``model_dir -> (vehicle, greedy policy)`` for ``precision``; imports what it needs now (before the job)."""
    if precision == ONNX:
        from sim.race.onnx_policy import load_race_policy

        return load_race_policy
    import torch

    from sim.io.archive import load_actor_critic
    from sim.learn.agent import race_policy

    torch.set_num_threads(1)

    def load_with_torch(model_dir: str) -> tuple[Any, Callable[[Any], Any]]:
        vehicle, network = load_actor_critic(model_dir)
        return vehicle, race_policy(network, precision)

    return load_with_torch


def _race_match(loaded_models, track, rules, seed: int, job_read: float, loaded: float, timings: dict) -> int:
    """Race the two loaded models against each other and print both cars' laps and traces."""
    from sim.race.head_to_head import run_match  # imported by main() already (before the job was read)

    policies = [policy for _, policy in loaded_models]
    vehicles = [vehicle for vehicle, _ in loaded_models]
    try:
        match = run_match(policies, track, vehicles, rules, seed=seed, record_simtrace=False)
    except (RuntimeError, ValueError) as error:
        # Which car's network raised is not known here: the match fails for both (an admin can re-run it).
        return _emit(contract.RunnerFailure("model", f"a model failed while driving: {error}"))
    raced = time.monotonic()
    car_a, car_b = (contract.CarRun(laps=[lap.to_dict() for lap in run.laps], trace=_compact_trace(run.trace))
                    for run in match.cars)
    return _emit(contract.MatchResult(
        cars=(car_a, car_b),
        lanes=list(match.lanes),
        duration_s=round(raced - job_read, 3),  # from the job to the result, as for a race
        timings=timings | {"race_s": round(raced - loaded, 3),
                           "policy_s": round(sum(car.policy_s for car in match.cars), 3)},
    ))


def _precision(argv: list[str]) -> str:
    """``[--precision NAME]`` (default onnx); ``main`` checks the name."""
    if not argv:
        return ONNX
    if len(argv) == 2 and argv[0] == "--precision":
        return argv[1]
    raise ValueError(f"expected [--precision NAME], got {' '.join(argv)!r}")


def run() -> int:
    """``main``, with a run that filled its disk allowance reported as the model's failure."""
    try:
        return main()
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EFBIG):
            raise
        return _emit(contract.RunnerFailure("model", _disk_limit_message(error)))


def _disk_limit_message(error: OSError) -> str:
    if error.errno == errno.EFBIG:
        return f"The model exceeded the sandbox's file size limit ({error.strerror})"
    if not os.path.isdir(SCRATCH):  # the fallback sandbox has no capped folders: the host's disk is full
        return f"The model ran out of disk space ({error.strerror})"
    sizes = []
    for folder in (SCRATCH, "/tmp"):
        stats = os.statvfs(folder)
        sizes.append(f"{folder} {stats.f_blocks * stats.f_frsize // 1024**2} MiB")
    return f"The model exceeded the scratch limit ({', '.join(sizes)}): {error.strerror}"


def _compact_trace(trace: dict[str, Any]) -> dict[str, list]:
    def compact(value: Any) -> Any:
        if isinstance(value, list):  # the bots' poses of one step
            return [compact(v) for v in value]
        return round(float(value), TRACE_DECIMALS) if isinstance(value, int | float) or hasattr(value, "dtype") \
            else str(value)

    return {key: [compact(v) for v in list(values)[::TRACE_EVERY]] for key, values in trace.items()}


def _emit(output: contract.RunnerOutput) -> int:
    sys.stdout.write(json.dumps(output.to_json(), allow_nan=False))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    try:
        PRECISION = _precision(sys.argv[1:])
    except ValueError as error:
        status = _emit(contract.RunnerFailure("job", f"runner arguments: {error}"))
    else:
        status = run()
    sys.stdout.flush()
    os._exit(status)  # skip interpreter teardown (unloading torch after --precision fp32 costs ~0.4 s): result is out
