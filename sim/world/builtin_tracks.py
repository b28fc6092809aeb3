"""Pitlane's own built-in tracks (original layouts, not tracings of AWS tracks).

Each layout is a closed control polygon smoothed by a periodic cubic B-spline (which never overshoots
its control polygon), scaled to a target centre-line length, resampled at even arc-length spacing and
offset by +/- width/2 along the normal. Rows follow the route-file format
`(center_x, center_y, inner_x, inner_y, outer_x, outer_y)`, counter-clockwise, first row repeated last.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from sim.world.track import Track

_DENSE_PER_SPAN = 200  # spline samples per control span before arc-length resampling


@dataclass(frozen=True)
class BuiltinTrackSpec:
    name: str
    title: str
    description: str
    width: float  # road width (m)
    length: float  # target centre-line length (m)
    control: tuple[tuple[float, float], ...]  # closed control polygon (any scale; CCW)
    spacing: float = 0.15  # target waypoint spacing (m)

    def rows(self) -> np.ndarray:
        return generate_rows(np.array(self.control, dtype=np.float64), self.length, self.width, self.spacing)


def _bspline_dense(control: np.ndarray, per_span: int) -> tuple[np.ndarray, np.ndarray]:
    """Points and first derivatives of the uniform periodic cubic B-spline of a closed control polygon."""
    n = len(control)
    u = np.arange(per_span) / per_span
    basis = np.stack([(1 - u) ** 3, 3 * u**3 - 6 * u**2 + 4, -3 * u**3 + 3 * u**2 + 3 * u + 1, u**3], axis=1) / 6
    dbasis = np.stack([-3 * (1 - u) ** 2, 9 * u**2 - 12 * u, -9 * u**2 + 6 * u + 3, 3 * u**2], axis=1) / 6
    idx = (np.arange(n)[:, None] + np.arange(4)[None, :]) % n  # span i uses control points i..i+3
    ctrl = control[idx]  # (n, 4, 2)
    pts = np.einsum("uk,nkd->nud", basis, ctrl).reshape(-1, 2)
    der = np.einsum("uk,nkd->nud", dbasis, ctrl).reshape(-1, 2)
    return pts, der


def generate_rows(control: np.ndarray, length: float, width: float, spacing: float) -> np.ndarray:
    """(N, 6) closed route rows for the smoothed control polygon, scaled to `length`."""
    pts, der = _bspline_dense(control, _DENSE_PER_SPAN)
    seg = np.linalg.norm(np.diff(np.vstack([pts, pts[:1]]), axis=0), axis=1)
    scale = length / seg.sum()
    pts, der, seg = pts * scale, der * scale, seg * scale
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(8, round(cum[-1] / spacing))
    target = np.arange(n) * (cum[-1] / n)
    closed_pts = np.vstack([pts, pts[:1]])
    closed_der = np.vstack([der, der[:1]])
    center = np.stack([np.interp(target, cum, closed_pts[:, k]) for k in range(2)], axis=1)
    tangent = np.stack([np.interp(target, cum, closed_der[:, k]) for k in range(2)], axis=1)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    left = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    if _signed_area(center) < 0:  # make every layout counter-clockwise in file order
        center, left = center[::-1], -left[::-1]
    center -= center.min(axis=0) - 0.5 * width - 0.5  # place the road in the positive quadrant
    inner = center + left * (width / 2)  # CCW: the inside of the loop is on the driver's left
    outer = center - left * (width / 2)
    rows = np.hstack([center, inner, outer])
    rows = np.round(rows, 6)  # stable, readable files
    return np.vstack([rows, rows[:1]])


def _signed_area(xy: np.ndarray) -> float:
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


BUILTIN_TRACKS: dict[str, BuiltinTrackSpec] = {
    spec.name: spec
    for spec in (
        BuiltinTrackSpec(
            name="pitlane_oval",
            title="Pitlane Oval",
            description="An easy 18 m oval with two straights and two constant-radius bends: the place to "
            "train a first model.",
            width=1.07,
            length=18.0,
            control=((0, 0), (3, 0), (6, 0), (8, 1.3), (8, 3.7), (6, 5), (3, 5), (0, 5), (-2, 3.7), (-2, 1.3)),
        ),
        BuiltinTrackSpec(
            name="pitlane_technical",
            title="Pitlane Technical",
            description="A technical 23 m loop in the spirit of a championship final: a long start "
            "straight, a tight right-hand-side hairpin and a sequence of S-bends back to the line.",
            width=1.07,
            length=23.0,
            control=(
                (0, 0), (3, 0), (6, 0), (8, 0.3), (9, 1.5), (9, 3), (9, 4.5), (8.3, 5.6), (7, 5.6), (6.3, 4.6),
                (6.0, 3.4), (5.0, 2.8), (3.8, 3.4), (3.2, 4.6), (2.0, 5.2), (0.6, 4.8), (-0.6, 3.6), (-1, 2),
                (-0.6, 0.6),
            ),
        ),
        BuiltinTrackSpec(
            name="pitlane_speedway",
            title="Pitlane Speedway",
            description="A long 57 m fast circuit: two long straights joined by wide sweepers and one "
            "chicane — top speed and braking points matter.",
            width=1.07,
            length=57.0,
            control=(
                (0, 0), (5, 0), (10, 0), (15, 0), (19, 0.5), (21, 2.5), (21, 5.5), (19, 7.5), (16, 8),
                (13, 7.2), (11, 8.4), (8, 9), (4, 9), (0, 9), (-3, 8.2), (-5, 6.2), (-5, 3), (-3, 0.8),
            ),
        ),
        BuiltinTrackSpec(
            name="pitlane_narrow",
            title="Pitlane Narrow",
            description="A narrow 20 m twisty ribbon (0.70 m wide): constant direction changes, little "
            "room for error.",
            width=0.70,
            length=20.0,
            control=(
                (0, 0), (2, 0), (3.5, 0.8), (5, 0), (6.8, 0.2), (7.4, 1.6), (6.4, 2.8), (7.2, 4.2), (6.6, 5.6),
                (5, 5.8), (4, 4.6), (2.8, 5.4), (1.2, 5.6), (-0.2, 4.6), (0.6, 3.2), (-0.4, 1.8), (-1.0, 0.6),
            ),
        ),
    )
}


@cache
def build_builtin_track(name: str) -> Track:
    """Build (once) and return the built-in track `name`."""
    try:
        spec = BUILTIN_TRACKS[name]
    except KeyError:
        raise KeyError(f"unknown built-in track {name!r}; available: {', '.join(BUILTIN_TRACKS)}") from None
    return Track(spec.rows(), spec.name, spec.title, spec.description)
