"""Objects on the track (SPEC §8 object avoidance): static boxes as oriented rectangles.

Only static boxes exist so far; moving bot cars (head-to-bot) will implement the same two methods.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.car import CarSpec, CarState, body_points
from sim.track import Track

BOX_LENGTH, BOX_WIDTH = 0.5, 0.4  # the simapp's box obstacle: 0.5 m along x, 0.4 m along y


@dataclass(frozen=True)
class StaticBoxes:
    centres: np.ndarray  # (K, 2)
    yaws: np.ndarray  # (K,) radians

    @classmethod
    def on_track(cls, track: Track, ndists: list[float], lanes: list[str]) -> StaticBoxes:
        """Boxes centred on the inner/outer lane at the given fractions of the lap, aligned with the track."""
        poses = [track.lane_pose(np.array([n]), lane) for n, lane in zip(ndists, lanes, strict=True)]
        return cls(np.array([p[0][0] for p in poses]), np.array([p[1][0] for p in poses]))

    def rectangles(self, exclude_cars=None) -> list[np.ndarray]:
        """Corners (4, 2) of each box."""
        half = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]]) * [BOX_LENGTH / 2, BOX_WIDTH / 2]
        out = []
        for centre, yaw in zip(self.centres, self.yaws, strict=True):
            rotation = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
            out.append(centre + half @ rotation.T)
        return out

    def collisions(self, state: CarState, spec: CarSpec) -> np.ndarray:
        """(N,) True where a corner of a car's footprint lies inside a box (the simapp's test)."""
        corners = body_points(state, spec.footprint_offsets())  # (N, 4, 2)
        hit = np.zeros(len(state.x), dtype=bool)
        for centre, yaw in zip(self.centres, self.yaws, strict=True):
            local = corners - centre
            cos, sin = np.cos(yaw), np.sin(yaw)
            along = local[..., 0] * cos + local[..., 1] * sin
            across = -local[..., 0] * sin + local[..., 1] * cos
            inside = (np.abs(along) <= BOX_LENGTH / 2) & (np.abs(across) <= BOX_WIDTH / 2)
            hit |= inside.any(axis=1)
        return hit
