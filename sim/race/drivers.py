"""A scripted pure-pursuit driver (batched): the reference driver of tests, warm starts and baselines.

It aims at a point ``lookahead`` metres further along the centre line and picks a speed from the sharpest
curvature over the next metres, so it stays within the car's grip.
"""

from __future__ import annotations

import numpy as np

from sim.world.car import DEFAULT_CAR, CarSpec, CarState
from sim.world.track import Track
from sim.world.vehicle import ContinuousActionSpace, DiscreteActionSpace, Vehicle


class PurePursuitDriver:
    def __init__(self, track: Track, max_speed: float = 1.0, lookahead: float = 0.45, grip_margin: float = 0.6,
                 spec: CarSpec = DEFAULT_CAR, lane: str | None = None) -> None:
        """``lane``: follow the inner or outer lane instead of the centre line (two cars side by side)."""
        self.track, self.max_speed, self.lookahead, self.spec, self.lane = track, max_speed, lookahead, spec, lane
        self.grip = grip_margin * spec.max_lateral_accel
        self._curvature = _curvature_ahead(track, horizon=1.2)

    def commands(self, car: CarState) -> tuple[np.ndarray, np.ndarray]:
        """(steering degrees, speed m/s) per car."""
        origin = np.column_stack([car.x, car.y])
        projection = self.track.project(origin)
        ahead = (projection.ndist + self.lookahead / self.track.length) % 1.0
        target = self.track.interpolate(ahead) if self.lane is None else self.track.lane_point(ahead, self.lane)
        rear = origin - 0.5 * self.spec.wheelbase * np.column_stack([np.cos(car.yaw), np.sin(car.yaw)])
        to_target = target - rear
        alpha = np.arctan2(to_target[:, 1], to_target[:, 0]) - car.yaw
        alpha = (alpha + np.pi) % (2 * np.pi) - np.pi
        distance = np.maximum(np.hypot(to_target[:, 0], to_target[:, 1]), 1e-6)
        steering = np.degrees(np.arctan2(2.0 * self.spec.wheelbase * np.sin(alpha), distance))
        steering = np.clip(steering, -self.spec.max_steering_deg, self.spec.max_steering_deg)
        kappa = np.interp(projection.s, self._curvature[0], self._curvature[1], period=self.track.length)
        speed = np.minimum(self.max_speed, np.sqrt(self.grip / np.maximum(kappa, 1e-6)))
        return steering, np.maximum(speed, self.spec.min_speed)

    def actions(self, car: CarState, vehicle: Vehicle) -> np.ndarray:
        """The driver's commands as actions of ``vehicle`` (nearest discrete action, or scaled outputs)."""
        steering, speed = self.commands(car)
        return commands_to_actions(vehicle, steering, speed)


def commands_to_actions(vehicle: Vehicle, steering: np.ndarray, speed: np.ndarray) -> np.ndarray:
    space = vehicle.action_space
    if isinstance(space, DiscreteActionSpace):
        table = np.array([[a.steering_angle, a.speed] for a in space.actions], dtype=np.float64)
        # Steering in units of 15°, speed in units of 0.5 m/s: turning matters as much as pace.
        cost = ((table[None, :, 0] - steering[:, None]) / 15.0) ** 2 + ((table[None, :, 1] - speed[:, None]) / 0.5) ** 2
        return cost.argmin(axis=1)
    assert isinstance(space, ContinuousActionSpace)
    steer = 2 * (steering - space.steering_low) / (space.steering_high - space.steering_low) - 1
    pace = 2 * (speed - space.speed_low) / (space.speed_high - space.speed_low) - 1
    return np.clip(np.column_stack([steer, pace]), -1.0, 1.0).astype(np.float32)


def _curvature_ahead(track: Track, horizon: float) -> tuple[np.ndarray, np.ndarray]:
    """(s, max |curvature| over the next ``horizon`` metres) sampled every 5 cm along the centre line."""
    s = np.arange(0.0, track.length, 0.05)
    points = track.interpolate(s / track.length)
    forward = np.roll(points, -2, axis=0) - points
    backward = points - np.roll(points, 2, axis=0)
    heading_change = np.arctan2(forward[:, 1], forward[:, 0]) - np.arctan2(backward[:, 1], backward[:, 0])
    heading_change = (heading_change + np.pi) % (2 * np.pi) - np.pi
    kappa = np.abs(heading_change) / 0.2
    window = max(1, int(horizon / 0.05))
    padded = np.concatenate([kappa, kappa[:window]])
    ahead = np.lib.stride_tricks.sliding_window_view(padded, window + 1).max(axis=1)[: len(kappa)]
    return s, ahead
