"""`Track`: a closed DeepRacer-style track and every geometric query the simulator asks of it.

A track is (N, 6) rows `(center_x, center_y, inner_x, inner_y, outer_x, outer_y)` with row 0 == row N-1.
Rows are kept raw (duplicate rows included) so waypoint indices match the AWS console, and every query
reproduces the simapp's shapely semantics (`research/simapp.md` §1): `project` is the global nearest
point of the centre ring, `closest_waypoints` follows `find_prev_next`, borders are used the same way
for `track_width` / `is_left_of_center`, and the road is `Polygon(outer, [inner])` with strict contains.

Queries are batched: points are (M, 2) arrays, results are (M,) / (M, 2) arrays.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np

from sim.world.geometry import Polyline, RoadRegion, as_points, signed_area

Lane = Literal["inner", "outer"]
Direction = Literal["counterclockwise", "clockwise"]

#: Environment variable naming a folder of extra `<name>.npy` route files for `get_track`.


@dataclass(frozen=True)
class Projection:
    """Nearest point of the centre line to each query point (shapely `project`/`interpolate`)."""

    ndist: np.ndarray  # (M,) normalised arc length in [0, 1] from waypoint 0 (driving order)
    s: np.ndarray  # (M,) arc length in metres (= ndist * length)
    distance: np.ndarray  # (M,) distance from the point to the centre line
    segment: np.ndarray  # (M,) index i of the centre segment waypoint i -> i + 1 holding the nearest point
    point: np.ndarray  # (M, 2) the nearest point itself


def _read_only(arr: np.ndarray) -> np.ndarray:
    arr = np.array(arr, dtype=np.float64, copy=True)
    arr.flags.writeable = False
    return arr


def validate_rows(rows: np.ndarray) -> np.ndarray:
    """Check a route array and return it as float64 (N, 6); raise ValueError with the reason otherwise."""
    arr = np.asarray(rows)
    if arr.ndim != 2 or arr.shape[1] != 6:
        raise ValueError(f"track rows must have shape (N, 6) (centre, inner, outer x/y), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"track rows must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if len(arr) < 4:
        raise ValueError(f"a track needs at least 4 rows, got {len(arr)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("track rows contain NaN or infinite values")
    if not np.array_equal(arr[0], arr[-1]):
        raise ValueError("only closed tracks are supported: the last row must repeat the first row exactly")
    if np.count_nonzero(np.any(np.diff(arr[:, 0:2], axis=0) != 0.0, axis=1)) < 3:
        raise ValueError("the centre line must have at least 3 distinct segments")
    return arr


class Track:
    """An immutable closed track seen in one driving direction.

    `waypoints` are the rows in driving order: the file order, or the reversed file order when
    `is_reversed` (all three polylines reversed, exactly as the simapp does for `REVERSE_DIR`)."""

    def __init__(
        self,
        rows: np.ndarray,
        name: str,
        title: str = "",
        description: str = "",
        *,
        is_reversed: bool = False,
    ):
        file_rows = validate_rows(rows)
        if not name:
            raise ValueError("a track needs a name")
        self.name = name
        self.title = title or name
        self.description = description
        self.is_reversed = bool(is_reversed)
        self._file_rows = _read_only(file_rows)
        self.waypoints = _read_only(file_rows[::-1] if is_reversed else file_rows)
        self.center = self.waypoints[:, 0:2]
        self.inner = self.waypoints[:, 2:4]
        self.outer = self.waypoints[:, 4:6]
        self._center_line = Polyline(self.center)
        self.length = self._center_line.length
        #: arc length at every waypoint; cumulative[-1] == length (the closing row)
        self.cumulative = _read_only(np.append(self._center_line.segment_start, self.length))
        #: driving direction is counter-clockwise (shapely `LinearRing.is_ccw` of the driving-order ring)
        self.is_ccw = signed_area(self.center) > 0.0
        #: per centre segment i (waypoint i -> i + 1): unit direction (zero for duplicate rows) and length
        self.segment_direction = self._center_line.segment_direction
        self.segment_length = self._center_line.segment_length
        # simapp TrackLine.ndists: projections of coords[:-1] plus 1.0, searched with bisect_right.
        s_waypoints, _, _, _ = self._center_line.project(self.center[:-1])
        self._waypoint_ndists = np.append(s_waypoints / self.length, 1.0)
        #: per-instance memo for derived data owned by other modules (camera raster, ...); not compared
        self.cache: dict = {}

    # ----------------------------------------------------------------------------- constructors
    @classmethod
    def from_array(cls, rows: np.ndarray, name: str, title: str = "", description: str = "") -> Track:
        return cls(rows, name, title, description)

    @classmethod
    def from_npy(cls, path: str | os.PathLike, name: str | None = None) -> Track:
        path = Path(path)
        try:
            rows = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read track file {path}: {exc}") from exc
        return cls(rows, name or path.stem)

    def reversed(self) -> Track:
        """The same track driven the other way."""
        return Track(self._file_rows, self.name, self.title, self.description, is_reversed=not self.is_reversed)

    def with_direction(self, direction: Direction) -> Track:
        """This track driven counter-clockwise or clockwise (reversing it if needed)."""
        if direction not in ("counterclockwise", "clockwise"):
            raise ValueError(f"direction must be 'counterclockwise' or 'clockwise', got {direction!r}")
        return self if self.is_ccw == (direction == "counterclockwise") else self.reversed()

    # ----------------------------------------------------------------------------- identity
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Track):
            return NotImplemented
        return (
            self.name == other.name
            and self.is_reversed == other.is_reversed
            and np.array_equal(self._file_rows, other._file_rows)
        )

    def __hash__(self) -> int:
        return hash((self.name, self.is_reversed, self._file_rows.tobytes()))

    def __repr__(self) -> str:
        direction = "ccw" if self.is_ccw else "cw"
        rev = ", reversed" if self.is_reversed else ""
        return f"Track({self.name!r}, {len(self.waypoints)} waypoints, {self.length:.3f} m, {direction}{rev})"

    # ----------------------------------------------------------------------------- static shape
    @property
    def n_waypoints(self) -> int:
        return len(self.waypoints)

    @cached_property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) over centre line and both borders."""
        xy = self.waypoints.reshape(-1, 2)
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])

    @property
    def road_polygon(self) -> tuple[np.ndarray, np.ndarray]:
        """(outer ring, inner ring): the road is the outer ring minus the inner ring."""
        return self.outer, self.inner

    @cached_property
    def widths(self) -> np.ndarray:
        """Row-wise border distance ||inner_i - outer_i|| (N,)."""
        return np.linalg.norm(self.inner - self.outer, axis=1)

    @cached_property
    def _road(self) -> RoadRegion:
        return RoadRegion([self.outer, self.inner])

    @cached_property
    def _inner_line(self) -> Polyline:
        return Polyline(self.inner)

    @cached_property
    def _outer_line(self) -> Polyline:
        return Polyline(self.outer)

    @cached_property
    def _lanes(self) -> dict[str, Polyline]:
        return {
            "inner": Polyline((self.inner + self.center) / 2.0),
            "outer": Polyline((self.outer + self.center) / 2.0),
        }

    # ----------------------------------------------------------------------------- queries
    def project(self, points: np.ndarray) -> Projection:
        """Globally nearest point of the centre line (shapely `LinearRing.project`, bit-exact)."""
        s, segment, point, distance = self._center_line.project(points)
        return Projection(ndist=s / self.length, s=s, distance=distance, segment=segment, point=point)

    def interpolate(self, ndist: np.ndarray) -> np.ndarray:
        """Centre-line point at normalised arc length (shapely `interpolate(normalized=True)`)."""
        return self._center_line.interpolate(np.asarray(ndist, dtype=np.float64) * self.length)

    def closest_waypoints(self, ndist: np.ndarray) -> np.ndarray:
        """(M, 2) int [prev, next] around normalised positions, exactly as simapp `find_prev_next`."""
        ndist = np.atleast_1d(np.asarray(ndist, dtype=np.float64))
        n = len(self._waypoint_ndists)
        nxt = np.searchsorted(self._waypoint_ndists, ndist, side="right")
        prev = np.where(nxt - 1 == -1, n - 1, nxt - 1)
        nxt = np.where(nxt == n, 0, nxt)
        return np.stack([prev, nxt], axis=1)

    def closest_waypoint(self, points: np.ndarray, ndist: np.ndarray) -> np.ndarray:
        """(M,) the nearer of [prev, next] to each point (the simtrace `closest_waypoint` field)."""
        p = as_points(points)
        prev_next = self.closest_waypoints(ndist)
        d_prev = np.linalg.norm(p - self.center[prev_next[:, 0]], axis=1)
        d_next = np.linalg.norm(p - self.center[prev_next[:, 1]], axis=1)
        return np.where(d_next < d_prev, prev_next[:, 1], prev_next[:, 0])

    def contains(self, points: np.ndarray) -> np.ndarray:
        """(M,) bool: strictly inside the road polygon (shapely `Polygon(outer, [inner]).contains`)."""
        return self._road.contains(points)

    def border_points(self, center_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inner and outer border points nearest to centre-line points (simapp `get_nearest_points`)."""
        return self._inner_line.nearest_points(center_points), self._outer_line.nearest_points(center_points)

    def track_width(self, center_points: np.ndarray) -> np.ndarray:
        """(M,) simapp `track_width`: distance between the border points nearest to each centre point."""
        inner, outer = self.border_points(center_points)
        return np.linalg.norm(inner - outer, axis=1)

    def is_left_of_center(self, points: np.ndarray, center_points: np.ndarray) -> np.ndarray:
        """(M,) bool: left of the centre line relative to the driving direction (simapp formula:
        nearer the inner border than the outer one, XOR not is_ccw)."""
        p = as_points(points)
        inner, outer = self.border_points(center_points)
        nearer_inner = np.linalg.norm(p - inner, axis=1) < np.linalg.norm(p - outer, axis=1)
        return nearer_inner ^ (not self.is_ccw)

    def pose_at(self, ndist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Centre-line point at `ndist` and yaw (rad) toward the next waypoint (simapp FORWARD_DIFFERENCE)."""
        ndist = np.atleast_1d(np.asarray(ndist, dtype=np.float64))
        xy = self.interpolate(ndist)
        nxt = self.closest_waypoints(ndist)[:, 1]
        return xy, self._yaw_toward(xy, self.center[nxt])

    def lane_point(self, ndist: np.ndarray, lane: Lane) -> np.ndarray:
        """(M, 2) point of the inner/outer lane (midline centre <-> border) nearest to the centre-line
        point at `ndist` — the simapp's reset positions."""
        return self.lane_pose(ndist, lane)[0]

    def lane_pose(self, ndist: np.ndarray, lane: Lane) -> tuple[np.ndarray, np.ndarray]:
        """`lane_point` plus the yaw toward the lane's next vertex (FORWARD_DIFFERENCE on the lane)."""
        if lane not in ("inner", "outer"):
            raise ValueError(f"lane must be 'inner' or 'outer', got {lane!r}")
        line = self._lanes[lane]
        s, _, xy, _ = line.project(self.interpolate(np.atleast_1d(ndist)))
        ndists = self.cache.get(("lane_ndists", lane))
        if ndists is None:
            ndists = np.append(line.project(line.vertices[:-1])[0] / line.length, 1.0)
            self.cache[("lane_ndists", lane)] = ndists
        nxt = np.searchsorted(ndists, s / line.length, side="right") % len(ndists)
        return xy, self._yaw_toward(xy, line.vertices[nxt])

    @staticmethod
    def _yaw_toward(xy: np.ndarray, target: np.ndarray) -> np.ndarray:
        return np.arctan2(target[:, 1] - xy[:, 1], target[:, 0] - xy[:, 0])
