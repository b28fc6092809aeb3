"""Ideal lap time of a track: a minimum-curvature racing line inside the borders plus the fastest
speed profile along it under a speed cap, a lateral-grip limit and longitudinal accel/brake limits.

This is a reference figure ("how fast could a perfect driver go with this car"), used to show racers
what is achievable and to sanity-check leaderboards. It is a flying lap (periodic speed profile).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.world.geometry import Polyline, ring_curvature
from sim.world.track import Track

# Car limits (DeepRacer): speed actions are clipped to [0.1, 4.0] m/s; the lateral grip limit and the
# longitudinal limits are those of our car model. Passed explicitly so the figure states its assumptions.
DEFAULT_MAX_SPEED = 4.0
DEFAULT_MAX_LATERAL_ACCEL = 5.0
DEFAULT_MAX_ACCEL = 3.0
DEFAULT_MAX_BRAKE = 4.0
DEFAULT_CAR_HALF_WIDTH = 0.1
_MAX_POINTS = 160  # the active-set QP is dense: O(n^3) per iteration


@dataclass(frozen=True)
class IdealLap:
    lap_time: float  # seconds, flying lap
    line: np.ndarray  # (n, 2) racing line points (closed: not repeated)
    speed: np.ndarray  # (n,) speed at each line point (m/s)
    s: np.ndarray  # (n,) arc length along the racing line at each point (m)
    curvature: np.ndarray  # (n,) signed curvature of the racing line (1/m)
    line_length: float  # m
    params: dict


def _lateral_bounds(track: Track, centre: np.ndarray, normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance available to the left and right of each centre point (to the nearest border point)."""
    inner, outer = track.border_points(centre)
    d_in = np.linalg.norm(inner - centre, axis=1)
    d_out = np.linalg.norm(outer - centre, axis=1)
    inner_is_left = np.einsum("ij,ij->i", inner - centre, normal) > 0
    left = np.where(inner_is_left, d_in, d_out)
    right = np.where(inner_is_left, d_out, d_in)
    return left, right


def _min_curvature_offsets(centre: np.ndarray, normal: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Lateral offsets alpha in [lo, hi] minimising the sum of squared second differences of
    centre + alpha * normal (a box-constrained least squares solved by an active-set loop)."""
    n = len(centre)
    idx = np.arange(n)
    # second-difference operator on the closed loop, applied to the x and y components
    d2 = np.zeros((n, n))
    d2[idx, (idx - 1) % n] = 1.0
    d2[idx, idx] = -2.0
    d2[idx, (idx + 1) % n] = 1.0
    a = np.vstack([d2 * normal[:, 0][None, :], d2 * normal[:, 1][None, :]])  # (2n, n)
    b = np.concatenate([d2 @ centre[:, 0], d2 @ centre[:, 1]])
    h = a.T @ a + 1e-9 * np.eye(n)
    g = a.T @ b
    alpha = np.clip(np.zeros(n), lo, hi)
    fixed = np.zeros(n, dtype=bool)
    for _iteration in range(200):
        free = ~fixed
        rhs = -(g[free] + h[np.ix_(free, fixed)] @ alpha[fixed])
        alpha[free] = np.linalg.solve(h[np.ix_(free, free)], rhs)
        low, high = alpha < lo - 1e-12, alpha > hi + 1e-12
        if low.any() or high.any():
            alpha = np.clip(alpha, lo, hi)
            fixed |= low | high
            continue
        # release bound variables whose gradient pulls them back inside
        grad = h @ alpha + g
        release = fixed & (((alpha <= lo) & (grad < -1e-12)) | ((alpha >= hi) & (grad > 1e-12)))
        if not release.any():
            break
        fixed &= ~release
    return alpha


def speed_profile(
    ds: np.ndarray,
    curvature: np.ndarray,
    max_speed: float,
    max_lateral_accel: float,
    max_accel: float,
    max_brake: float,
) -> np.ndarray:
    """Fastest periodic speed profile: v^2 |kappa| <= a_lat, v <= max_speed, and accel/brake limits
    between consecutive points (ds[i] = distance from point i to point i + 1, wrapping)."""
    n = len(curvature)
    with np.errstate(divide="ignore"):
        v_lat = np.sqrt(max_lateral_accel / np.abs(curvature))
    v = np.minimum(v_lat, max_speed)
    # Start both passes at the slowest point; two laps settle the periodic wrap-around.
    start = int(np.argmin(v))
    for _ in range(2):
        for k in range(n):  # forward: acceleration limit
            i = (start + k) % n
            j = (i + 1) % n
            v[j] = min(v[j], np.sqrt(v[i] ** 2 + 2 * max_accel * ds[i]))
        for k in range(n):  # backward: braking limit
            j = (start - k) % n
            i = (j - 1) % n
            v[i] = min(v[i], np.sqrt(v[j] ** 2 + 2 * max_brake * ds[i]))
    return v


def ideal_lap_time(
    track: Track,
    max_speed: float = DEFAULT_MAX_SPEED,
    max_lateral_accel: float = DEFAULT_MAX_LATERAL_ACCEL,
    max_accel: float = DEFAULT_MAX_ACCEL,
    max_brake: float = DEFAULT_MAX_BRAKE,
    car_half_width: float = DEFAULT_CAR_HALF_WIDTH,
    spacing: float = 0.1,
    passes: int = 2,
) -> IdealLap:
    """Racing line (minimum curvature, car footprint kept `car_half_width` + 2 cm inside the borders)
    and the fastest lap along it."""
    for label, value in (
        ("max_speed", max_speed),
        ("max_lateral_accel", max_lateral_accel),
        ("max_accel", max_accel),
        ("max_brake", max_brake),
        ("spacing", spacing),
    ):
        if not value > 0:
            raise ValueError(f"{label} must be positive, got {value}")
    if car_half_width < 0:
        raise ValueError(f"car_half_width must be >= 0, got {car_half_width}")
    n = int(np.clip(round(track.length / spacing), 16, _MAX_POINTS))  # dense QP: cap its size
    centre = track.interpolate(np.arange(n) / n)
    margin = car_half_width + 0.02
    line = centre
    for _ in range(max(1, passes)):
        # Re-parameterise around the current line: its own tangents/normals, bounds measured on the track.
        closed = np.vstack([line, line[:1]])
        ref = Polyline(closed)
        line = ref.interpolate(np.arange(n) * (ref.length / n))
        tangent = np.roll(line, -1, axis=0) - np.roll(line, 1, axis=0)
        tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
        normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
        # lateral room measured from the track centre point nearest to this line point
        proj = track.project(line)
        left, right = _lateral_bounds(track, proj.point, normal)
        offset_now = np.einsum("ij,ij->i", line - proj.point, normal)
        lo = -(right - margin) - offset_now
        hi = (left - margin) - offset_now
        if np.any(lo > hi):
            raise ValueError(f"track {track.name!r} is too narrow for a car of half width {car_half_width} m")
        alpha = _min_curvature_offsets(line, normal, np.minimum(lo, 0.0), np.maximum(hi, 0.0))
        line = line + alpha[:, None] * normal
    closed = np.vstack([line, line[:1]])
    kappa, ds = ring_curvature(closed)
    v = speed_profile(ds, kappa, max_speed, max_lateral_accel, max_accel, max_brake)
    lap_time = float(np.sum(ds / ((v + np.roll(v, -1)) / 2)))
    return IdealLap(
        lap_time=lap_time,
        line=line,
        speed=v,
        s=np.concatenate([[0.0], np.cumsum(ds)[:-1]]),
        curvature=kappa,
        line_length=float(ds.sum()),
        params={
            "max_speed": max_speed,
            "max_lateral_accel": max_lateral_accel,
            "max_accel": max_accel,
            "max_brake": max_brake,
            "car_half_width": car_half_width,
        },
    )
