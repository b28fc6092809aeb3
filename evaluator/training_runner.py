"""Runs INSIDE the sandbox: read a training job on stdin, train a model folder in the scratch, print the outcome.

No Django, no settings, no database, no network: only the read-only ``sim`` package, the sandbox contract, the
read-only model mount (a model to clone at ``/model/clone``, or the job's last stored model folder at
``/model/resume``) and the private scratch. The job and the outcome are the contract's classes (``TrainingJob`` in,
``TrainingOutcome`` or ``RunnerFailure`` out); the worker validates the printed outcome and the exported
``model.tar.gz`` (``sim.io.archive``) before anything reaches storage or the database.

Layout of the scratch (the worker reads it while the run goes, every few seconds, and once more at the end)::

    training/model/        the model folder (sim.io.model_folder): metrics, checkpoints, reward graph, model.tar.gz
    training/tracks/       the job's tracks as .npy route files, rows in the direction driven
    training/trajectories.json   the latest evaluation episodes' paths (x, y, speed per step, decimated)
    training/camera-NNNNN.npy    what the first evaluation car saw in iteration NNNNN (sim.io.camera_film), the latest
    training/log.txt       the run's console lines (one per iteration), capped

SIGINT (the worker's stop request) is the console's Stop: from the first moment (before torch is imported) it asks
the run to stop at the next safe point; ``sim.learn.budget`` turns it into a clean end that still exports the model.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

import evaluator.contract as contract  # the standard library only: importable before (and without) the simulator

SCRATCH = "/scratch"  # evaluator.sandbox.SCRATCH_MOUNT; the fallback sandbox runs in its scratch folder instead
TRAINING_DIR = "training"
MODEL_DIR = "model"
TRAJECTORY_EVERY = 3  # every 3rd step (5 Hz) draws a path well enough
MAX_TRAJECTORY_POINTS = 600  # per episode
LOG_CAP_BYTES = 256 * 1024  # the log is rewritten with its last quarter when it grows past this
# Training simtraces kept in the scratch: older ones are in storage already (the worker copies each as it is written).
KEEP_SIMTRACES = 10
THREADS = 1  # one core per job: an operator scales with worker processes on the training queue
# Trainings run for minutes to hours, evaluations are waited for: a training yields the CPU to them (nice 10 weighs
# about a tenth of nice 0).
TRAINING_NICE = 10
AUTOGROUP_TRIES = 20  # ~2 s of 100 ms windows (yield_cpu_to_evaluations)

_stop_requested = False


def _early_interrupt(*_: Any) -> None:
    """A Stop that arrives before the trainer runs (while torch imports, the folder is set up): remembered."""
    global _stop_requested
    _stop_requested = True


def yield_cpu_to_evaluations() -> None:
    """Lower this run's CPU priority. Each sandbox is a session of its own, and with the kernel's autogroups (on by
    default) a process's nice only ranks it within its session: the session's own nice is lowered too."""
    with contextlib.suppress(OSError):
        os.nice(TRAINING_NICE)
    # The kernel lets a process without CAP_SYS_ADMIN change an autogroup's nice once per 100 ms machine-wide, and
    # answers EAGAIN inside that window (two runs starting together: the second kept its session at nice 0).
    for _ in range(AUTOGROUP_TRIES):
        try:
            with open("/proc/self/autogroup", "w") as autogroup:
                autogroup.write(str(TRAINING_NICE))
            return
        except OSError as error:
            if error.errno != errno.EAGAIN:
                return  # no autogroups here (or no /proc): the process nice is all there is
            time.sleep(0.11)


def main() -> int:
    started = time.monotonic()
    signal.signal(signal.SIGINT, _early_interrupt)
    yield_cpu_to_evaluations()
    scratch = Path(SCRATCH if os.path.isdir(SCRATCH) else os.getcwd())
    (scratch / contract.READY_MARKER).touch()  # from now on a SIGINT is a clean stop, not a crash
    work = scratch / TRAINING_DIR
    try:
        import numpy as np

        from sim.io.camera_film import FilmRecorder
        from sim.learn.budget import StopConditions
        from sim.learn.config import TrainingConfig
        from sim.learn.hyperparameters import Hyperparameters
        from sim.learn.trainer import check_warm_start
        from sim.learn.training import resume_training, start_training
        from sim.world.track import Track
        from sim.world.vehicle import Vehicle
    except Exception as error:  # a broken installation is our fault, not the racer's
        return _emit(contract.RunnerFailure("job", f"training runner import failed: {error!r}"))
    imported = time.monotonic()

    try:
        job = contract.job_from_json(json.loads(sys.stdin.read()))
        if not isinstance(job, contract.TrainingJob):
            raise contract.JobError("not a training job")
    except (contract.JobError, ValueError, KeyError, TypeError) as error:
        return _emit(contract.RunnerFailure("job", f"unusable job: {error}"))
    job_read = time.monotonic()

    work.mkdir(parents=True, exist_ok=True)
    sys.stderr = _CappedLog(work / "log.txt", sys.stderr)
    model_dir = work / MODEL_DIR
    tracks_dir = work / "tracks"
    tracks_dir.mkdir(exist_ok=True)
    try:
        track_names = []
        for job_track in job.tracks:
            track = Track.from_array(np.asarray(job_track.rows, dtype=np.float64), name=job_track.name)
            track = track.with_direction(job.direction)
            # A built-in name would load the built-in (counterclockwise): the other direction gets a name of its own.
            name = job_track.name if job.direction == "counterclockwise" else f"{job_track.name}_{job.direction}"
            np.save(tracks_dir / f"{name}.npy", track.waypoints)
            track_names.append(name)
        if job.start == "resume":
            shutil.copytree(job.resume_dir, model_dir, dirs_exist_ok=False)
            _point_at_tracks(model_dir, tracks_dir)
            trainer = resume_training(model_dir, threads=THREADS)
        else:
            config = TrainingConfig(
                track=track_names[0], more_tracks=tuple(track_names[1:]), best_by=job.best_by, objects=job.objects,
                vehicle=Vehicle.from_file_dict(job.vehicle),
                reward_function_source=job.reward_function_source,
                hyperparameters=Hyperparameters.from_dict(job.hyperparameters),
                evaluation_episodes=job.evaluation_episodes, max_episode_steps=job.max_episode_steps,
                seed=job.seed, export="best", tracks_dir=str(tracks_dir),
            )
            if job.warm_start:
                check_warm_start(config.vehicle)  # before the folder is set up
            trainer = start_training(model_dir, config, clone_from=job.clone_dir if job.start == "clone" else None,
                                     threads=THREADS)
    except (ValueError, KeyError, TypeError, FileNotFoundError) as error:
        # TrainingError, RewardFunctionError, VehicleError, HyperparameterError are ValueErrors: the racer's settings
        # (or the model to clone) cannot train, the same way every time: no retry.
        return _emit(contract.RunnerFailure("model", f"training could not start: {error}"))
    set_up = time.monotonic()

    if trainer.evaluation_envs:  # the page draws the latest evaluation episodes' paths on the main track
        trainer.evaluation_envs[0].record_trace = True
        trainer.film = FilmRecorder()  # and shows what the first of those cars saw

    def show_evaluation(iteration: int) -> None:  # what the page draws: the evaluation paths and the camera film
        _write_film(trainer, iteration, work)
        _write_trajectories(trainer, iteration, work / "trajectories.json")

    def on_iteration(row: dict[str, Any]) -> None:
        show_evaluation(row["iteration"])
        _bound_logs(model_dir, row["iteration"])

    if _stop_requested:  # stopped before the first iteration: the starting (or resumed) weights are the model
        archive = trainer.finish()
        result = None
    else:
        result = trainer.run(StopConditions(max_minutes=job.max_seconds / 60, max_episodes=job.max_episodes),
                             progress=True, on_iteration=on_iteration, warm_start=job.warm_start, started=started,
                             on_start_evaluated=lambda: show_evaluation(0))  # a warm start's laps: iteration 0
        archive = result.archive
    trained = time.monotonic()
    best = None if trainer.best_iteration is None else round(float(trainer.best_progress), 4)
    return _emit(contract.TrainingOutcome(
        stopped_by=result.stopped_by if result is not None else "interrupted",
        iterations=trainer.iteration, episodes=trainer.episodes, env_steps=trainer.env_steps,
        iterations_this_run=result.iterations_this_run if result is not None else 0,
        best_iteration=trainer.best_iteration, best_progress=None if best is None else min(100.0, max(0.0, best)),
        archive=str(Path(archive).relative_to(work.parent)),
        duration_s=round(trained - started, 3),
        timings={"import_s": round(imported - started, 3), "wait_s": round(job_read - imported, 3),
                 "setup_s": round(set_up - job_read, 3), "train_s": round(trained - set_up, 3)},
    ))


def _bound_logs(model_dir: Path, iteration: int) -> None:
    """Keep the scratch bounded on long runs: the worker stores each iteration's training simtrace as soon as it is
    written, so only the last few stay here; the robomaker log repeats the same rows and is not stored, so it is
    emptied (the trainer appends to it, and goes on appending at its new end)."""
    for path in (model_dir / "training-simtrace").glob("*-iteration.csv"):
        number = path.name.removesuffix("-iteration.csv")
        if number.isdigit() and int(number) < iteration - KEEP_SIMTRACES:
            path.unlink(missing_ok=True)
    for log_file in (model_dir / "logs" / "training").glob("*-robomaker.log"):
        os.truncate(log_file, 0)


def _write_film(trainer: Any, iteration: int, work: Path) -> None:
    """The first evaluation car's camera frames of the iteration just committed; the previous film goes."""
    from sim.io.camera_film import film_file_name, film_iteration, save_film

    film = trainer.film.film() if trainer.film is not None else None
    if film is None:  # no evaluation episodes
        return
    save_film(film, work / film_file_name(iteration))
    for older in work.iterdir():
        if film_iteration(older.name) not in (None, iteration):
            older.unlink(missing_ok=True)


def _point_at_tracks(model_dir: Path, tracks_dir: Path) -> None:
    """A resumed folder was set up by another run, maybe in another scratch path: its tracks are here now."""
    config_path = model_dir / "training.json"
    config = json.loads(config_path.read_text())
    config["tracks_dir"] = str(tracks_dir)
    config_path.write_text(json.dumps(config, indent=2))


def _write_trajectories(trainer: Any, iteration: int, path: Path) -> None:
    """The evaluation episodes' paths of the iteration just committed, small enough for a web page."""
    if not trainer.evaluation_envs:
        return
    env = trainer.evaluation_envs[0]  # the main track's: the page draws them on its picture
    episodes = []
    for car in range(env.num_envs):
        trace = env.record(car).trace
        xs, ys, speeds = (list(trace.get(key, []))[::TRAJECTORY_EVERY] for key in ("x", "y", "speed"))
        step = max(1, -(-len(xs) // MAX_TRAJECTORY_POINTS))
        episodes.append({"x": [round(float(v), 3) for v in xs[::step]],
                         "y": [round(float(v), 3) for v in ys[::step]],
                         "speed": [round(float(v), 2) for v in speeds[::step]]})
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps({"iteration": iteration, "episodes": episodes}))
    os.replace(partial, path)


class _CappedLog:
    """stderr, also written to a file the worker shows as the page's log tail (kept short: the scratch is capped)."""

    def __init__(self, path: Path, stream: Any) -> None:
        self.path, self.stream = path, stream
        self.file = path.open("a", encoding="utf-8")

    def write(self, text: str) -> int:
        self.stream.write(text)
        self.file.write(text)
        self.file.flush()
        if self.file.tell() > LOG_CAP_BYTES:
            self.file.close()
            kept = self.path.read_bytes()[-LOG_CAP_BYTES // 4:]
            self.path.write_bytes(kept)
            self.file = self.path.open("a", encoding="utf-8")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()
        self.file.flush()

    def isatty(self) -> bool:
        return False


def run() -> int:
    """``main``, with a run that filled its disk allowance reported as the model's failure."""
    try:
        return main()
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EFBIG):
            raise
        return _emit(contract.RunnerFailure("model", f"The training exceeded the sandbox's scratch limit "
                                                     f"({error.strerror}): keep fewer or smaller files"))


def _emit(output: contract.RunnerOutput) -> int:
    sys.__stdout__.write(json.dumps(output.to_json(), allow_nan=False))
    sys.__stdout__.flush()
    return 0


if __name__ == "__main__":
    status = run()
    os._exit(status)  # skip interpreter teardown: the outcome is out, torch's unloading is slow
