"""Tracks: built-in ones from sim, imported DeepRacer ``.npy`` route files, admin edits and sim objects
(previews are ``pictures``')."""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils.text import slugify

from races.models import Race, Track
from races.services.errors import RuleViolation
from sim.io.render import track_preview_png
from sim.race.ideal_lap import ideal_lap_time
from sim.world.builtin_tracks import BUILTIN_TRACKS, build_builtin_track
from sim.world.track import Track as SimTrack

MAX_ROUTE_FILE_BYTES = 2 * 1024 * 1024
NPY_MAGIC = b"\x93NUMPY"  # the first bytes of every file numpy.save writes
ROUTE_FILE_FORMAT = (
    "A track file is a DeepRacer route file: a NumPy array saved with numpy.save (.npy) of N rows by 6 numbers "
    "(centre x, centre y, inner x, inner y, outer x, outer y, in metres), its last row equal to the first."
)


def track_install_builtins() -> list[Track]:
    """Create or refresh a Track row for every built-in track (idempotent)."""
    tracks = []
    for name, spec in BUILTIN_TRACKS.items():
        sim_track = build_builtin_track(name)
        track, _ = Track.objects.update_or_create(
            slug=name,
            defaults={
                "title": spec.title,
                "description": spec.description,
                "source": Track.Source.BUILTIN,
                **_geometry_fields(sim_track),
            },
        )
        tracks.append(track)
    return tracks


def track_parse_route(data: bytes, name: str = "imported") -> SimTrack:
    """A DeepRacer ``.npy`` route file as a simulator track, or a RuleViolation saying what is wrong with it."""
    if len(data) > MAX_ROUTE_FILE_BYTES:
        raise RuleViolation("Route files are at most 2 MiB.")
    if not data.startswith(NPY_MAGIC):
        # Anything else reaches numpy's pickle fallback, whose "allow_pickle=" advice is no help to an admin.
        raise RuleViolation(f"Not a valid DeepRacer route file: this is not a .npy file. {ROUTE_FILE_FORMAT}")
    try:
        rows = np.load(io.BytesIO(data), allow_pickle=False)
        return SimTrack.from_array(rows, name=name)
    except (ValueError, OSError, EOFError) as error:
        reason = str(error).rstrip(".")
        raise RuleViolation(f"Not a valid DeepRacer route file: {reason}. {ROUTE_FILE_FORMAT}") from None


def track_import(title: str, route_file: io.BufferedIOBase | bytes, slug: str = "", description: str = "",
                 directions: str = "both") -> Track:
    """Import a DeepRacer ``.npy`` route file; refuses anything that is not a valid closed track."""
    data = route_file if isinstance(route_file, bytes) else route_file.read(MAX_ROUTE_FILE_BYTES + 1)
    title = (title or "").strip()
    slug = slugify(slug or title)[:64]
    if not title or not slug:
        raise RuleViolation("Give the track a title.")
    if Track.objects.filter(slug=slug).exists():
        raise RuleViolation(f"A track named '{slug}' exists already.")
    sim_track = track_parse_route(data, name=slug)
    if directions not in Track.Directions.values:
        raise RuleViolation("Directions must be both, counterclockwise or clockwise.")
    track = Track(slug=slug, title=title, description=description, source=Track.Source.IMPORTED,
                  directions=directions, **_geometry_fields(sim_track))
    track.route_file.save(f"{slug}.npy", ContentFile(data), save=False)
    track.preview.save(f"{slug}.png", ContentFile(track_preview_png(sim_track)), save=False)
    track.save()
    return track


def track_update(track: Track) -> Track:
    """Save an admin's edit of a track's title, description or directions (geometry and files never change:
    a new route is a new track)."""
    if track.directions not in Track.Directions.values:
        raise RuleViolation("Directions must be both, counterclockwise or clockwise.")
    track.save()
    return track


def track_sim(track: Track, direction: str = Race.Direction.COUNTERCLOCKWISE) -> SimTrack:
    """The simulator's track for a Track row, driven in ``direction``."""
    return _sim_track(track.slug, track.source, track.route_file.name or "").with_direction(direction)


def track_route_npy(track: Track) -> bytes:
    """The track's DeepRacer ``.npy`` route file, to train on (``python -m sim train --track <file>.npy``): an imported
    track's file as uploaded, a built-in track's rows as the simulator builds them."""
    if track.source == Track.Source.IMPORTED and track.route_file:
        with track.route_file.open("rb") as stream:
            return stream.read()
    buffer = io.BytesIO()
    np.save(buffer, _sim_track(track.slug, track.source, track.route_file.name or "").waypoints)
    return buffer.getvalue()


def track_ideal_lap_ms(track: Track, direction: str = Race.Direction.COUNTERCLOCKWISE) -> int | None:
    """The track's ideal lap time in ``direction`` (``sim.race.ideal_lap``: racing line and fastest speed profile
    of our car), in ms; None where the track is too narrow for the figure. About half a second of numerics, so it
    is computed once per track and direction: kept in this process and in the shared cache."""
    return _ideal_lap_ms(track.slug, track.source, track.route_file.name or "", direction)


# A track's geometry never changes (a new route is a new track), so neither does its ideal lap.
@lru_cache(maxsize=128)
def _ideal_lap_ms(slug: str, source: str, route_name: str, direction: str) -> int | None:
    key = f"track-ideal-lap:v1:{slug}:{source}:{route_name}:{direction}"
    cached = cache.get(key)
    if cached is None:
        try:
            cached = round(ideal_lap_time(_sim_track(slug, source, route_name).with_direction(direction)).lap_time
                           * 1000)
        except ValueError:
            cached = 0  # too narrow for the figure: nothing to show (0, since None means "not cached")
        cache.set(key, cached, timeout=None)
    return cached or None


def track_outline(track: Track, direction: str = Race.Direction.COUNTERCLOCKWISE) -> dict[str, list[list[float]]]:
    """Centre line and borders in driving order (cm precision) for the replay canvas."""
    sim_track = track_sim(track, direction)
    return {
        name: np.round(getattr(sim_track, name), 2).tolist() for name in ("center", "inner", "outer")
    }


# functools, not cachetools: thread-safe as it is, and the key (slug, source, route file) names one immutable
# geometry, so a bounded LRU without expiry is all this needs.
@lru_cache(maxsize=64)
def _sim_track(slug: str, source: str, route_name: str) -> SimTrack:
    if source == Track.Source.BUILTIN:
        return build_builtin_track(slug)
    with default_storage.open(route_name, "rb") as stream:
        rows = np.load(io.BytesIO(stream.read()), allow_pickle=False)
    return SimTrack.from_array(rows, name=slug)


def _geometry_fields(sim_track: SimTrack) -> dict:
    return {
        "length_m": round(float(sim_track.length), 3),
        "width_m": round(float(np.mean(sim_track.widths)), 3),
        "waypoint_count": int(sim_track.waypoints.shape[0]),
    }
