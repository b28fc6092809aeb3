"""PNG pictures and their caches: track previews (kept in storage with the track), the race page's map with
its obstacle boxes (shared cache, keyed on the layout), run and match trajectories (kept in storage, rendered
on first request). Drawing itself is ``sim.io.render``'s."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from races.models import BracketMatch, ModelEvaluation, Race, RacerModel, Run, Submission, Track, TrainingJob
from races.services.model_evaluations import model_evaluation_race
from races.services.presenters import bracket_match_title, racer_name
from races.services.race_settings import race_box_corners, race_objects_spec
from races.services.tracks import track_sim
from sim.io.render import Trajectory, render_track_png, track_preview_png

RACE_PICTURE_TIMEOUT_S = 24 * 3600
TRAJECTORY_SIZE = (960, 640)
CAR_COLOURS = ((255, 90, 31), (56, 189, 248))  # car A orange (as a solo run's car), car B sky blue


def track_preview(track: Track) -> bytes:
    """The PNG preview, rendered once per track and kept in storage (``Track.preview``)."""
    if track.preview and track.preview.storage.exists(track.preview.name):
        with track.preview.open("rb") as stream:
            return stream.read()
    png = track_preview_png(track_sim(track))
    track.preview.save(f"{track.slug}.png", ContentFile(png), save=False)
    Track.objects.filter(pk=track.pk).update(preview=track.preview.name)
    return png


def race_track_picture(race: Race) -> bytes:
    """The race page's map: the track in the race's direction with its obstacle boxes where every run meets
    them. A plain counterclockwise race shows the track's stored preview; other pictures are rendered once per
    layout (the key changes with the track, direction and boxes, so an edited race never shows a stale one)."""
    spec = race_objects_spec(race)
    has_boxes = spec is not None and spec["kind"] == "boxes"
    if race.direction == Race.Direction.COUNTERCLOCKWISE and not has_boxes:
        return track_preview(race.track)
    layout = json.dumps([race.track.slug, race.direction, spec if has_boxes else None], sort_keys=True)
    key = f"race-picture:{hashlib.sha256(layout.encode()).hexdigest()}"
    png = cache.get(key)
    if png is None:  # boxes are built from the spec only when the picture is drawn
        png = track_preview_png(track_sim(race.track, race.direction), boxes=race_box_corners(race))
        cache.set(key, png, timeout=RACE_PICTURE_TIMEOUT_S)
    return png


def model_reward_graph_png(model: RacerModel, contents: dict) -> bytes | None:
    """The model's reward graph (the console's curves), drawn by ``sim.learn.reward_graph`` from the checked numbers
    of ``racer_models.model_contents``; cached per archive (an archive never changes). None without metrics."""
    graph = contents.get("reward_graph")
    if not graph:
        return None
    key = f"reward-graph:v1:{model.sha256}"
    png = cache.get(key)
    if png is None:
        from matplotlib import pyplot as plt

        from sim.learn.reward_graph import reward_graph_figure

        figure = reward_graph_figure(graph["iterations"], graph["episodes"], graph["best_iteration"],
                                     title=f"Reward graph — {model.name}")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        plt.close(figure)
        png = buffer.getvalue()
        cache.set(key, png, timeout=RACE_PICTURE_TIMEOUT_S)
    return png


def _run_trajectory_name(submission: Submission) -> str:
    return f"trajectories/{submission.pk}.png"


def run_trajectory_png(submission: Submission) -> bytes | None:
    """The run's path over the track, coloured by speed, rendered on first request and cached in storage;
    None before a run exists."""
    run = Run.objects.filter(submission=submission).first()
    if run is None or not run.trace.get("x"):
        return None
    name = _run_trajectory_name(submission)
    if default_storage.exists(name):
        with default_storage.open(name, "rb") as stream:
            return stream.read()
    race = submission.race
    track = track_sim(race.track, race.direction)
    xy = np.column_stack([run.trace["x"], run.trace["y"]])
    buffer = io.BytesIO()
    render_track_png(track, buffer, [Trajectory(xy, np.asarray(run.trace["speed"]), submission.model.name)],
                     size=TRAJECTORY_SIZE, title=f"{race.name} — {submission.model.name}",
                     boxes=race_box_corners(race))
    default_storage.save(name, ContentFile(buffer.getvalue()))
    return buffer.getvalue()


def model_evaluation_trajectory_png(evaluation: ModelEvaluation) -> bytes | None:
    """The evaluation's path over the track, coloured by speed, rendered on first request and kept in storage;
    None until it is done."""
    trace = evaluation.trace or {}
    if evaluation.status != ModelEvaluation.Status.SCORED or not trace.get("x"):
        return None
    name = f"trajectories/evaluation-{evaluation.pk}.png"
    if default_storage.exists(name):
        with default_storage.open(name, "rb") as stream:
            return stream.read()
    race = model_evaluation_race(evaluation)
    buffer = io.BytesIO()
    render_track_png(track_sim(race.track, race.direction), buffer,
                     [Trajectory(np.column_stack([trace["x"], trace["y"]]), np.asarray(trace["speed"]),
                                 evaluation.model.name)],
                     size=TRAJECTORY_SIZE, title=f"{evaluation.model.name} on {evaluation.track.title}",
                     boxes=race_box_corners(race))
    default_storage.save(name, ContentFile(buffer.getvalue()))
    return buffer.getvalue()


def run_trajectory_png_delete(submission: Submission) -> None:
    """Forget the stored picture of the submission's run (its run is being discarded)."""
    name = _run_trajectory_name(submission)
    if default_storage.exists(name):
        default_storage.delete(name)


def bracket_match_trajectory_png(match: BracketMatch) -> bytes | None:
    """Both cars' paths over the track (car A orange, car B blue), rendered once per result and kept in
    storage; None before the match is raced."""
    cars = (match.result or {}).get("cars")
    if not cars or not all(car.get("trace", {}).get("x") for car in cars):
        return None
    name = f"trajectories/match-{match.pk}-{match.result.get('attempt') or 0}.png"
    if default_storage.exists(name):
        with default_storage.open(name, "rb") as stream:
            return stream.read()
    race = match.race
    paths = []
    for car, colour, (user, seed) in zip(cars, CAR_COLOURS, ((match.racer_a, match.seed_a),
                                                             (match.racer_b, match.seed_b)), strict=True):
        trace = car["trace"]
        paths.append(Trajectory(np.column_stack([trace["x"], trace["y"]]), np.asarray(trace["speed"]),
                                f"#{seed} {racer_name(user)}", colour))
    buffer = io.BytesIO()
    render_track_png(track_sim(race.track, race.direction), buffer, paths, size=TRAJECTORY_SIZE,
                     title=f"{race.name} — {bracket_match_title(match)}")
    default_storage.save(name, ContentFile(buffer.getvalue()))
    return buffer.getvalue()


def training_trajectories_png(job: TrainingJob) -> bytes | None:
    """The latest evaluation episodes' paths of a training job over its main track, coloured by speed; rendered once
    per stored iteration (shared cache); None before the first iteration."""
    trajectories = job.trajectories or {}
    episodes = trajectories.get("episodes") or []
    first = job.track_rows.select_related("track").first()
    if not episodes or first is None:
        return None
    key = f"training-trajectories:{job.pk}:{trajectories.get('iteration')}:{len(episodes)}"
    png = cache.get(key)
    if png is None:
        paths = [Trajectory(np.column_stack([episode["x"], episode["y"]]), np.asarray(episode["speed"]),
                            f"evaluation {number}") for number, episode in enumerate(episodes, start=1)
                 if len(episode["x"]) >= 2]
        buffer = io.BytesIO()
        render_track_png(track_sim(first.track, job.direction), buffer, paths, size=TRAJECTORY_SIZE,
                         title=f"{job.name} — iteration {trajectories.get('iteration')}, evaluation episodes")
        png = buffer.getvalue()
        cache.set(key, png, timeout=RACE_PICTURE_TIMEOUT_S)
    return png
