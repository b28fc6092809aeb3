"""The sensor interface shared by cameras and lidars, and validation of the car poses they receive."""

from __future__ import annotations

from typing import Protocol

import numpy as np
from gymnasium import spaces


class Sensor(Protocol):
    name: str
    observation_space: spaces.Box

    def observe(self, track, x: np.ndarray, y: np.ndarray, yaw: np.ndarray, objects: object = None) -> np.ndarray:
        """(N, *observation_space.shape) observations of N cars whose origins are at (x, y) heading yaw."""
        ...


def as_poses(x: np.ndarray, y: np.ndarray, yaw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Car poses as three finite float64 (N,) arrays; a clear ValueError otherwise."""
    if (type(x) is np.ndarray and type(y) is np.ndarray and type(yaw) is np.ndarray and x.ndim == 1
            and x.dtype == y.dtype == yaw.dtype == np.float64 and x.shape == y.shape == yaw.shape):
        # The env's own state arrays, every step: the same checks without the conversions.
        if not (np.isfinite(x).all() and np.isfinite(y).all() and np.isfinite(yaw).all()):
            raise ValueError("car poses must be finite")
        return x, y, yaw
    arrays = [np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in (x, y, yaw)]
    if any(a.ndim != 1 for a in arrays) or len({a.shape for a in arrays}) != 1:
        raise ValueError(f"x, y and yaw must be (N,) arrays of the same length, got shapes {[a.shape for a in arrays]}")
    if not all(np.all(np.isfinite(a)) for a in arrays):
        raise ValueError("car poses must be finite")
    return arrays[0], arrays[1], arrays[2]
