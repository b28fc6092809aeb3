"""Vectorised, exact geometry on closed polylines: nearest-point projection and point-in-road.

Both structures precompute a uniform grid once so that a query over a batch of M points is a handful
of numpy operations on (M, K) candidate arrays — no Python loop per point or per segment.

The arithmetic deliberately follows GEOS (the engine behind shapely, which the DeepRacer simapp uses):
the same point-to-segment distance formula, the same sequential arc-length accumulation, and "first
segment wins" on ties, so `project`/`interpolate` reproduce shapely's `LinearRing.project/interpolate`
to the last bit on real track files.
"""

from __future__ import annotations

import numpy as np

# Cells per grid are capped so building stays well under a second even for 60 m tracks.
_MAX_CELLS = 24_000
_MIN_CELL = 0.08
_BUILD_CHUNK = 1_024


def as_points(points: np.ndarray) -> np.ndarray:
    """Return `points` as a float64 (M, 2) array, with a clear error for anything else."""
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim == 1 and arr.shape == (2,):
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"expected points of shape (M, 2), got {arr.shape}")
    return arr


def _read_only(arr: np.ndarray) -> np.ndarray:
    arr = np.ascontiguousarray(arr)
    arr.flags.writeable = False
    return arr


def _point_segment_distance(px, py, ax, ay, dx, dy, len2):
    """GEOS `Distance::pointToSegment`, broadcast over arrays (dx, dy = B - A; len2 = |B - A|^2)."""
    safe = np.where(len2 > 0.0, len2, 1.0)
    r = ((px - ax) * dx + (py - ay) * dy) / safe
    # Perpendicular distance for the interior case; endpoint distances otherwise (same formulas as GEOS).
    s = ((ay - py) * dx - (ax - px) * dy) / safe
    interior = np.abs(s) * np.sqrt(len2)
    to_a = np.sqrt((px - ax) ** 2 + (py - ay) ** 2)
    to_b = np.sqrt((px - ax - dx) ** 2 + (py - ay - dy) ** 2)
    return np.where((len2 <= 0.0) | (r <= 0.0), to_a, np.where(r >= 1.0, to_b, interior)), r


class _Grid:
    """A uniform grid over a bounding box; maps points to flat cell indices."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray, margin: float):
        lo = lo - margin
        hi = hi + margin
        extent = hi - lo
        cell = max(_MIN_CELL, float(np.sqrt(extent[0] * extent[1] / _MAX_CELLS)))
        self.origin = lo
        self.cell = cell
        self.shape = (int(np.ceil(extent[0] / cell)), int(np.ceil(extent[1] / cell)))  # (nx, ny)
        self.half_diagonal = cell * np.sqrt(0.5)
        self._inv_cell = 1.0 / cell
        self._max_index = np.array(self.shape, dtype=np.intp) - 1
        self._strides = np.array([1, self.shape[0]], dtype=np.intp)

    @property
    def n_cells(self) -> int:
        return self.shape[0] * self.shape[1]

    def centres(self) -> np.ndarray:
        nx, ny = self.shape
        ix, iy = np.meshgrid(np.arange(nx), np.arange(ny), indexing="xy")
        centres = self.origin + (np.stack([ix.ravel(), iy.ravel()], axis=1) + 0.5) * self.cell
        return centres  # flat index = iy * nx + ix

    def locate(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Flat cell index of every point (clamped to the grid) and, only when some point lies outside
        the grid, the boolean mask of points inside it (None means all inside: the common case)."""
        q = points - self.origin
        q *= self._inv_cell
        ij = q.astype(np.intp)  # truncation; negative coordinates are caught by the min test below
        if q.min(initial=0.0) < 0.0 or (ij.max(axis=0, initial=0) > self._max_index).any():
            inside = ((q >= 0.0) & (ij <= self._max_index)).all(axis=1)
            ij = np.clip(ij, 0, self._max_index)
            return ij @ self._strides, inside
        return ij @ self._strides, None


def _padded_rows(mask: np.ndarray, pad_value: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the column indices where `mask` is True in ascending order, padded to a common width.

    Padding repeats the row's last index (or `pad_value` when given / the row is empty), which keeps
    "first minimum wins" tie-breaking intact because padding only ever repeats the largest index."""
    counts = mask.sum(axis=1)
    width = max(int(counts.max(initial=0)), 1)
    order = np.argsort(~mask, axis=1, kind="stable")[:, :width]
    column = np.arange(width)[None, :]
    if pad_value is None:
        last = np.take_along_axis(order, np.maximum(counts - 1, 0)[:, None], axis=1)
        order = np.where(column < counts[:, None], order, last)
    else:
        order = np.where(column < counts[:, None], order, pad_value)
    return order.astype(np.int32), counts.astype(np.int32)


class Polyline:
    """A closed polyline (first vertex == last vertex) with exact, batched nearest-point queries.

    Segment i runs from vertex i to vertex i + 1; zero-length segments (duplicate rows) are kept so arc
    lengths and indices match the raw file. Arc lengths accumulate sequentially like GEOS."""

    def __init__(self, vertices: np.ndarray, margin: float = 2.0):
        v = np.asarray(vertices, dtype=np.float64)
        if v.ndim != 2 or v.shape[1] != 2 or len(v) < 4:
            raise ValueError(f"a closed polyline needs at least 4 (x, y) vertices, got shape {v.shape}")
        if not np.all(np.isfinite(v)):
            raise ValueError("polyline vertices must be finite")
        self.vertices = _read_only(v)
        a, b = v[:-1], v[1:]
        d = b - a
        self._ax, self._ay = a[:, 0].copy(), a[:, 1].copy()
        self._dx, self._dy = d[:, 0].copy(), d[:, 1].copy()
        self._len2 = self._dx * self._dx + self._dy * self._dy
        self.segment_length = _read_only(np.sqrt(self._len2))
        cum_end = np.cumsum(self.segment_length)  # sequential, like GEOS `totalLength += segLen`
        self.length = float(cum_end[-1]) if len(cum_end) else 0.0
        if not self.length > 0.0:
            raise ValueError("polyline has zero length")
        self._cum_end = cum_end
        self.segment_start = _read_only(np.concatenate([[0.0], cum_end[:-1]]))
        with np.errstate(invalid="ignore", divide="ignore"):
            unit = d / self.segment_length[:, None]
        self.segment_direction = _read_only(np.where(self.segment_length[:, None] > 0, unit, 0.0))
        with np.errstate(divide="ignore"):
            inv_len2 = np.where(self._len2 > 0.0, 1.0 / self._len2, 0.0)
        self._inv_len2 = inv_len2
        self._len2_safe = np.where(self._len2 > 0.0, self._len2, 1.0)
        self._grid = _Grid(v.min(axis=0), v.max(axis=0), margin)
        self._candidates = self._build_candidates()

    @property
    def n_segments(self) -> int:
        return len(self._ax)

    def _build_candidates(self) -> np.ndarray:
        """For every cell, the segments that can be nearest to some point of the cell.

        With d(c) the distance from the cell centre, any point of the cell is within d(c) ± r of each
        segment (r = half diagonal), so a segment with d(c) - r > min(d(c) + r) can never be nearest."""
        grid = self._grid
        centres = grid.centres()
        r = grid.half_diagonal
        rows = []
        for start in range(0, len(centres), _BUILD_CHUNK):
            c = centres[start : start + _BUILD_CHUNK]
            dist, _ = _point_segment_distance(c[:, :1], c[:, 1:], self._ax, self._ay, self._dx, self._dy, self._len2)
            best = dist.min(axis=1, keepdims=True)
            rows.append(dist - r <= best + r + 1e-9)
        table, self._counts = _padded_rows(np.concatenate(rows), pad_value=None)
        return table.astype(np.intp)

    def nearest_segment(self, points: np.ndarray) -> np.ndarray:
        """Index of the segment nearest to each point (the first one on exact ties, like GEOS).

        Candidates are ranked by squared distance with a few in-place operations on the (M, K)
        gather; only points beyond the grid margin fall back to a scan of every segment."""
        p = as_points(points)
        cells, in_grid = self._grid.locate(p)
        width = int(self._counts.take(cells).max(initial=1)) if len(p) else 1
        cand = self._candidates[cells, :width]
        dx, dy = self._dx.take(cand), self._dy.take(cand)
        rx = self._ax.take(cand)
        np.subtract(p[:, 0:1], rx, out=rx)
        ry = self._ay.take(cand)
        np.subtract(p[:, 1:2], ry, out=ry)
        t = rx * dx
        t += ry * dy
        t *= self._inv_len2.take(cand)
        np.clip(t, 0.0, 1.0, out=t)
        dx *= t
        dy *= t
        rx -= dx
        ry -= dy
        rx *= rx
        ry *= ry
        rx += ry
        pick = rx.argmin(axis=1)
        pick += np.arange(0, len(p) * width, width)
        segment = cand.ravel().take(pick)
        if in_grid is not None:  # rare: points beyond the grid margin are solved against every segment
            far = ~in_grid
            q = p[far]
            dist_all, _ = _point_segment_distance(
                q[:, :1], q[:, 1:], self._ax, self._ay, self._dx, self._dy, self._len2
            )
            segment[far] = np.argmin(dist_all, axis=1)
        return segment

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Shapely-exact `project`: arc length s of the nearest point, plus its segment, the nearest
        point itself and the distance to it."""
        p = as_points(points)
        segment = self.nearest_segment(p)
        ax, ay = self._ax.take(segment), self._ay.take(segment)
        dx, dy = self._dx.take(segment), self._dy.take(segment)
        rx = p[:, 0] - ax
        ry = p[:, 1] - ay
        # GEOS `projectionFactor` + `segmentNearestMeasure` (division, not a reciprocal, for exactness).
        factor = rx * dx
        factor += ry * dy
        factor /= self._len2_safe.take(segment)
        np.clip(factor, 0.0, 1.0, out=factor)
        s = factor * self.segment_length.take(segment)
        s += self.segment_start.take(segment)
        nearest = np.empty_like(p)
        np.multiply(dx, factor, out=nearest[:, 0])
        nearest[:, 0] += ax
        np.multiply(dy, factor, out=nearest[:, 1])
        nearest[:, 1] += ay
        diff = p - nearest
        diff *= diff
        distance = np.sqrt(diff.sum(axis=1))
        return s, segment, nearest, distance

    def interpolate(self, s: np.ndarray) -> np.ndarray:
        """Point at arc length `s` (shapely `interpolate`, GEOS `getLocationForward` semantics)."""
        s = np.atleast_1d(np.asarray(s, dtype=np.float64))
        seg = np.searchsorted(self._cum_end, s, side="right")
        beyond = seg >= self.n_segments
        seg = np.minimum(seg, self.n_segments - 1)
        seg_len = self.segment_length[seg]
        frac = (s - self.segment_start[seg]) / np.where(seg_len > 0, seg_len, 1.0)
        frac = np.where(beyond, 1.0, np.clip(frac, 0.0, 1.0))
        frac = np.where(s <= 0.0, 0.0, frac)
        x = self._dx[seg] * frac + self._ax[seg]
        y = self._dy[seg] * frac + self._ay[seg]
        # Exact vertices at the clamped ends, as GEOS returns p0 / p1 unchanged there.
        x = np.where(frac >= 1.0, self._ax[seg] + self._dx[seg], np.where(frac <= 0.0, self._ax[seg], x))
        y = np.where(frac >= 1.0, self._ay[seg] + self._dy[seg], np.where(frac <= 0.0, self._ay[seg], y))
        end = self.vertices[-1]
        x = np.where(beyond, end[0], x)
        y = np.where(beyond, end[1], y)
        return np.stack([x, y], axis=1)

    def nearest_points(self, points: np.ndarray) -> np.ndarray:
        """The point of the polyline nearest to each point (shapely `interpolate(project(p))` up to
        rounding in the last bit)."""
        return self.project(points)[2]


def ring_curvature(ring: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signed curvature (1/m, + = turning left) at each distinct vertex of a closed ring, from the
    circle through the vertex and its neighbours, and the length of the segment leaving each vertex.
    Duplicate vertices are dropped first; the closing vertex is not repeated in the result."""
    v = np.asarray(ring, dtype=np.float64)
    if np.array_equal(v[0], v[-1]):
        v = v[:-1]
    v = v[np.any(v != np.roll(v, 1, axis=0), axis=1)]
    prev, nxt = np.roll(v, 1, axis=0), np.roll(v, -1, axis=0)
    a = np.linalg.norm(v - prev, axis=1)
    b = np.linalg.norm(nxt - v, axis=1)
    c = np.linalg.norm(nxt - prev, axis=1)
    u, w = v - prev, nxt - v
    cross = u[:, 0] * w[:, 1] - u[:, 1] * w[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(a * b * c > 0, 2.0 * cross / (a * b * c), 0.0)
    return kappa, b


def signed_area(ring: np.ndarray) -> float:
    """Shoelace area of a closed ring; positive when counter-clockwise."""
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))


class RoadRegion:
    """Exact strict point-in-polygon for a polygon with holes (shapely `Polygon(outer, holes).contains`).

    Grid cells that no edge comes near are wholly inside or outside. For the other ("border") cells
    we store the nearby edges and the inside-ness of a reference point (the cell centre); a query point
    is inside iff the reference is, XOR an odd number of edges cross the segment reference -> point.
    Points exactly on an edge are outside (strict containment)."""

    def __init__(self, rings: list[np.ndarray], margin: float = 0.5):
        edges_a, edges_b = [], []
        for ring in rings:
            ring = np.asarray(ring, dtype=np.float64)
            if not np.array_equal(ring[0], ring[-1]):
                ring = np.vstack([ring, ring[:1]])
            a, b = ring[:-1], ring[1:]
            keep = np.any(a != b, axis=1)  # zero-length edges never change crossing parity
            edges_a.append(a[keep])
            edges_b.append(b[keep])
        a = np.concatenate(edges_a)
        b = np.concatenate(edges_b)
        all_pts = np.concatenate([a, b])
        self._grid = _Grid(all_pts.min(axis=0), all_pts.max(axis=0), margin)
        # One extra degenerate edge far away serves as padding: it never crosses and is never "on".
        far = np.array([[1e12, 1e12]])
        self._a = np.concatenate([a, far])
        self._b = np.concatenate([b, far])
        self._build()

    def _build(self) -> None:
        grid = self._grid
        a, b = self._a[:-1], self._b[:-1]
        d = b - a
        len2 = np.einsum("ij,ij->i", d, d)
        centres = grid.centres()
        r = grid.half_diagonal
        near_rows, inside_rows, refs = [], [], []
        for start in range(0, len(centres), _BUILD_CHUNK):
            c = centres[start : start + _BUILD_CHUNK].copy()
            dist, _ = _point_segment_distance(c[:, :1], c[:, 1:], a[:, 0], a[:, 1], d[:, 0], d[:, 1], len2)
            # Keep reference points well clear of every edge so their inside-ness is unambiguous.
            touching = dist.min(axis=1) < 1e-9
            c[touching] += grid.cell * np.array([0.0123, 0.0371])
            near_rows.append(dist <= r + 1e-9)
            inside_rows.append(self._ray_cast(c, a, b))
            refs.append(c)
        near = np.concatenate(near_rows)
        self._reference = np.concatenate(refs)
        self._cell_inside = np.concatenate(inside_rows)
        self._is_border = near.any(axis=1)
        edges, self._counts = _padded_rows(near, pad_value=len(a))
        self._edges = edges.astype(np.intp)
        self._ax, self._ay = self._a[:, 0].copy(), self._a[:, 1].copy()
        self._vx, self._vy = self._b[:, 0] - self._a[:, 0], self._b[:, 1] - self._a[:, 1]
        self._ref_x, self._ref_y = self._reference[:, 0].copy(), self._reference[:, 1].copy()

    @staticmethod
    def _ray_cast(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Even-odd test with a ray towards +x; only used at build time on points clear of edges."""
        px, py = points[:, :1], points[:, 1:]
        ay, by = a[:, 1], b[:, 1]
        straddle = (ay > py) != (by > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = a[:, 0] + (py - ay) * (b[:, 0] - a[:, 0]) / (by - ay)
        return (np.count_nonzero(straddle & (px < x_cross), axis=1) % 2) == 1

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Boolean (M,): strictly inside the region (points on an edge are outside)."""
        p = as_points(points)
        cells, in_grid = self._grid.locate(p)
        result = self._cell_inside.take(cells)
        border = self._is_border.take(cells)
        if in_grid is not None:
            result &= in_grid
            border &= in_grid
        rows = np.flatnonzero(border)
        if len(rows) == 0:
            return result
        qcells = cells.take(rows)
        width = int(self._counts.take(qcells).max())
        e = self._edges[qcells, :width]
        ax, ay = self._ax.take(e), self._ay.take(e)
        vx, vy = self._vx.take(e), self._vy.take(e)
        cx, cy = self._ref_x.take(qcells)[:, None], self._ref_y.take(qcells)[:, None]
        px, py = p[rows, 0:1], p[rows, 1:2]
        ux, uy = px - cx, py - cy
        # Sides of a and b = a + v relative to the line c -> p (half-open, so a vertex lying on that
        # line is counted for exactly one of its two edges).
        rax, ray = ax - cx, ay - cy
        side_a = ux * ray - uy * rax
        side_b = side_a + (ux * vy - uy * vx)
        straddle = (side_a > 0.0) != (side_b > 0.0)
        # Sides of c and p relative to the edge line a -> b.
        orient_c = vy * rax - vx * ray
        orient_p = vx * (py - ay) - vy * (px - ax)
        crosses = straddle & ((orient_c > 0.0) != (orient_p > 0.0))
        parity = (np.count_nonzero(crosses, axis=1) & 1).astype(bool)
        inside = self._cell_inside.take(qcells) ^ parity
        zero = orient_p == 0.0
        if zero.any():  # exactly on an edge line: on the boundary if within the edge's extent
            bx, by = ax + vx, ay + vy
            on_edge = (
                zero
                & (px >= np.minimum(ax, bx))
                & (px <= np.maximum(ax, bx))
                & (py >= np.minimum(ay, by))
                & (py <= np.maximum(ay, by))
            )
            inside &= ~on_edge.any(axis=1)
        result[rows] = inside
        return result
