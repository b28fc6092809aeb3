"""Objects on the track (SPEC §8): static boxes (object avoidance) and bot cars driving a lane (head to bot).

Both are oriented rectangles with ``centres`` (K, 2), ``yaws`` (K,), ``lengths``/``widths`` (K,) and
``speeds`` (K,), which is all the race rules (collisions), the params (object keys) and the sensors need.
``step(dt)`` moves what moves; the env calls it once per simulation step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.car import DEFAULT_CAR, CarSpec, CarState, body_points
from sim.track import Track

BOX_LENGTH, BOX_WIDTH = 0.5, 0.4  # the simapp's box obstacle: 0.5 m along x, 0.4 m along y
LANES = ("inner", "outer")


@dataclass
class TrackObjects:
    centres: np.ndarray  # (K, 2)
    yaws: np.ndarray  # (K,) radians
    lengths: np.ndarray = field(default=None)  # (K,) along the yaw; default: the box obstacle's 0.5 m
    widths: np.ndarray = field(default=None)  # (K,) across; default 0.4 m
    speeds: np.ndarray = field(default=None)  # (K,) m/s, zero for boxes
    is_bot_car: bool = False

    def __post_init__(self) -> None:
        k = len(self.centres)
        self.lengths = np.full(k, BOX_LENGTH) if self.lengths is None else np.asarray(self.lengths, dtype=float)
        self.widths = np.full(k, BOX_WIDTH) if self.widths is None else np.asarray(self.widths, dtype=float)
        if self.speeds is None:
            self.speeds = np.zeros(k)

    def __len__(self) -> int:
        return len(self.centres)

    def step(self, dt: float) -> None:
        """Static objects do not move."""

    def rectangles(self, exclude_cars=None) -> list[np.ndarray]:
        """Corners (4, 2) of each object."""
        out = []
        for centre, yaw, length, width in zip(self.centres, self.yaws, self.lengths, self.widths, strict=True):
            half = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]]) * [length / 2, width / 2]
            rotation = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
            out.append(centre + half @ rotation.T)
        return out

    def collisions(self, state: CarState, spec: CarSpec = DEFAULT_CAR) -> np.ndarray:
        """(N,) True where a corner of a car's footprint lies inside an object (the simapp's test)."""
        corners = body_points(state, spec.footprint_offsets())  # (N, 4, 2)
        hit = np.zeros(len(state.x), dtype=bool)
        for centre, yaw, length, width in zip(self.centres, self.yaws, self.lengths, self.widths, strict=True):
            local = corners - centre
            cos, sin = np.cos(yaw), np.sin(yaw)
            along = local[..., 0] * cos + local[..., 1] * sin
            across = -local[..., 0] * sin + local[..., 1] * cos
            hit |= ((np.abs(along) <= length / 2) & (np.abs(across) <= width / 2)).any(axis=1)
        return hit


class StaticBoxes(TrackObjects):
    @classmethod
    def on_track(cls, track: Track, ndists: list[float], lanes: list[str]) -> StaticBoxes:
        """Boxes centred on the inner/outer lane at the given fractions of the lap, aligned with the track."""
        poses = [track.lane_pose(np.array([n]), lane) for n, lane in zip(ndists, lanes, strict=True)]
        k = len(poses)
        return cls(np.array([p[0][0] for p in poses]), np.array([p[1][0] for p in poses]),
                   np.full(k, BOX_LENGTH), np.full(k, BOX_WIDTH))


class BotCars(TrackObjects):
    """Bot cars driving their lane at a constant speed (head-to-bot races), optionally changing lanes."""

    def __init__(self, track: Track, ndists: list[float], lanes: list[str], speed: float,
                 lane_change_every_s: float | None = None, spec: CarSpec = DEFAULT_CAR) -> None:
        if any(lane not in LANES for lane in lanes):
            raise ValueError(f"lanes must be one of {LANES}")
        self.track, self.lane_change_every_s = track, lane_change_every_s
        self.ndist = np.asarray(ndists, dtype=np.float64) % 1.0
        self.lanes = list(lanes)
        self._since_change = 0.0
        k = len(self.ndist)
        super().__init__(np.zeros((k, 2)), np.zeros(k), np.full(k, spec.footprint_length),
                         np.full(k, spec.footprint_width), np.full(k, float(speed)), is_bot_car=True)
        self._place()

    def step(self, dt: float) -> None:
        self.ndist = (self.ndist + self.speeds * dt / self.track.length) % 1.0
        if self.lane_change_every_s:
            self._since_change += dt
            if self._since_change >= self.lane_change_every_s:
                self._since_change = 0.0
                self.lanes = ["outer" if lane == "inner" else "inner" for lane in self.lanes]
        self._place()

    def _place(self) -> None:
        for lane in LANES:
            mine = np.array([lane == own for own in self.lanes])
            if mine.any():
                xy, yaw = self.track.lane_pose(self.ndist[mine], lane)
                self.centres[mine], self.yaws[mine] = xy, yaw
