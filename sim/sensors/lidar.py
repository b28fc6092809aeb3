"""Lidar: 64 rays over 300° facing backwards (blind 60° ahead), 0.15–12 m, clipped to [0.15, 1.0] as the
simapp's observation filter does; and the 8-sector binary variant (1 when something is closer than 0.5 m).

Like the simapp's, our lidar sees 3D objects (boxes, other cars), not the painted track borders; with no
objects on the track every ray reads the maximum.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

RAYS = 64
SPAN = np.radians(300.0)
MIN_RANGE, MAX_RANGE, CLIP_MAX = 0.15, 12.0, 1.0
SECTORS, SECTOR_THRESHOLD = 8, 0.5
# Ray directions in the car frame: centred on the backward direction (yaw pi), so the gap is ahead.
RAY_ANGLES = np.pi + np.linspace(-SPAN / 2, SPAN / 2, RAYS)
MOUNT_FORWARD = 0.02913


def ranges(x: np.ndarray, y: np.ndarray, yaw: np.ndarray, objects=None) -> np.ndarray:
    """(N, 64) distances to the nearest object along each ray (MAX_RANGE where nothing is hit)."""
    n = len(x)
    result = np.full((n, RAYS), MAX_RANGE)
    boxes = [] if objects is None else list(objects.rectangles(exclude_cars=None))
    if not boxes:
        return result
    ox = x + MOUNT_FORWARD * np.cos(yaw)
    oy = y + MOUNT_FORWARD * np.sin(yaw)
    angles = yaw[:, None] + RAY_ANGLES[None, :]
    dx, dy = np.cos(angles), np.sin(angles)
    for corners in boxes:  # few objects: a loop over objects, vectorised over cars and rays
        for a, b in zip(corners, np.roll(corners, -1, axis=0), strict=True):
            ex, ey = b[0] - a[0], b[1] - a[1]
            denominator = dx * ey - dy * ex
            with np.errstate(divide="ignore", invalid="ignore"):
                t = ((a[0] - ox)[:, None] * ey - (a[1] - oy)[:, None] * ex) / denominator
                u = ((a[0] - ox)[:, None] * dy - (a[1] - oy)[:, None] * dx) / denominator
            hit = (np.abs(denominator) > 1e-12) & (t >= 0) & (u >= 0) & (u <= 1)
            result = np.where(hit & (t < result), t, result)
    return np.clip(result, MIN_RANGE, MAX_RANGE)


class Lidar:
    name = "LIDAR"

    def __init__(self) -> None:
        self.observation_space = spaces.Box(MIN_RANGE, CLIP_MAX, (RAYS,), np.float32)

    def observe(self, track, x, y, yaw, objects=None) -> np.ndarray:
        return np.clip(ranges(x, y, yaw, objects), MIN_RANGE, CLIP_MAX).astype(np.float32)


class SectorLidar:
    name = "SECTOR_LIDAR"

    def __init__(self) -> None:
        self.observation_space = spaces.Box(0.0, 1.0, (SECTORS,), np.float32)

    def observe(self, track, x, y, yaw, objects=None) -> np.ndarray:
        closest = ranges(x, y, yaw, objects).reshape(len(x), SECTORS, RAYS // SECTORS).min(axis=2)
        return (closest < SECTOR_THRESHOLD).astype(np.float32)
