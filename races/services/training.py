"""Training in the browser: a racer's training jobs (start, stop, progress, quotas), run by the evaluator engine.

``TrainingRequest`` is what a racer asks for (the create-model form, the REST API and clones all build one); the
services below turn it into a ``TrainingJob`` that the engine runs in the sandbox on a worker (target kind
"training", its own queue: ``races/training_target.py``).

Life of a job: ``training_start`` checks the whole request (quotas, the reward function on every track, clone
compatibility) and opens the engine's attempt in its transaction (queued). A worker claims it
(``training_mark_running``: starting), the runner trains in the sandbox, and every few seconds the worker hands the
run's scratch to ``training_record_progress``, which copies the metrics, the reward graph and the latest and best
checkpoints to storage (training) and records the counters. A stop request (``training_stop``: stopping) makes the
worker interrupt the run, which exports its model; ``training_record_result`` stores that model through the
uploads' service (``model_upload``) and enters it in a race when asked (done). A worker that dies loses at most
what its last progress report had not stored: the engine re-leases the attempt and ``training_sandbox_work`` hands
the next run the stored model folder to resume from, with the budget that is left (``max_minutes`` minus the
``trained_seconds`` counted so far, each attempt's clock counted once).
"""

from __future__ import annotations

import io
import json
import logging
import math
import shutil
import tarfile
import tempfile
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from evaluator.engine import (
    EvaluationAttempt,
    ModelArchive,
    SandboxFile,
    SandboxWork,
    ScratchView,
    TrainingFinished,
    TrainingTrack,
    queue_position,
    work_cancel,
    work_request,
)
from evaluator.engine import TrainingJob as TrainingJobDocument  # the contract's job (the row is TrainingJob)
from races.models import Race, RacerModel, Track, TrainingJob, TrainingJobTrack, TrainingQuota
from races.services.errors import RuleViolation
from races.services.race_settings import race_type_objects_spec
from races.services.racer_models import model_upload
from races.services.tracks import track_sim
from races.services.visibility import race_visible_to
from sim.io.camera_film import (
    MAX_FILM_FRAMES,
    MAX_FRAME_HEIGHT,
    MAX_FRAME_WIDTH,
    FilmError,
    film_file_name,
    film_gif,
    film_iteration,
    load_film,
)

log = logging.getLogger(__name__)
Status = TrainingJob.Status
KIND = TrainingJob.EVALUATION_KIND
FINAL = (Status.DONE, Status.FAILED)
MAX_MINUTES_PER_JOB = 24 * 60.0
WALL_MARGIN_S = 300.0  # starting the sandbox, setting up the folder, the last iteration's overrun, the export
DEFAULT_SCRATCH_MB = 1024  # PITLANE_TRAINING_SCRATCH_MB: latest + best checkpoints with Adam state, the export
DEFAULT_PROGRESS_S = 3.0  # PITLANE_TRAINING_PROGRESS_S: how often the run's files are copied to storage
RUN_DIR = "training/model/"  # the model folder in the run's scratch (evaluator.training_runner)
CHECKPOINTS = "checkpoints/"
CHECKPOINT_FILES = ("weights.safetensors", "optimizer.safetensors", "state.json")
# What a resumed run needs besides its checkpoints; metrics/ and the reward graph are also what the page shows.
FOLDER_FILES = ("training.json", "reward_function.py", "model/model_metadata.json", "ip/hyperparameters.json",
                "metrics/iterations.json", "metrics/episodes.json", "reward_graph.png")
SIMTRACES = "training-simtrace/"  # DeepRacer's per-iteration CSVs (sim.io.simtrace.training_simtrace_path)
MAX_FILE_BYTES = 600 * 1024**2  # a checkpoint of the largest network with its Adam state
MAX_METRICS_BYTES = 32 * 1024**2
MAX_FILM_BYTES = MAX_FILM_FRAMES * MAX_FRAME_HEIGHT * MAX_FRAME_WIDTH + 4096  # the frames and the .npy header
LOG_TAIL_BYTES = 6 * 1024
CURVE_KEYS = ("iteration", "episodes", "env_steps", "elapsed_seconds", "mean_reward", "mean_progress",
              "evaluation_mean_progress", "steps_per_second")


@dataclass(frozen=True)
class TrainingRequest:
    """Everything a racer chooses for one training job (already checked field by field by the form or serializer;
    ``training_start`` checks the whole: quotas, the reward function on the tracks, clone compatibility)."""

    name: str  # the model's name (unique among the racer's models, as for uploads)
    description: str
    tracks: tuple[Track, ...]  # one or more; episodes rotate through them; the first is the main track
    direction: str  # Race.Direction value: "counterclockwise" | "clockwise"
    vehicle: dict[str, Any]  # sim.world.vehicle.Vehicle.to_file_dict(): a snapshot, later garage edits don't matter
    race_type: str  # Race.RaceType value other than HEAD_TO_HEAD
    reward_function_source: str
    hyperparameters: dict[str, Any]  # sim.learn.hyperparameters.Hyperparameters.to_dict()
    max_minutes: float  # the stop condition (within the racer's quota)
    best_by: str = "progress"  # which checkpoint is exported: best evaluation "progress" or best average "reward"
    clone_of: RacerModel | None = None  # start from this model's weights (same sensors, network, action shape)
    warm_start: bool = False  # a new model first imitates the racing-line driver (discrete action spaces)
    submit_to: Race | None = None  # the console's auto-submit: enter this race when training ends


@dataclass(frozen=True)
class TrainingOptions:
    """Settings of a job the racer does not choose (the admin and tests may): an episode budget on top of the
    minutes, the evaluation episodes per iteration, the episode length cap and the seed."""

    max_episodes: int | None = None
    evaluation_episodes: int = 5
    max_episode_steps: int = 1500
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------------ quotas
def training_quota() -> TrainingQuota:
    """The league's training quotas (one row, created with the defaults on first use)."""
    quota, _ = TrainingQuota.objects.get_or_create(pk=1)
    return quota


def training_quota_update(max_concurrent_per_racer: int, minutes_per_racer_per_day: int,
                          max_concurrent_total: int) -> TrainingQuota:
    """Set the quotas (the admin's form calls this). Zero is allowed: it pauses new training."""
    for name, value in (("max_concurrent_per_racer", max_concurrent_per_racer),
                        ("minutes_per_racer_per_day", minutes_per_racer_per_day),
                        ("max_concurrent_total", max_concurrent_total)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise RuleViolation("A quota is a whole number, 0 or more.", field=name)
    quota = training_quota()
    quota.max_concurrent_per_racer = max_concurrent_per_racer
    quota.minutes_per_racer_per_day = minutes_per_racer_per_day
    quota.max_concurrent_total = max_concurrent_total
    quota.save()
    return quota


def training_minutes_used_today(racer, now: datetime | None = None) -> float:
    """Minutes of the racer's daily quota taken today (server time zone): a finished job its trained time, an
    active one its whole stop condition (it may use all of it)."""
    start, _ = _today(now)
    used = 0.0
    for job in TrainingJob.objects.filter(owner=racer, created_at__gte=start):
        used += job.max_minutes if job.is_active else job.trained_seconds / 60
    return used


def _today(now: datetime | None = None) -> tuple[datetime, datetime]:
    local = timezone.localtime(now or timezone.now())
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def _clock(moment: datetime) -> str:
    local = timezone.localtime(moment)
    return f"{local:%H:%M} {local.tzname()}" + ("" if local.date() == timezone.localdate() else f" on {local:%d %b}")


def _check_quotas(racer, request: TrainingRequest, quota: TrainingQuota) -> None:
    """Refuse a job beyond the racer's quotas, saying when the quota comes back (the caller holds the racer's lock)."""
    active = list(TrainingJob.objects.filter(owner=racer, status__in=TrainingJob.ACTIVE).order_by("created_at"))
    if len(active) >= quota.max_concurrent_per_racer:
        if quota.max_concurrent_per_racer == 0:
            raise RuleViolation("Training is paused for now: the league allows no training jobs at the moment.",
                                "quota_concurrent")
        running = [job for job in active if job.status != Status.QUEUED]
        if running:
            ends = {job: timezone.now() + timedelta(seconds=max(0.0, job.max_minutes * 60 - job.trained_seconds))
                    for job in running}
            first = min(ends, key=ends.get)
            back = (f"It comes back when one ends: “{first.name}” stops by {_clock(ends[first])} at the latest, "
                    "or sooner if you stop it.")
        else:
            back = "It comes back when one of them has run (they are waiting in the queue), or if you stop one."
        raise RuleViolation(
            f"You already have {len(active)} training job{'s' if len(active) != 1 else ''} queued or running; "
            f"the limit is {quota.max_concurrent_per_racer} at once. {back}", "quota_concurrent")
    used = training_minutes_used_today(racer)
    left = max(0.0, quota.minutes_per_racer_per_day - used)
    if request.max_minutes > left + 1e-9:
        _, midnight = _today()
        ask = f"Ask for {math.floor(left)} minutes or fewer, or wait: " if left >= 1 else ""
        raise RuleViolation(
            f"That is {request.max_minutes:g} minutes of training, but you have {left:.0f} of your "
            f"{quota.minutes_per_racer_per_day} training minutes left today. {ask}your minutes come back at "
            f"{_clock(midnight)}.", "quota_minutes", field="max_minutes")


# -------------------------------------------------------------------------------------------------- starting
def training_start(racer, request: TrainingRequest, options: TrainingOptions | None = None) -> TrainingJob:
    """Check the whole request and queue the job; refusals are ``RuleViolation``s naming their ``field``."""
    from league.services import racer_alias
    from sim.learn.hyperparameters import HyperparameterError, Hyperparameters
    from sim.world.vehicle import Vehicle, VehicleError

    options = options or TrainingOptions()
    if not racer_alias(racer):
        raise RuleViolation("Choose your racer alias before you train.", "no_alias")
    name = (request.name or "").strip()
    if not name or len(name) > 64:
        raise RuleViolation("Give the model a name of 1 to 64 characters.", field="name")
    if RacerModel.objects.filter(owner=racer, name=name).exclude(status=RacerModel.Status.DELETED).exists():
        raise RuleViolation(f"You already have a model named '{name}'.", field="name")
    if TrainingJob.objects.filter(owner=racer, name=name, status__in=TrainingJob.ACTIVE).exists():
        raise RuleViolation(f"A training job of yours is already making a model named '{name}'.", field="name")
    if len(request.description or "") > 2000:
        raise RuleViolation("Keep the description under 2000 characters.", field="description")
    tracks = tuple(request.tracks)
    if not tracks:
        raise RuleViolation("Choose a track to train on.", field="tracks")
    if len(set(tracks)) != len(tracks):
        raise RuleViolation("Name each training track once.", field="tracks")
    if request.direction not in Race.Direction.values:
        raise RuleViolation("Choose counterclockwise or clockwise.", field="direction")
    for track in tracks:
        if not track.supports(request.direction):
            raise RuleViolation(f"{track.title} is driven {track.get_directions_display().lower()}.",
                                field="direction")
    if request.race_type not in Race.RaceType.values or request.race_type == Race.RaceType.HEAD_TO_HEAD:
        raise RuleViolation("Train for a time trial, object avoidance or head to bot.", field="race_type")
    if request.best_by not in TrainingJob.BestBy.values:
        raise RuleViolation("Pick the best checkpoint by evaluation progress or by reward.", field="best_by")
    minutes = request.max_minutes
    if isinstance(minutes, bool) or not isinstance(minutes, int | float) or not math.isfinite(minutes) \
            or not 0 < minutes <= MAX_MINUTES_PER_JOB:
        raise RuleViolation(f"Train for more than 0 and at most {MAX_MINUTES_PER_JOB:.0f} minutes.",
                            field="max_minutes")
    try:
        vehicle = Vehicle.from_file_dict(request.vehicle)
    except (VehicleError, ValueError, TypeError, KeyError) as error:
        raise RuleViolation(f"The vehicle cannot be used: {error}", field="vehicle") from None
    _check_disk_space(vehicle)
    try:
        hyperparameters = Hyperparameters.from_dict(dict(request.hyperparameters))
    except (HyperparameterError, TypeError) as error:
        raise RuleViolation(f"Hyperparameters: {error}", field="hyperparameters") from None
    _check_reward_function(request.reward_function_source, tracks, request.direction)
    if request.warm_start and request.clone_of is not None:
        raise RuleViolation("Start from a clone or from a warm start, not both: a warm start begins a new model.",
                            field="warm_start")
    if request.warm_start:
        _check_warm_start(vehicle)
    if request.clone_of is not None:
        _check_clone(racer, request.clone_of, vehicle)
    if request.submit_to is not None and not race_visible_to(racer).filter(pk=request.submit_to.pk).exists():
        raise RuleViolation("Choose a race you can enter.", field="submit_to")
    with transaction.atomic():
        # Serialise this racer's starts, so two at once cannot both squeeze under a quota.
        get_user_model().objects.select_for_update(no_key=True).filter(pk=racer.pk).first()
        _check_quotas(racer, request, training_quota())
        job = TrainingJob.objects.create(
            owner=racer, name=name, description=request.description or "", direction=request.direction,
            race_type=request.race_type, vehicle=vehicle.to_file_dict(),
            reward_function_source=request.reward_function_source, hyperparameters=hyperparameters.to_dict(),
            max_minutes=float(minutes), max_episodes=options.max_episodes, best_by=request.best_by,
            evaluation_episodes=options.evaluation_episodes, max_episode_steps=options.max_episode_steps,
            seed=options.seed, cloned_from=request.clone_of, warm_start=bool(request.warm_start),
            submit_to=request.submit_to,
        )
        TrainingJobTrack.objects.bulk_create(TrainingJobTrack(job=job, track=track, position=position)
                                             for position, track in enumerate(tracks))
        work_request(KIND, job.pk)
    return job


def _check_warm_start(vehicle) -> None:
    from sim.learn.config import TrainingError
    from sim.learn.trainer import check_warm_start

    try:
        check_warm_start(vehicle)
    except TrainingError as error:
        raise RuleViolation(f"This car cannot warm-start: {error}. Choose a vehicle with a discrete action space, "
                            "or train without it.", field="warm_start") from None


def _check_disk_space(vehicle) -> None:
    """A network whose checkpoints cannot fit the training's capped scratch is refused now, not after minutes."""
    from races.services.presenters import network_words, sensor_words
    from sim.learn.trainer import training_disk_bytes

    needed, allowed = training_disk_bytes(vehicle), _scratch_bytes()
    if needed > allowed:
        raise RuleViolation(
            f"This car's network ({network_words(vehicle.neural_network)} with {sensor_words(list(vehicle.sensors))}) "
            f"needs about {needed / 1024**3:.1f} GB to train (its checkpoints), and this league gives a training "
            f"{allowed / 1024**3:.1f} GB. Choose a smaller network or fewer sensors, or ask the league's admin.",
            "training_disk", field="vehicle")


def _check_reward_function(source: str, tracks: tuple[Track, ...], direction: str) -> None:
    """The CLI's validation on synthetic cars of every track, run in the evaluation sandbox: the racer's code never
    runs in the web process (``races.services.reward_functions``, the editor's Validate)."""
    from races.services.reward_functions import reward_function_validate

    if not isinstance(source, str) or not source.strip():
        raise RuleViolation("Write a reward function.", field="reward_function_source")
    for track in tracks:
        try:
            check = reward_function_validate(source, track, direction)
        except RuleViolation as error:  # too large, or no sandbox on this server
            raise RuleViolation(error.message, error.code, field="reward_function_source") from None
        if not check.valid:
            where = f" (on {track.title})" if len(tracks) > 1 else ""
            raise RuleViolation(f"The reward function does not work{where}: {check.message}", "reward_function",
                                field="reward_function_source")


def _check_clone(racer, model: RacerModel, vehicle) -> None:
    """The clone's rules are ``sim.learn.training.clone_weights``' (same sensors, network and action shape)."""
    from sim.io.archive import ArchiveError
    from sim.learn.config import TrainingError
    from sim.learn.training import clone_weights

    if model.owner_id != racer.pk or model.status != RacerModel.Status.VALID:
        raise RuleViolation("Clone one of your own models.", field="clone_of")
    with tempfile.TemporaryDirectory(prefix="pitlane-clone-") as scratch:
        copy = Path(scratch) / "model.tar.gz"
        try:
            with model.archive.open("rb") as stream, copy.open("wb") as out:
                shutil.copyfileobj(stream, out, 1024 * 1024)
            clone_weights(copy, vehicle)
        except TrainingError as error:
            message = str(error).replace(str(copy), f"“{model.name}”")
            raise RuleViolation(f"This vehicle cannot continue that model: {message}", field="clone_of") from None
        except (ArchiveError, OSError) as error:
            raise RuleViolation(f"The model “{model.name}” cannot be read: {error}", field="clone_of") from None


def training_clone(racer, model: RacerModel, name: str, max_minutes: float, tracks: tuple[Track, ...] = (),
                   direction: str | None = None, reward_function_source: str | None = None,
                   hyperparameters: dict[str, Any] | None = None, submit_to: Race | None = None) -> TrainingJob:
    """Train ``model`` further (any of the racer's models, uploaded ones included): its vehicle, and by default
    the reward function, hyperparameters, tracks and direction of the job that made it (or of its archive)."""
    from races.services.racer_models import model_contents
    from sim.world.vehicle import Vehicle

    if model.owner_id != racer.pk or model.status != RacerModel.Status.VALID:
        raise RuleViolation("Clone one of your own models.", field="clone_of")
    maker = TrainingJob.objects.filter(model=model).first()
    contents = model_contents(model)
    source = reward_function_source or (maker.reward_function_source if maker else None) \
        or contents.get("reward_function_source")
    if not source:
        raise RuleViolation("This model holds no reward function: write one to train it further.",
                            field="reward_function_source")
    if hyperparameters is None:
        hyperparameters = maker.hyperparameters if maker else _our_hyperparameters(contents.get("hyperparameters"))
    if not tracks and maker is not None:
        tracks = tuple(row.track for row in maker.track_rows.select_related("track"))
    try:
        vehicle = Vehicle.from_model_metadata(model.metadata, name=model.name).to_file_dict()
    except ValueError as error:
        raise RuleViolation(f"The model's vehicle cannot be read: {error}", field="clone_of") from None
    return training_start(racer, TrainingRequest(
        name=name, description=f"Cloned from {model.name}", tracks=tuple(tracks),
        direction=direction or (maker.direction if maker else Race.Direction.COUNTERCLOCKWISE),
        vehicle=vehicle, race_type=maker.race_type if maker else Race.RaceType.TIME_TRIAL,
        reward_function_source=source, hyperparameters=hyperparameters, max_minutes=max_minutes,
        clone_of=model, submit_to=submit_to))


def _our_hyperparameters(deepracer: Any) -> dict[str, Any]:
    from sim.learn.hyperparameters import Hyperparameters

    try:
        return Hyperparameters.from_deepracer_json(deepracer or {}).to_dict()
    except (ValueError, TypeError):
        return Hyperparameters().to_dict()


# ---------------------------------------------------------------------------------------- reading and stopping
def training_jobs_of(racer) -> QuerySet[TrainingJob]:
    return TrainingJob.objects.filter(owner=racer).select_related("model", "submit_to")


def training_job_for(user, job_id: int) -> TrainingJob:
    """The user's own job; anyone else's is ``TrainingJob.DoesNotExist`` (views answer 404: nobody sees whether
    another racer's job exists)."""
    if not getattr(user, "is_authenticated", False):
        raise TrainingJob.DoesNotExist
    return training_jobs_of(user).get(pk=job_id)


def training_stop(job: TrainingJob, by) -> TrainingJob:
    """Stop the job cleanly: a running one is interrupted and keeps the model it has; a waiting one that never
    trained ends without a model. Only its owner may stop it."""
    if by is None or job.owner_id != by.pk:
        raise RuleViolation("Only the racer who started a training job can stop it.", "not_owner")
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().get(pk=job.pk)
        if job.status in FINAL:
            raise RuleViolation(f"This training job is already {job.get_status_display().lower()}.", "final")
        if job.stop_requested_at is None:
            job.stop_requested_at = timezone.now()
        if job.status == Status.QUEUED and job.checkpoint_iteration is None:
            work_cancel(KIND, job.pk, "stopped by the racer before it started")
            _finish(job, Status.FAILED, "Stopped before training started: no model was made.")
        else:  # running, or waiting to resume stored checkpoints: the next run stops at once and exports them
            job.status = Status.STOPPING
            job.save(update_fields=["stop_requested_at", "status"])
    return job


def training_job_of_model(model: RacerModel) -> TrainingJob | None:
    """The training job that made this model (None: it was uploaded)."""
    return TrainingJob.objects.filter(model=model).first()


def training_seconds_left(job: TrainingJob) -> float:
    return max(0.0, job.max_minutes * 60 - job.trained_seconds)


def training_progress(job: TrainingJob) -> dict[str, Any]:
    """What the live page and the API show: status, queue position, counters, the reward graph's curves, the
    latest evaluation paths' iteration, the log tail, the resulting model."""
    live = job.live or {}
    # The live counts belong to the iteration under way only: once it is committed they are in the totals.
    under_way = job.is_active and isinstance(live.get("iteration"), int) and live["iteration"] > job.iterations
    return {
        "id": job.pk,
        "name": job.name,
        "status": job.status,
        "status_label": job.get_status_display(),
        "queue_position": queue_position(KIND, job.pk) if job.status == Status.QUEUED else None,
        "failure_reason": job.failure_reason,
        "phase": live.get("phase", ""),
        "update": live.get("update", "") if job.is_active else "",
        "note": live.get("note", ""),
        "iteration": job.iterations,
        "episodes": job.episodes,
        "env_steps": job.env_steps,
        "iteration_episodes_finished": live.get("iteration_episodes_finished") if under_way else None,
        "iteration_episodes_planned": live.get("iteration_episodes_planned") if under_way else None,
        "iteration_env_steps": live.get("iteration_env_steps") if under_way else None,
        "trained_seconds": round(job.trained_seconds, 1),
        "seconds_left": round(training_seconds_left(job), 1) if job.is_active else 0.0,
        "max_minutes": job.max_minutes,
        "max_episodes": job.max_episodes,
        "warm_start": job.warm_start,
        "stop_requested": job.stop_requested_at is not None,
        "stopped_by": job.stopped_by,
        "best_iteration": job.best_iteration,
        "curve": job.curve,
        "trajectories_iteration": (job.trajectories or {}).get("iteration"),
        "camera_iteration": job.camera_iteration if job.camera_film else None,
        "log_tail": job.log_tail,
        "model_id": job.model_id,
        "submission_id": job.submission_id,
        "submit_note": job.submit_note,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


# ------------------------------------------------------------------------------------ the engine's callbacks
def training_closed(job_ids: Collection[int]) -> dict[int, str]:
    statuses = dict(TrainingJob.objects.filter(pk__in=job_ids).values_list("pk", "status"))
    return {pk: f"not trained: the job is {statuses[pk]}" if pk in statuses else "not trained: the job was deleted"
            for pk in job_ids if statuses.get(pk) in (*FINAL, None)}


def training_sandbox_work(job: TrainingJob) -> SandboxWork:
    """The run for the job's next attempt: resume the stored model folder if there is one, else start (or clone),
    with the budget that is left."""
    remaining = training_seconds_left(job)
    resume = job.checkpoint_iteration is not None and bool(job.stored_files)
    start = "resume" if resume else ("clone" if job.cloned_from_id else "new")
    tracks = [row.track for row in job.track_rows.select_related("track")]
    document = TrainingJobDocument(
        tracks=[TrainingTrack(name=track.slug, rows=track_sim(track).waypoints.tolist()) for track in tracks],
        direction=job.direction, vehicle=job.vehicle, reward_function_source=job.reward_function_source,
        hyperparameters=job.hyperparameters,
        # A budget spent already (e.g. the worker died in the last seconds) still exports what was stored.
        max_seconds=max(remaining, 1.0), max_episodes=job.max_episodes, seed=job.seed, best_by=job.best_by,
        # The race type's obstacles as a race of that type has them by default, on every training track.
        race_type=job.race_type, objects=race_type_objects_spec(job.race_type),
        evaluation_episodes=job.evaluation_episodes, max_episode_steps=job.max_episode_steps, start=start,
        # Only a new run imitates: a resumed one carries on from a checkpoint that holds the warm start already.
        warm_start=job.warm_start and start == "new",
    )
    archives = [ModelArchive(job.cloned_from.archive, folder="clone")] if start == "clone" else []
    files = [SandboxFile(_StoredFile(entry["name"]), f"resume/{relative}")
             for relative, entry in sorted(job.stored_files.items())] if resume else []
    wall = remaining + WALL_MARGIN_S
    return SandboxWork(job=document, archives=archives, files=files, wall_seconds=wall,
                       min_cpu_seconds=int(wall) + 60, scratch_bytes=_scratch_bytes(),
                       progress_every_s=float(getattr(settings, "PITLANE_TRAINING_PROGRESS_S", DEFAULT_PROGRESS_S)))


class _StoredFile:
    """A stored file opened only when the worker copies it (``File``'s ``open``, without holding a handle)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def open(self, mode: str = "rb") -> File:
        return default_storage.open(self.name, mode)


def _scratch_bytes() -> int:
    return int(getattr(settings, "PITLANE_TRAINING_SCRATCH_MB", DEFAULT_SCRATCH_MB)) * 1024**2


def training_mark_running(job: TrainingJob, attempt: EvaluationAttempt) -> None:
    """A worker claimed an attempt: its progress is the one that counts from now on; earlier attempts' seconds are
    frozen (each counted once)."""
    job.attempt_number = attempt.number
    job.seconds_before_attempt = job.trained_seconds
    if job.status != Status.STOPPING:
        job.status = Status.STARTING
    job.started_at = job.started_at or timezone.now()
    job.live = {"phase": "starting", "note": ""}
    job.save(update_fields=["attempt_number", "seconds_before_attempt", "status", "started_at", "live"])


def training_requeue(job: TrainingJob, note: str) -> None:
    if job.status != Status.STOPPING:
        job.status = Status.QUEUED
    job.live = {"phase": "waiting to resume", "note": note}
    job.save(update_fields=["status", "live"])


def training_fail(job: TrainingJob, reason: str) -> None:
    _finish(job, Status.FAILED, reason)


def _finish(job: TrainingJob, status: str, reason: str = "") -> None:
    job.status = status
    job.failure_reason = reason
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "failure_reason", "finished_at", "stop_requested_at"])


def training_stop_requested(job_id: int) -> bool:
    return TrainingJob.objects.filter(pk=job_id, stop_requested_at__isnull=False).exists()


def training_record_result(job: TrainingJob, attempt: EvaluationAttempt, finished: TrainingFinished) -> None:
    """The run ended with a validated model: store it through the uploads' service, then enter it in the race the
    racer chose (a refusal there is noted, the job is still done)."""
    from races.services.submissions import submission_create

    outcome = finished.outcome
    job.iterations, job.episodes, job.env_steps = outcome.iterations, outcome.episodes, outcome.env_steps
    job.best_iteration = outcome.best_iteration
    job.stopped_by = outcome.stopped_by
    model = None
    for name in (job.name, f"{job.name} (training {job.pk})"):
        try:
            with finished.archive.open("rb") as stream:
                model = model_upload(job.owner, name, stream, size=finished.archive.stat().st_size)
            break
        except RuleViolation as error:
            if "already have a model named" not in error.message:
                job.save()
                _finish(job, Status.FAILED, f"The trained model could not be stored: {error.message}")
                return
    job.model = model
    if job.submit_to_id is not None and model is not None:
        try:
            job.submission = submission_create(job.owner, job.submit_to, model)
        except RuleViolation as error:
            job.submit_note = f"Not entered in {job.submit_to.name}: {error.message}"
    job.live = dict(job.live or {}, phase="done")
    job.save()
    _finish(job, Status.DONE)


def training_record_progress(job_id: int, attempt_number: int, scratch: ScratchView) -> None:
    """Copy what the run has written to storage and record its counters (called by the worker every few seconds,
    outside any transaction). Only the current attempt's reports count; files are untrusted and checked."""
    job = TrainingJob.objects.filter(pk=job_id).first()
    if job is None or job.attempt_number != attempt_number or job.status in FINAL:
        return
    live = _json_object(scratch.read(RUN_DIR + "metrics/live.json", 64 * 1024))
    rows = _iteration_rows(scratch.read(RUN_DIR + "metrics/iterations.json", MAX_METRICS_BYTES))
    trajectories = _trajectories(scratch.read("training/trajectories.json", 2 * 1024**2))
    log_tail = (scratch.read("training/log.txt", LOG_TAIL_BYTES, tail=True) or b"").decode("utf-8", "replace")
    manifest = dict(job.stored_files)
    uploaded: list[str] = []
    last_row = rows[-1]["iteration"] if rows else 0
    checkpoint = _store_checkpoints(scratch, job, attempt_number, manifest, uploaded, last_row)
    for relative in FOLDER_FILES:
        _store_file(scratch, job, attempt_number, relative, manifest, uploaded)
    for iteration in range(1, last_row + 1):  # each committed iteration's simtrace: complete, and never rewritten
        relative = f"{SIMTRACES}{iteration - 1}-iteration.csv"
        if relative not in manifest:
            _store_file(scratch, job, attempt_number, relative, manifest, uploaded)
    film = _store_newer_film(scratch, job, attempt_number)
    if film is not None:
        uploaded.append(film[1])
    replaced = []
    with transaction.atomic():
        current = TrainingJob.objects.select_for_update().get(pk=job_id)
        if current.attempt_number != attempt_number or current.status in FINAL:
            replaced = uploaded  # a newer attempt owns the job: what this one uploaded is not kept
        else:
            replaced = [entry["name"] for relative, entry in current.stored_files.items()
                        if manifest.get(relative, {}).get("name") != entry["name"]]
            current.stored_files = manifest
            if checkpoint is not None:
                current.checkpoint_iteration = checkpoint
            if live is not None:
                elapsed = _number(live.get("elapsed_seconds"))
                if elapsed is not None:
                    current.trained_seconds = current.seconds_before_attempt + elapsed
                # Untrusted (the sandbox wrote it): known keys of plain types, texts cut short.
                current.live = {key: value[:80] if isinstance(value, str) else value
                                for key in ("phase", "update", "iteration", "iteration_episodes_planned",
                                            "iteration_episodes_finished", "iteration_env_steps", "seconds_left")
                                if isinstance(value := live.get(key), str | int | float)} | {"note": ""}
                if current.status == Status.STARTING:
                    current.status = Status.TRAINING
            if rows:
                current.curve = rows
                current.iterations = rows[-1]["iteration"]
                current.episodes = int(rows[-1]["episodes"])
                current.env_steps = int(rows[-1]["env_steps"])
                best = [row["iteration"] for row in rows if row.get("is_best")]
                current.best_iteration = best[-1] if best else None
            if trajectories is not None:
                current.trajectories = trajectories
            if film is not None and (current.camera_iteration is None or film[0] > current.camera_iteration):
                if current.camera_film:
                    replaced.append(current.camera_film.name)
                current.camera_iteration, current.camera_film.name = film
            current.log_tail = log_tail
            current.save()
    for name in replaced:
        transaction.on_commit(lambda name=name: _delete_quietly(name))


def _store_newer_film(scratch: ScratchView, job: TrainingJob, attempt_number: int) -> tuple[int, str] | None:
    """The run's latest camera film (``training/camera-NNNNN.npy``), if newer than the stored one: checked, made
    into a GIF here (never serve what the sandbox wrote) and stored. Returns (iteration, storage name)."""
    numbers = [number for number in map(film_iteration, scratch.listdir("training")) if number is not None]
    # Iteration 0 is a film too: the starting weights' (warm start or clone) evaluation, shown before iteration 1.
    if not numbers or (job.camera_iteration is not None and max(numbers) <= job.camera_iteration):
        return None
    iteration = max(numbers)
    raw = scratch.read(f"training/{film_file_name(iteration)}", MAX_FILM_BYTES)
    try:
        gif = film_gif(load_film(raw or b""))
    except FilmError as error:
        log.warning("Training %s: camera film of iteration %s refused: %s", job.pk, iteration, error)
        return None
    name = default_storage.save(f"training/{job.pk}/{attempt_number}/camera-{iteration:05d}.gif", ContentFile(gif))
    return iteration, name


def _store_checkpoints(scratch: ScratchView, job: TrainingJob, attempt_number: int, manifest: dict,
                       uploaded: list[str], last_row: int) -> int | None:
    """Store the latest complete checkpoint whose metrics row is out too (so a resume finds its metrics), and the
    best one; drop other stored checkpoints. Returns the latest stored iteration (None: none yet)."""
    iterations = []
    for name in scratch.listdir(RUN_DIR + CHECKPOINTS):
        number = name.removeprefix("iteration-")
        if name.startswith("iteration-") and number.isdigit():
            iterations.append(int(number))
    candidates = sorted(i for i in iterations if i <= last_row)
    if not candidates:
        return None
    latest = candidates[-1]
    state = _json_object(scratch.read(f"{RUN_DIR}{CHECKPOINTS}iteration-{latest:05d}/state.json", 1024**2)) or {}
    best = (state.get("state") or {}).get("best_iteration")
    keep = {latest} | ({best} if isinstance(best, int) and best in iterations else set())
    stored_latest = None
    for iteration in sorted(keep):
        folder = f"{CHECKPOINTS}iteration-{iteration:05d}/"
        ok = all(_store_file(scratch, job, attempt_number, folder + file, manifest, uploaded, required=True)
                 for file in CHECKPOINT_FILES if file != "optimizer.safetensors" or iteration > 0)
        if ok and iteration == latest:
            stored_latest = latest
    kept = {f"{CHECKPOINTS}iteration-{i:05d}/" for i in keep}
    for relative in [r for r in manifest if r.startswith(CHECKPOINTS)]:
        if not any(relative.startswith(prefix) for prefix in kept):
            del manifest[relative]
    return stored_latest


def _store_file(scratch: ScratchView, job: TrainingJob, attempt_number: int, relative: str, manifest: dict,
                uploaded: list[str], required: bool = False) -> bool:
    """Copy one file of the run's model folder to storage unless it is stored unchanged already."""
    info = scratch.stat(RUN_DIR + relative)
    if info is None:
        return not required
    stamp = [info.st_size, info.st_mtime_ns]
    if manifest.get(relative, {}).get("stamp") == stamp:
        return True
    with tempfile.NamedTemporaryFile(prefix="pitlane-training-") as copy:
        if not scratch.copy(RUN_DIR + relative, Path(copy.name), MAX_FILE_BYTES):
            return False
        with open(copy.name, "rb") as stream:
            name = default_storage.save(f"training/{job.pk}/{attempt_number}/{relative}", File(stream))
    uploaded.append(name)
    manifest[relative] = {"name": name, "stamp": stamp}
    return True


def _delete_quietly(name: str) -> None:
    try:
        default_storage.delete(name)
    except Exception as error:  # a leftover file costs storage only
        log.warning("Could not delete the stored training file %s: %s", name, error)


def training_delete_files(job: TrainingJob) -> None:
    """The job's stored folder (checkpoints, metrics) goes; the model it made stays a model like any other."""
    for entry in job.stored_files.values():
        _delete_quietly(entry["name"])
    if job.camera_film:
        _delete_quietly(job.camera_film.name)


def training_logs_archive(job: TrainingJob, stream: BinaryIO) -> None:
    """Write to ``stream`` a ``.tar.gz`` of the job's model folder as stored, without checkpoints: the training
    configuration, reward function, metadata, hyperparameters, metrics, reward graph and the training simtraces, a
    folder ``deepracer-utils`` reads (``DeepRacerLog(model_folder=...)``)."""
    with tarfile.open(fileobj=stream, mode="w:gz") as archive:
        for relative, entry in sorted(job.stored_files.items()):
            if not (relative in FOLDER_FILES or relative.startswith(SIMTRACES)):  # checkpoints stay out
                continue
            try:
                with default_storage.open(entry["name"], "rb") as source:
                    data = source.read()
            except OSError:
                continue  # a file lost from storage leaves a gap, not a broken download
            info = tarfile.TarInfo(f"{job.name}/{relative}")
            info.size, info.mtime = len(data), int(job.created_at.timestamp())
            archive.addfile(info, io.BytesIO(data))


def training_stored_file(job: TrainingJob, relative: str) -> bytes | None:
    """A file of the job's stored folder (e.g. the reward graph), or None."""
    entry = job.stored_files.get(relative)
    return None if entry is None else _read_stored(entry["name"])


def _read_stored(name: str) -> bytes | None:
    """A stored file's bytes, or None if storage has lost it."""
    try:
        with default_storage.open(name, "rb") as stream:
            return stream.read()
    except OSError:
        return None


def training_camera_gif(job: TrainingJob) -> bytes | None:
    """The latest iteration's camera film as an animated GIF, or None (no iteration with evaluation episodes yet)."""
    return _read_stored(job.camera_film.name) if job.camera_film else None


# -------------------------------------------------------------------------------- reading untrusted run files
def _json_object(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=lambda _: None)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _iteration_rows(raw: bytes | None) -> list[dict[str, Any]]:
    """The reward graph's values per iteration (``metrics/iterations.json``), keeping well-formed rows only."""
    document = _json_object(raw) or {}
    rows = []
    for row in document.get("iterations", []) if isinstance(document.get("iterations"), list) else []:
        if not isinstance(row, dict) or not isinstance(row.get("iteration"), int):
            continue
        clean = {key: _number(row.get(key)) for key in CURVE_KEYS}
        if any(clean[key] is None for key in ("iteration", "episodes", "env_steps", "mean_reward", "mean_progress")):
            continue
        clean["iteration"], clean["episodes"] = int(row["iteration"]), int(clean["episodes"])
        clean["env_steps"] = int(clean["env_steps"])
        clean["is_best"] = row.get("is_best") is True
        rows.append(clean)
    rows.sort(key=lambda row: row["iteration"])
    return rows


def _trajectories(raw: bytes | None) -> dict[str, Any] | None:
    document = _json_object(raw)
    if document is None or not isinstance(document.get("iteration"), int):
        return None
    episodes = []
    for episode in document.get("episodes", [])[:20] if isinstance(document.get("episodes"), list) else []:
        if not isinstance(episode, dict):
            continue
        columns = [episode.get(key) for key in ("x", "y", "speed")]
        if not all(isinstance(column, list) for column in columns) or len({len(c) for c in columns}) != 1:
            continue
        values = [[_number(v) for v in column[:2000]] for column in columns]
        if any(v is None for column in values for v in column):
            continue
        episodes.append(dict(zip(("x", "y", "speed"), values, strict=True)))
    return {"iteration": document["iteration"], "episodes": episodes}
