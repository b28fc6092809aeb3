"""What a racer sees of a run: status summary, lap table, trajectory picture (cached in storage)."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import numpy as np
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from races.models import Run, Submission
from races.services.races import race_objects_spec
from races.services.tracks import track_preview, track_sim
from sim.io.render import Trajectory, render_track_png, track_preview_png
from sim.race.scoring import format_lap_time
from sim.world.objects import objects_from_spec


def submission_summary(
    submission: Submission, position: int | None = None, include_trace: bool = True
) -> dict[str, Any]:
    """Status, queue position and, once scored, the lap table and score (API and live page share it)."""
    run = Run.objects.filter(submission=submission).first()
    alias = getattr(getattr(submission.user, "racer", None), "alias", submission.user.get_username())
    summary: dict[str, Any] = {
        "id": submission.pk,
        "race": submission.race.slug,
        "racer": alias,
        "model": submission.model.name,
        "sequence": submission.sequence,
        "status": submission.status,
        "queue_position": position if submission.status == Submission.Status.QUEUED else None,
        "failure_reason": submission.failure_reason,
        "submitted_at": submission.submitted_at.isoformat(),
        "started_at": submission.started_at.isoformat() if submission.started_at else None,
        "finished_at": submission.finished_at.isoformat() if submission.finished_at else None,
        "run": None,
    }
    if run is not None:
        race = submission.race
        summary["run"] = {
            "qualified": run.qualified,
            "ranking_score_ms": run.ranking_score_ms,
            "ranking_score": format_lap_time(run.ranking_score_ms),
            "score": run.score,
            "laps": [
                lap | {
                    "time": format_lap_time(lap["elapsed_time_in_milliseconds"]),
                    "penalty_s": lap["off_track_count"] * race.off_track_penalty_s
                    + lap["crash_count"] * race.collision_penalty_s,
                }
                for lap in run.laps
            ],
            "duration_s": run.duration_s,
        }
        if include_trace:
            summary["run"]["trace"] = run.trace
            summary["run"]["boxes"] = [corners.round(3).tolist() for corners in race_box_corners(race)]
    return summary


def race_box_corners(race) -> list[np.ndarray]:
    """Corners (4, 2) of the race's obstacle boxes, as every run meets them (none for other race types).
    Bot cars move, and the trace does not record them: they are not drawn."""
    spec = race_objects_spec(race)
    if spec is None or spec["kind"] != "boxes":
        return []
    return objects_from_spec(track_sim(race.track, race.direction), spec).rectangles()


def race_track_picture(race) -> bytes:
    """The race page's map: the track in the race's direction with its obstacle boxes where every run meets
    them. A plain counterclockwise race shows the track's stored preview; other pictures are rendered once per
    layout (the key changes with the track, direction and boxes, so an edited race never shows a stale one)."""
    spec = race_objects_spec(race)
    has_boxes = spec is not None and spec["kind"] == "boxes"
    if race.direction == "counterclockwise" and not has_boxes:
        return track_preview(race.track)
    layout = json.dumps([race.track.slug, race.direction, spec if has_boxes else None], sort_keys=True)
    key = f"race-picture:{hashlib.sha256(layout.encode()).hexdigest()}"
    png = cache.get(key)
    if png is None:  # boxes are built from the spec only when the picture is drawn
        png = track_preview_png(track_sim(race.track, race.direction), boxes=race_box_corners(race))
        cache.set(key, png, timeout=24 * 3600)
    return png


def _trajectory_name(submission: Submission) -> str:
    return f"trajectories/{submission.pk}.png"


def run_discard(submission: Submission) -> None:
    """Forget a submission's run before it is evaluated again: the row, its simtrace and the cached picture."""
    run = Run.objects.filter(submission=submission).first()
    if run is None:
        return
    if run.simtrace:
        run.simtrace.delete(save=False)
    if default_storage.exists(_trajectory_name(submission)):
        default_storage.delete(_trajectory_name(submission))
    run.delete()


def run_trajectory_png(submission: Submission) -> bytes | None:
    """The run's path over the track, coloured by speed, rendered on first request and cached in storage;
    None before a run exists."""
    run = Run.objects.filter(submission=submission).first()
    if run is None or not run.trace.get("x"):
        return None
    name = _trajectory_name(submission)
    if default_storage.exists(name):
        with default_storage.open(name, "rb") as stream:
            return stream.read()
    race = submission.race
    track = track_sim(race.track, race.direction)
    xy = np.column_stack([run.trace["x"], run.trace["y"]])
    buffer = io.BytesIO()
    render_track_png(track, buffer, [Trajectory(xy, np.asarray(run.trace["speed"]), submission.model.name)],
                     size=(960, 640), title=f"{race.name} — {submission.model.name}", boxes=race_box_corners(race))
    default_storage.save(name, ContentFile(buffer.getvalue()))
    return buffer.getvalue()
