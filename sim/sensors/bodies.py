"""What the sensors can see besides the floor: upright oriented boxes (obstacle boxes, other cars).

Sensors accept ``objects`` as either ``None`` (an empty track), a :class:`Bodies`, or any object with
``centres`` (K, 2) and ``yaws`` (K,) arrays — such as ``sim.world.objects.StaticBoxes`` — whose missing
``lengths`` / ``widths`` / ``heights`` default to the simapp's box obstacle (0.5 m along its yaw, 0.4 m
across; height below). Bodies are shared by every car in the batch; ``owners`` marks a body that *is*
one of the cars (head-to-head), so that car does not see itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.world.car import CarSpec
from sim.world.objects import BOX_LENGTH, BOX_WIDTH

# The simapp's box obstacle height is not in the sources we studied; 0.3 m is taller than the camera
# (0.13 m) and the lidar plane (0.18 m), which is what matters: both sensors see boxes.
BOX_HEIGHT = 0.3
BOX_SHADE = 196  # light cardboard-grey sides
# A car's visible body: the simapp's collision footprint, up to the top of the lidar housing (the lidar
# scan plane is 0.185 m high), so cars show in each other's cameras and lidars. Height is our estimate.
CAR_HEIGHT = 0.2
CAR_SHADE = 70  # dark car bodies


@dataclass(frozen=True)
class Bodies:
    """K upright boxes standing on the floor: footprint centre, yaw, length (along yaw), width, height."""

    centres: np.ndarray  # (K, 2) float64
    yaws: np.ndarray  # (K,)
    lengths: np.ndarray  # (K,)
    widths: np.ndarray  # (K,)
    heights: np.ndarray  # (K,)
    shades: np.ndarray = field(default=None)  # (K,) uint8 base grey of the sides; None -> BOX_SHADE
    owners: np.ndarray = field(default=None)  # (K,) int, index of the car this body is, -1 for none

    def __post_init__(self) -> None:
        centres = np.asarray(self.centres, dtype=np.float64).reshape(-1, 2)
        k = len(centres)
        object.__setattr__(self, "centres", centres)
        for name in ("yaws", "lengths", "widths", "heights"):
            value = np.broadcast_to(np.asarray(getattr(self, name), dtype=np.float64), (k,)).copy()
            if not np.all(np.isfinite(value)):
                raise ValueError(f"object {name} must be finite")
            object.__setattr__(self, name, value)
        if np.any(self.lengths <= 0) or np.any(self.widths <= 0) or np.any(self.heights <= 0):
            raise ValueError("object lengths, widths and heights must be positive")
        shades = BOX_SHADE if self.shades is None else self.shades
        object.__setattr__(self, "shades", np.broadcast_to(np.asarray(shades, dtype=np.uint8), (k,)).copy())
        owners = -1 if self.owners is None else self.owners
        object.__setattr__(self, "owners", np.broadcast_to(np.asarray(owners, dtype=np.int64), (k,)).copy())

    @classmethod
    def cars(cls, centres: np.ndarray, yaws: np.ndarray, owners: np.ndarray | None = None,
             spec: CarSpec | None = None) -> Bodies:
        """Car bodies at the given origins; pass ``owners=np.arange(N)`` when they are the observing cars."""
        spec = spec or CarSpec()
        return cls(centres, yaws, spec.footprint_length, spec.footprint_width, CAR_HEIGHT, CAR_SHADE, owners)

    def concatenated(self, other: Bodies) -> Bodies:
        """These bodies followed by `other`'s (e.g. boxes plus the other cars)."""
        return Bodies(*(np.concatenate([getattr(self, f), getattr(other, f)]) for f in (
            "centres", "yaws", "lengths", "widths", "heights", "shades", "owners")))

    def __len__(self) -> int:
        return len(self.centres)

    def corners(self) -> np.ndarray:
        """(K, 4, 2) footprint corners, counter-clockwise."""
        half = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], dtype=np.float64)
        local = half[None] * np.stack([self.lengths, self.widths], axis=1)[:, None, :] / 2
        cos, sin = np.cos(self.yaws)[:, None], np.sin(self.yaws)[:, None]
        x = local[..., 0] * cos - local[..., 1] * sin
        y = local[..., 0] * sin + local[..., 1] * cos
        return self.centres[:, None, :] + np.stack([x, y], axis=-1)


EMPTY = Bodies(np.zeros((0, 2)), np.zeros(0), np.ones(0), np.ones(0), np.ones(0))


def as_bodies(objects: object) -> Bodies:
    """Normalise the ``objects`` argument of ``Sensor.observe`` (see the module docstring)."""
    if objects is None:
        return EMPTY
    if isinstance(objects, Bodies):
        return objects
    if not (hasattr(objects, "centres") and hasattr(objects, "yaws")):
        raise TypeError(
            "objects must be None, sim.sensors.Bodies or have 'centres' and 'yaws' arrays, "
            f"got {type(objects).__name__}"
        )
    return Bodies(
        centres=objects.centres,
        yaws=objects.yaws,
        lengths=getattr(objects, "lengths", BOX_LENGTH),
        widths=getattr(objects, "widths", BOX_WIDTH),
        heights=getattr(objects, "heights", BOX_HEIGHT),
        shades=getattr(objects, "shades", None),
        owners=getattr(objects, "owners", None),
    )
