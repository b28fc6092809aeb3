"""LIDAR and SECTOR_LIDAR, batched over cars (SPEC §4, research/simapp.md §3).

The simapp's lidar (``racecar.launch``, ``deepracer_stereo_cam_lidar.urdf``): 64 samples from -2.61799 to
+2.61799 rad (300°) in a frame yawed by π, so the scan is centred on the car's BACKWARD direction and the
unscanned 60° sector is straight ahead. Ray 0 points 30° left of ahead and the rays sweep
counter-clockwise (left, back, right) to 30° right of ahead. Range 0.15-12 m, Gaussian noise σ = 0.01 m.

What it sees: the scan is a horizontal plane ``HEIGHT_M`` above the floor, and the track's borders and
centre line are paint on a flat mesh (they are lines, not walls), so only 3D objects taller than that plane
— boxes, other cars — return a range; on an empty track every ray reads the maximum.

Observations, as the simapp's filters make them:
- ``LIDAR``: the 64 ranges clipped to [0.15, 1.0] (``ObservationClippingFilter(0.15, 1.0)``): anything
  at 1 m or farther reads 1.0.
- ``SECTOR_LIDAR``: 8 sectors of 8 consecutive rays, 1.0 where the sector's minimum range is < 0.5 m
  (``ObservationSectorDiscretizeFilter(8, 1, 0.5)``), else 0.0.
Noise is off by default so that observations are deterministic; ``noise_std=0.01`` with a seed matches
the simapp's sensor.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from sim.sensors.base import as_poses
from sim.sensors.bodies import Bodies, as_bodies

RAYS = 64
HALF_SPAN = 2.61799  # rad, each side of the scan centre
RAY_ANGLES = np.pi + np.linspace(-HALF_SPAN, HALF_SPAN, RAYS)  # car frame, 0 = ahead, counter-clockwise
MIN_RANGE, MAX_RANGE = 0.15, 12.0
CLIP_MAX = 1.0  # the simapp's observation clipping
MOUNT_FORWARD = 0.02913  # laser link x from the chassis (whose x is the car origin's)
HEIGHT_M = 0.16145 + 0.023249  # laser link z from the chassis + chassis z from base_link
SIMAPP_NOISE_STD = 0.01
SECTORS, SECTOR_THRESHOLD = 8, 0.5


def lidar_ranges(x: np.ndarray, y: np.ndarray, yaw: np.ndarray, bodies: Bodies) -> np.ndarray:
    """(N, 64) float64 distance from each car's laser to the nearest body along each ray (MAX_RANGE if none)."""
    n = len(x)
    ranges = np.full((n, RAYS), MAX_RANGE)
    visible = bodies.heights > HEIGHT_M
    if not visible.any():
        return ranges
    corners = bodies.corners()[visible]  # (K, 4, 2)
    owners = np.repeat(bodies.owners[visible], 4)  # (E,) owner of each edge
    starts = corners.reshape(-1, 2)
    edges = np.roll(corners, -1, axis=1).reshape(-1, 2) - starts  # (E, 2)

    ox = (x + MOUNT_FORWARD * np.cos(yaw))[:, None, None]
    oy = (y + MOUNT_FORWARD * np.sin(yaw))[:, None, None]
    angles = yaw[:, None] + RAY_ANGLES[None, :]
    dx, dy = np.cos(angles)[..., None], np.sin(angles)[..., None]  # (N, R, 1)
    ex, ey = edges[:, 0], edges[:, 1]  # (E,)
    ax, ay = starts[:, 0] - ox, starts[:, 1] - oy  # (N, 1, E)
    denominator = dx * ey - dy * ex  # (N, R, E); 0 when the ray is parallel to the edge
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (ax * ey - ay * ex) / denominator  # distance along the ray (unit direction)
        u = (ax * dy - ay * dx) / denominator  # position along the edge, 0..1
    hit = (t >= 0) & (u >= 0) & (u <= 1) & (owners[None, None, :] != np.arange(n)[:, None, None])
    nearest = np.where(hit, t, np.inf).min(axis=2)
    return np.minimum(ranges, np.maximum(nearest, MIN_RANGE))


class Lidar:
    """LIDAR: (N, 64) float32 ranges clipped to [0.15, 1.0]; ray order as in the module docstring."""

    name = "LIDAR"

    def __init__(self, noise_std: float = 0.0, seed: int | None = None) -> None:
        if noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, got {noise_std}")
        self.noise_std = noise_std
        self._rng = np.random.default_rng(seed)
        self.observation_space = spaces.Box(MIN_RANGE, CLIP_MAX, (RAYS,), np.float32)

    def ranges(self, x: np.ndarray, y: np.ndarray, yaw: np.ndarray, objects: object = None) -> np.ndarray:
        """(N, 64) raw ranges in [0.15, 12] m, with this sensor's noise."""
        x, y, yaw = as_poses(x, y, yaw)
        ranges = lidar_ranges(x, y, yaw, as_bodies(objects))
        if self.noise_std:
            ranges = np.clip(ranges + self._rng.normal(0.0, self.noise_std, ranges.shape), MIN_RANGE, MAX_RANGE)
        return ranges

    def observe(self, track, x: np.ndarray, y: np.ndarray, yaw: np.ndarray, objects: object = None) -> np.ndarray:
        return np.clip(self.ranges(x, y, yaw, objects), MIN_RANGE, CLIP_MAX).astype(np.float32)


class SectorLidar:
    """SECTOR_LIDAR: (N, 8) float32 bits, sector i = rays 8i..8i+7 (sector 0 starts 30° left of ahead)."""

    name = "SECTOR_LIDAR"

    def __init__(self, noise_std: float = 0.0, seed: int | None = None) -> None:
        self._lidar = Lidar(noise_std, seed)
        self.observation_space = spaces.Box(0.0, 1.0, (SECTORS,), np.float32)

    def observe(self, track, x: np.ndarray, y: np.ndarray, yaw: np.ndarray, objects: object = None) -> np.ndarray:
        ranges = self._lidar.ranges(x, y, yaw, objects)
        closest = ranges.reshape(len(ranges), SECTORS, RAYS // SECTORS).min(axis=2)
        return (closest < SECTOR_THRESHOLD).astype(np.float32)
