"""The reward function's ``params`` (SPEC §2), computed batched from the state in which the action was chosen.

``StepGeometry`` holds everything derived from one state: projections, wheels, progress. The env computes
it once per step and shares it between the race rules and the params; ``params_dicts`` turns it into one
dict per car only when a Python reward function needs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.world.car import DEFAULT_CAR, CarSpec, CarState, body_points, model_point
from sim.world.track import Track

EMPTY_OBJECT_KEYS: dict[str, Any] = {
    "closest_objects": [0, 0],
    "objects_location": [],
    "objects_left_of_center": [],
    "object_in_camera": False,
    "objects_speed": [],
    "objects_heading": [],
    "objects_distance_from_center": [],
    "objects_distance": [],
}


@dataclass
class StepGeometry:
    """Geometry of the cars' current state (arrays with the batch first)."""

    point: np.ndarray  # (N, 2) model point: 0.14 m ahead of the origin
    ndist: np.ndarray
    s: np.ndarray
    distance: np.ndarray
    center_point: np.ndarray
    wheels_on_track: np.ndarray  # (N, 4) bool
    crashed: np.ndarray

    @property
    def all_wheels_on_track(self) -> np.ndarray:
        return self.wheels_on_track.all(axis=1)

    @property
    def off_track(self) -> np.ndarray:
        return ~self.wheels_on_track.any(axis=1)


def step_geometry(track: Track, state: CarState, spec: CarSpec = DEFAULT_CAR, objects=None) -> StepGeometry:
    point = model_point(state, spec)
    projection = track.project(point)
    wheels = body_points(state, spec.wheel_offsets())
    on_track = track.contains(wheels.reshape(-1, 2)).reshape(-1, 4)
    crashed = objects.collisions(state, spec) if objects is not None else np.zeros(len(state.x), dtype=bool)
    return StepGeometry(point, projection.ndist, projection.s, projection.distance, projection.point, on_track,
                        crashed)


def params_dicts(
    track: Track,
    state: CarState,
    geometry: StepGeometry,
    steering_deg: np.ndarray,
    speed: np.ndarray,
    steps: np.ndarray,
    progress: np.ndarray,
    cars: np.ndarray,
    waypoints: list[tuple[float, float]],
    objects: Any = None,
) -> list[dict[str, Any]]:
    """One params dict per car index in ``cars`` (SPEC §2 keys, Python scalars like the simapp)."""
    if len(cars) == 0:
        return []
    objects_seen = ObjectView.of(track, objects) if objects is not None and len(objects) else None
    point = geometry.point[cars]
    center = geometry.center_point[cars]
    width = track.track_width(center)
    left = track.is_left_of_center(point, center)
    closest = track.closest_waypoints(geometry.ndist[cars])
    heading = np.degrees(state.yaw[cars])
    all_on = geometry.all_wheels_on_track[cars]
    off = geometry.off_track[cars]
    crashed = geometry.crashed[cars]
    rows = []
    for k, i in enumerate(cars.tolist()):
        rows.append({
            "all_wheels_on_track": bool(all_on[k]),
            "x": float(point[k, 0]),
            "y": float(point[k, 1]),
            "heading": float(heading[k]),
            "distance_from_center": float(geometry.distance[i]),
            "projection_distance": float(geometry.s[i]),
            "progress": float(progress[i]),
            "steps": float(steps[i]),
            "speed": float(speed[i]),
            "steering_angle": float(steering_deg[i]),
            "steering": float(steering_deg[i]),
            "track_width": float(width[k]),
            "track_length": float(track.length),
            "waypoints": waypoints,
            "closest_waypoints": [int(closest[k, 0]), int(closest[k, 1])],
            "is_left_of_center": bool(left[k]),
            "is_reversed": bool(track.is_reversed),
            "is_offtrack": bool(off[k]),
            "is_crashed": bool(crashed[k]),
            **(objects_seen.keys_for(float(geometry.s[i]), point[k], float(state.yaw[i])) if objects_seen else
               {key: (list(value) if isinstance(value, list) else value) for key, value in EMPTY_OBJECT_KEYS.items()}),
        })
    return rows


@dataclass
class ObjectView:
    """The objects as the params describe them (simapp ``get_object_reward_params``), for one step."""

    location: np.ndarray  # (K, 2)
    s: np.ndarray  # (K,) arc length of each object's projection from waypoint 0
    distance_from_center: np.ndarray
    left_of_center: np.ndarray
    speeds: np.ndarray
    headings: np.ndarray  # radians, as the simapp reports them (its docs say degrees)
    length: float

    @classmethod
    def of(cls, track: Track, objects: Any) -> ObjectView:
        location = np.asarray(objects.centres, dtype=np.float64)
        projection = track.project(location)
        headings = np.asarray(objects.yaws) if getattr(objects, "is_bot_car", False) else np.zeros(len(location))
        return cls(location, projection.s, projection.distance,
                   track.is_left_of_center(location, projection.point), np.asarray(objects.speeds, dtype=np.float64),
                   headings, float(track.length))

    def keys_for(self, car_s: float, car_point: np.ndarray, car_yaw: float) -> dict[str, Any]:
        ahead = (self.s - car_s) % self.length
        behind = (car_s - self.s) % self.length
        next_index, prev_index = int(np.argmin(ahead)), int(np.argmin(behind))
        offset = self.location[next_index] - car_point
        bearing = (np.arctan2(offset[1], offset[0]) - car_yaw + np.pi) % (2 * np.pi) - np.pi
        in_camera = bool(abs(bearing) <= CAMERA_HALF_FOV and np.hypot(*offset) <= CAMERA_RANGE_M)
        return {
            "closest_objects": [prev_index, next_index],
            "objects_location": [[float(x), float(y)] for x, y in self.location],
            "objects_left_of_center": [bool(v) for v in self.left_of_center],
            "object_in_camera": in_camera,
            "objects_speed": [float(v) for v in self.speeds],
            "objects_heading": [float(v) for v in self.headings],
            "objects_distance_from_center": [float(v) for v in self.distance_from_center],
            "objects_distance": [float(v) for v in self.s],
        }


CAMERA_HALF_FOV = 1.13 / 2
CAMERA_RANGE_M = 12.0


def synthetic_params(track: Track) -> tuple[list[str], list[dict[str, Any]]]:
    """A few realistic cars for validating a reward function before training: names and params."""
    waypoints = [(float(x), float(y)) for x, y in track.center]
    cases = [("start", 0.0, 0.0, 0.5, 0.0, 2.0), ("mid-lap", 0.5, 0.1, 1.0, -15.0, 120.0),
             ("off track", 0.3, 1.0, 1.0, 30.0, 60.0), ("near finish", 0.98, -0.05, 1.0, 0.0, 290.0)]
    names, rows = [], []
    for name, ndist, lateral, speed, steering, steps in cases:
        xy, yaw = track.pose_at(np.array([ndist]))
        normal = np.array([-np.sin(yaw[0]), np.cos(yaw[0])])
        origin = xy[0] + lateral * normal * (float(np.mean(track.widths)) / 2 + (0.3 if lateral >= 1 else 0))
        state = CarState(np.array([origin[0]]), np.array([origin[1]]), yaw.copy(), np.zeros(1), np.zeros(1))
        geometry = step_geometry(track, state)
        progress = np.array([min(100.0, max(0.0, 100.0 * ndist) + 0.01)])
        rows += params_dicts(track, state, geometry, np.array([steering]), np.array([speed]), np.array([steps]),
                             progress, np.array([0]), waypoints)
        names.append(name)
    return names, rows
