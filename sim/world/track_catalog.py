"""Tracks by name: the built-in layouts, then the `.npy` route files of a tracks folder.

Kept apart from ``sim.world.track`` (the ``Track`` class) so that the built-in layouts, which build ``Track``
objects, and the name lookup, which needs both, import in one direction."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from sim.world.builtin_tracks import BUILTIN_TRACKS, build_builtin_track
from sim.world.track import Track

TRACKS_DIR_ENV = "PITLANE_TRACKS_DIR"


def default_tracks_dir() -> Path | None:
    """Folder of extra route files: $PITLANE_TRACKS_DIR if set, else None."""
    env = os.environ.get(TRACKS_DIR_ENV)
    return Path(env) if env else None


def available_tracks(tracks_dir: str | os.PathLike | None = None) -> list[str]:
    """Built-in names first, then the `.npy` stems found in the tracks folder."""
    names = list(BUILTIN_TRACKS)
    folder = Path(tracks_dir) if tracks_dir is not None else default_tracks_dir()
    if folder is not None and folder.is_dir():
        names += sorted(p.stem for p in folder.glob("*.npy") if p.stem not in BUILTIN_TRACKS)
    return names


_FILE_CACHE: dict[tuple[str, int], Track] = {}


def get_track(name: str, tracks_dir: str | os.PathLike | None = None) -> Track:
    """A built-in track by name, else `<tracks_dir>/<name>.npy` (default: $PITLANE_TRACKS_DIR).

    Tracks are memoised (they are immutable), so repeated calls return the same object."""
    if name in BUILTIN_TRACKS:
        return build_builtin_track(name)
    folder = Path(tracks_dir) if tracks_dir is not None else default_tracks_dir()
    if folder is not None and name and "/" not in name and "\\" not in name and not name.startswith("."):
        path = folder / f"{name}.npy"
        if path.is_file():
            key = (str(path.resolve()), path.stat().st_mtime_ns)
            if key not in _FILE_CACHE:
                _FILE_CACHE[key] = Track.from_npy(path, name=name)
            return _FILE_CACHE[key]
    raise KeyError(f"unknown track {name!r}; available: {', '.join(available_tracks(folder))}")


def load_tracks(names: Iterable[str], tracks_dir: str | os.PathLike | None = None) -> list[Track]:
    return [get_track(n, tracks_dir) for n in names]
