"""Objects on the track (SPEC §8): static boxes (object avoidance) and bot cars driving a lane (head to bot).

Both are oriented rectangles with ``centres`` (K, 2), ``yaws`` (K,), ``lengths``/``widths`` (K,) and
``speeds`` (K,), which is all the race rules (collisions), the params (object keys) and the sensors need.
``step(dt)`` moves what moves; the env calls it once per simulation step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.world.car import DEFAULT_CAR, CarSpec, CarState, body_points
from sim.world.track import Track

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


# --- the evaluator's job format ------------------------------------------------------------------------------
MAX_BOXES, MAX_BOTS = 10, 6  # SPEC §8: object avoidance 1-10 boxes, head to bot 1-6 bot cars
MAX_BOT_SPEED = 4.0  # the cars' own top speed (SPEC §3)


def objects_from_spec(track: Track, spec: dict | None) -> TrackObjects | None:
    """Objects from a race's JSON description (the sandboxed runner's ``"objects"``), checked strictly.

    ``None`` means no objects. Otherwise ``{"kind": "boxes", "items": [{"ndist", "lane"}, ...]}`` or
    ``{"kind": "bots", "items": [...], "speed": m/s, "lane_change_every_s": seconds | None}``; ``ndist`` is the
    fraction of the lap in the direction raced. Raises ``ValueError`` on anything else.
    """
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise ValueError("objects must be an object or null")
    kind = spec.get("kind")
    allowed = {"boxes": {"kind", "items"}, "bots": {"kind", "items", "speed", "lane_change_every_s"}}
    if kind not in allowed:
        raise ValueError("objects kind must be 'boxes' or 'bots'")
    if set(spec) != allowed[kind]:
        raise ValueError(f"{kind} objects take exactly the keys {', '.join(sorted(allowed[kind]))}")
    items = spec["items"]
    limit = MAX_BOXES if kind == "boxes" else MAX_BOTS
    if not isinstance(items, list) or not 1 <= len(items) <= limit:
        raise ValueError(f"{kind} need 1 to {limit} items")
    ndists, lanes = [], []
    for item in items:
        if not isinstance(item, dict) or set(item) != {"ndist", "lane"}:
            raise ValueError("each object item is exactly {ndist, lane}")
        ndists.append(_number(item["ndist"], "ndist", 0.0, 1.0, high_open=True))
        if item["lane"] not in LANES:
            raise ValueError(f"lane must be one of {', '.join(LANES)}")
        lanes.append(item["lane"])
    if kind == "boxes":
        return StaticBoxes.on_track(track, ndists, lanes)
    speed = _number(spec["speed"], "speed", 0.0, MAX_BOT_SPEED, low_open=True)
    every = spec["lane_change_every_s"]
    every = None if every is None else _number(every, "lane_change_every_s", 0.0, 3600.0, low_open=True)
    return BotCars(track, ndists, lanes, speed, lane_change_every_s=every)


def _number(value, name: str, low: float, high: float, low_open: bool = False, high_open: bool = False) -> float:
    # bool is an int in Python; a JSON true is not a position.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a finite number")
    try:
        value = float(value)
    except OverflowError:  # a JSON integer too large for a float
        raise ValueError(f"{name} is out of range") from None
    if not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number")
    if value < low or value > high or (low_open and value == low) or (high_open and value == high):
        raise ValueError(f"{name} is out of range")
    return float(value)
