"""Tracks by name: the built-in layouts, a `.npy` route file by its path, then the route files of a tracks folder.

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


def is_route_file(name: str) -> bool:
    """A track given as a path to its `.npy` route file (e.g. one downloaded from a league's tracks page)."""
    return name.endswith(".npy")


def track_argument(name: str) -> str:
    """A track as a training run records it: a route file by its absolute path (resuming from another folder
    still finds it), a name as it is."""
    return str(Path(name).expanduser().resolve()) if is_route_file(name) else name


def get_track(name: str, tracks_dir: str | os.PathLike | None = None) -> Track:
    """A built-in track by name, a route file by its path (`path/to/file.npy`, named after the file), else
    `<tracks_dir>/<name>.npy` (default: $PITLANE_TRACKS_DIR).

    Tracks are memoised (they are immutable), so repeated calls return the same object."""
    if name in BUILTIN_TRACKS:
        return build_builtin_track(name)
    if is_route_file(name):
        path = Path(name).expanduser()
        if not path.is_file():
            raise KeyError(f"no track file {name!r}: give the path of a DeepRacer .npy route file")
        return _load_file(path, path.stem)
    folder = Path(tracks_dir) if tracks_dir is not None else default_tracks_dir()
    if folder is not None and name and "/" not in name and "\\" not in name and not name.startswith("."):
        path = folder / f"{name}.npy"
        if path.is_file():
            return _load_file(path, name)
    raise KeyError(f"unknown track {name!r}; available: {', '.join(available_tracks(folder))} "
                   "(or give the path of a .npy route file)")


def _load_file(path: Path, name: str) -> Track:
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    if key not in _FILE_CACHE:
        _FILE_CACHE[key] = Track.from_npy(path, name=name)
    return _FILE_CACHE[key]


def load_tracks(names: Iterable[str], tracks_dir: str | os.PathLike | None = None) -> list[Track]:
    return [get_track(n, tracks_dir) for n in names]
