"""Scripted pure-pursuit drivers (batched): the reference drivers of tests, warm starts and baselines.

``PurePursuitDriver`` aims at a point ``lookahead`` metres further along the centre line and picks a speed from
the sharpest curvature over the next metres, so it stays within the car's grip. ``RacingLineDriver`` aims along
the minimum-curvature racing line of ``sim.race.ideal_lap`` at a share of its ideal speed profile: the driver a
fast model should imitate.
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
        steering = pursuit_steering(origin, car.yaw, target, self.spec)
        kappa = np.interp(projection.s, self._curvature[0], self._curvature[1], period=self.track.length)
        speed = np.minimum(self.max_speed, np.sqrt(self.grip / np.maximum(kappa, 1e-6)))
        return steering, np.maximum(speed, self.spec.min_speed)

    def actions(self, car: CarState, vehicle: Vehicle) -> np.ndarray:
        """The driver's commands as actions of ``vehicle`` (nearest discrete action, or scaled outputs)."""
        steering, speed = self.commands(car)
        return commands_to_actions(vehicle, steering, speed)


class RacingLineDriver:
    """Pure pursuit along the ideal lap's racing line, at ``pace`` times its speed profile (capped at
    ``max_speed``, the car's top speed); the speed looks ``brake_horizon`` metres ahead so it slows in time."""

    def __init__(self, track: Track, max_speed: float, pace: float = 0.9, lookahead: float = 0.5,
                 brake_horizon: float = 0.6, spec: CarSpec = DEFAULT_CAR) -> None:
        from sim.race.ideal_lap import ideal_lap_time
        from sim.world.geometry import Polyline

        self.track, self.max_speed, self.lookahead, self.spec = track, max_speed, lookahead, spec
        lap = ideal_lap_time(track, max_speed=max_speed)
        self.line = Polyline(np.vstack([lap.line, lap.line[:1]]))
        # The slowest target over the next metres: the speed the car must already hold when it gets there.
        s = np.append(lap.s, lap.line_length)
        speed = np.append(lap.speed, lap.speed[0]) * pace
        grid = np.arange(0.0, lap.line_length, 0.05)
        target = np.interp(grid, s, speed)
        window = max(1, int(brake_horizon / 0.05))
        padded = np.concatenate([target, target[:window]])
        self._speed = (grid, np.lib.stride_tricks.sliding_window_view(padded, window + 1).min(axis=1)[: len(grid)])

    def commands(self, car: CarState) -> tuple[np.ndarray, np.ndarray]:
        """(steering degrees, speed m/s) per car."""
        origin = np.column_stack([car.x, car.y])
        s, _, _, _ = self.line.project(origin)
        target = self.line.interpolate((s + self.lookahead) % self.line.length)
        steering = pursuit_steering(origin, car.yaw, target, self.spec)
        speed = np.interp(s, self._speed[0], self._speed[1], period=self.line.length)
        return steering, np.clip(speed, self.spec.min_speed, self.max_speed)

    def actions(self, car: CarState, vehicle: Vehicle) -> np.ndarray:
        """The driver's commands as actions of ``vehicle`` (nearest discrete action, or scaled outputs)."""
        steering, speed = self.commands(car)
        return commands_to_actions(vehicle, steering, speed)


def pursuit_steering(origin: np.ndarray, yaw: np.ndarray, target: np.ndarray, spec: CarSpec) -> np.ndarray:
    """Pure-pursuit steering angle (degrees, within the car's lock) from the rear axle towards ``target``."""
    rear = origin - 0.5 * spec.wheelbase * np.column_stack([np.cos(yaw), np.sin(yaw)])
    to_target = target - rear
    alpha = np.arctan2(to_target[:, 1], to_target[:, 0]) - yaw
    alpha = (alpha + np.pi) % (2 * np.pi) - np.pi
    distance = np.maximum(np.hypot(to_target[:, 0], to_target[:, 1]), 1e-6)
    steering = np.degrees(np.arctan2(2.0 * spec.wheelbase * np.sin(alpha), distance))
    return np.clip(steering, -spec.max_steering_deg, spec.max_steering_deg)


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
