"""The car: a batched kinematic bicycle with response lag and a lateral grip limit (SPEC §3).

State arrays have the batch of cars first. The car origin is midway between the axles (the simapp's
``base_link``). Commands are the action's nominal steering (degrees, + = left) and speed (m/s), clipped to
the simapp's limits before they drive the car.

Design choices, documented because the simapp leaves them to Gazebo:
- Response lag: speed and steering follow their commands as first-order lags (``speed_tau_s``,
  ``steering_tau_s``), like the real car's motor and servo; a step's command is not reached instantly.
- Grip: lateral acceleration ``v * yaw_rate`` is capped at ``max_lateral_accel``; past it the yaw rate is
  limited to ``a_max / v`` and the car runs wide (understeer) instead of following the steering.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

STEPS_PER_SECOND = 15  # one camera frame per step, as the simapp


@dataclass(frozen=True)
class CarSpec:
    """The car's dimensions and limits. ``wheelbase`` drives the kinematics; the wheel contact points that decide
    ``all_wheels_on_track`` / off track are the DeepRacer car model's wheel links (simapp URDF, SPEC §2), from
    the origin: front (``front_wheel_x``, ±``front_wheel_y``), rear (``rear_wheel_x``, ±``rear_wheel_y``)."""

    wheelbase: float = 0.164
    front_wheel_x: float = 0.082311
    front_wheel_y: float = 0.079601
    rear_wheel_x: float = -0.081663
    rear_wheel_y: float = 0.08105
    max_steering_deg: float = 30.0
    min_speed: float = 0.1
    max_speed: float = 4.0
    speed_tau_s: float = 0.15
    steering_tau_s: float = 0.05
    max_lateral_accel: float = 5.0
    max_accel: float = 3.0
    max_brake: float = 4.0
    footprint_length: float = 0.3235
    footprint_width: float = 0.1961
    model_point_offset: float = 0.14  # params x/y: this far ahead of the origin
    substeps: int = 4

    @property
    def dt(self) -> float:
        return 1.0 / STEPS_PER_SECOND

    def wheel_offsets(self) -> np.ndarray:
        """(4, 2) wheel centres in the car frame: front-left, front-right, rear-left, rear-right."""
        front_x, front_y, rear_x, rear_y = self.front_wheel_x, self.front_wheel_y, self.rear_wheel_x, self.rear_wheel_y
        return np.array([[front_x, front_y], [front_x, -front_y], [rear_x, rear_y], [rear_x, -rear_y]])

    def footprint_offsets(self) -> np.ndarray:
        """(4, 2) corners of the collision rectangle in the car frame (centred on the origin)."""
        half_l, half_w = self.footprint_length / 2, self.footprint_width / 2
        return np.array([[half_l, half_w], [half_l, -half_w], [-half_l, -half_w], [-half_l, half_w]])


DEFAULT_CAR = CarSpec()


@dataclass
class CarState:
    """Batched pose and actuator state (float64, shape (N,))."""

    x: np.ndarray
    y: np.ndarray
    yaw: np.ndarray  # radians
    speed: np.ndarray  # actual, m/s
    steering: np.ndarray  # actual, radians

    @classmethod
    def zeros(cls, n: int) -> CarState:
        return cls(*(np.zeros(n) for _ in range(5)))

    def place(self, index: np.ndarray, x: np.ndarray, y: np.ndarray, yaw: np.ndarray) -> None:
        """Teleport cars ``index`` (bool mask or indices) to a standstill pose."""
        self.x[index], self.y[index], self.yaw[index] = x, y, yaw
        self.speed[index] = 0.0
        self.steering[index] = 0.0


def clip_commands(steering_deg: np.ndarray, speed: np.ndarray, spec: CarSpec = DEFAULT_CAR) -> tuple:
    """Nominal action values -> the clipped commands that drive the car (radians, m/s)."""
    steering = np.radians(np.clip(steering_deg, -spec.max_steering_deg, spec.max_steering_deg))
    return steering, np.clip(speed, spec.min_speed, spec.max_speed)


def advance(state: CarState, steering_cmd: np.ndarray, speed_cmd: np.ndarray, moving: np.ndarray,
            spec: CarSpec = DEFAULT_CAR) -> None:
    """Integrate one step (1/15 s) in place for the cars where ``moving`` is True; others stay put."""
    h = spec.dt / spec.substeps
    speed_gain = 1.0 - math.exp(-h / spec.speed_tau_s)
    steer_gain = 1.0 - math.exp(-h / spec.steering_tau_s)
    x, y, yaw, v, delta = state.x, state.y, state.yaw, state.speed, state.steering
    # minimum(maximum()) is np.clip's result (NaN included) without its Python wrapper: a race steps one car, where
    # the per-call overhead is the cost. All cars moving (the usual race step) needs no masking.
    all_moving = bool(np.all(moving))
    for _ in range(spec.substeps):
        dv = (speed_cmd - v) * speed_gain
        dv = np.minimum(np.maximum(dv, -spec.max_brake * h), spec.max_accel * h)
        if all_moving:
            v = v + dv
            delta = delta + (steering_cmd - delta) * steer_gain
        else:
            v = np.where(moving, v + dv, 0.0)
            delta = np.where(moving, delta + (steering_cmd - delta) * steer_gain, delta)
        tan_delta = np.tan(delta)
        beta = np.arctan(0.5 * tan_delta)  # slip angle of the mid-axle point
        yaw_rate = v * np.cos(beta) * tan_delta / spec.wheelbase
        limit = spec.max_lateral_accel / np.maximum(v, 1e-6)
        yaw_rate = np.minimum(np.maximum(yaw_rate, -limit), limit)
        heading = yaw + beta
        x = x + v * np.cos(heading) * h
        y = y + v * np.sin(heading) * h
        yaw = yaw + yaw_rate * h
    state.x[:], state.y[:] = x, y
    state.yaw[:] = (yaw + np.pi) % (2 * np.pi) - np.pi
    state.speed[:], state.steering[:] = v, delta


def body_points(state: CarState, offsets: np.ndarray) -> np.ndarray:
    """World coordinates (N, K, 2) of car-frame points ``offsets`` (K, 2)."""
    cos, sin = np.cos(state.yaw)[:, None], np.sin(state.yaw)[:, None]
    px = state.x[:, None] + offsets[None, :, 0] * cos - offsets[None, :, 1] * sin
    py = state.y[:, None] + offsets[None, :, 0] * sin + offsets[None, :, 1] * cos
    return np.stack([px, py], axis=-1)


def model_point(state: CarState, spec: CarSpec = DEFAULT_CAR) -> np.ndarray:
    """(N, 2): the point 0.14 m ahead of the origin that the simapp reports as x, y."""
    return np.column_stack([
        state.x + spec.model_point_offset * np.cos(state.yaw),
        state.y + spec.model_point_offset * np.sin(state.yaw),
    ])
