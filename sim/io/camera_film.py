"""What a car's camera saw during one episode: a "film" of its frames, saved as ``.npy`` and shown as a GIF.

The trainer records the first evaluation car's camera (``FilmRecorder``); the training runner saves the film in the
sandbox's scratch and the web side, which must not trust that file, loads it with ``load_film`` (a plain uint8
array, no pickle, bounded shape) and encodes the GIF itself (``film_gif``). Every car has one camera
(``sim.world.vehicle``); a stereo car's two lenses are shown side by side, left lens first.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.world.vehicle import CAMERA_SENSORS

FILM_EVERY_STEPS = 2  # 7.5 frames/s of the 15 Hz camera: smooth enough to see the track, half the size
MAX_FILM_FRAMES = 150  # 20 s at 7.5 frames/s: a lap of a fast car, the start of a slow one
MAX_FRAME_HEIGHT, MAX_FRAME_WIDTH = 120, 2 * 160  # one lens is 160 x 120; stereo doubles the width
STEP_SECONDS = 1 / 15


def film_file_name(iteration: int) -> str:
    """The film of an iteration in a run's folder (the trainer's side writes it, the web side looks for it)."""
    return f"camera-{iteration:05d}.npy"


def film_iteration(file_name: str) -> int | None:
    """The iteration a ``film_file_name`` names; None for any other name."""
    number = file_name.removeprefix("camera-").removesuffix(".npy")
    if not number.isdigit() or file_name != film_file_name(int(number)):
        return None
    return int(number)


class FilmError(ValueError):
    """A film file is not a film (wrong format, type or size)."""


def camera_frames(observation: Any) -> np.ndarray | None:
    """The camera image(s) of a batch of observations as (N, H, W) uint8, lenses side by side; None if there is
    no camera image in it (a lidar's reading alone)."""
    if isinstance(observation, dict):
        observation = next((observation[name] for name in CAMERA_SENSORS if name in observation), None)
    if observation is None or not isinstance(observation, np.ndarray) or observation.dtype != np.uint8 \
            or observation.ndim != 4:
        return None
    n, height, width, lenses = observation.shape
    return observation.transpose(0, 1, 3, 2).reshape(n, height, lenses * width) if lenses > 1 \
        else observation[..., 0]


@dataclass
class FilmRecorder:
    """Collects one car's camera frames, every ``every_steps`` steps, up to ``max_frames`` (the episode's start)."""

    car: int = 0
    every_steps: int = FILM_EVERY_STEPS
    max_frames: int = MAX_FILM_FRAMES
    frames: list[np.ndarray] = field(default_factory=list)
    _steps: int = 0

    def reset(self) -> None:
        self.frames, self._steps = [], 0

    def observe(self, observation: Any) -> None:
        """Called with the batch's observation before each step the car drives."""
        if self._steps % self.every_steps == 0 and len(self.frames) < self.max_frames:
            frames = camera_frames(observation)
            if frames is not None:
                self.frames.append(frames[self.car].copy())
        self._steps += 1

    def film(self) -> np.ndarray | None:
        """(frames, H, W) uint8, or None if the car drove no step."""
        return np.stack(self.frames) if self.frames else None


def save_film(film: np.ndarray, path: Path) -> None:
    """Write atomically (a reader polling the folder never sees half a file)."""
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("wb") as stream:
        np.save(stream, film, allow_pickle=False)
    os.replace(partial, path)


def load_film(data: bytes) -> np.ndarray:
    """A film written by untrusted code, checked: uint8, (frames, H, W) within the camera's sizes."""
    try:
        film = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise FilmError(f"not a film: {error}") from None
    if not isinstance(film, np.ndarray) or film.dtype != np.uint8 or film.ndim != 3:
        raise FilmError("a film is a (frames, height, width) uint8 array")
    frames, height, width = film.shape
    if not (1 <= frames <= MAX_FILM_FRAMES and 1 <= height <= MAX_FRAME_HEIGHT and 1 <= width <= MAX_FRAME_WIDTH):
        raise FilmError(f"a film has 1-{MAX_FILM_FRAMES} frames of at most {MAX_FRAME_WIDTH}x{MAX_FRAME_HEIGHT}, "
                        f"not {frames} of {width}x{height}")
    return film


def film_gif(film: np.ndarray, every_steps: int = FILM_EVERY_STEPS) -> bytes:
    """An animated GIF of the film at the speed the car drove it, looping, at the camera's own pixels (a page scales
    it up without smoothing)."""
    from PIL import Image

    frames = [Image.fromarray(frame) for frame in film]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], loop=0,
                   duration=round(1000 * every_steps * STEP_SECONDS), optimize=False)
    return out.getvalue()
