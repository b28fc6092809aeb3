"""Top-down PNG pictures of a track (Pillow): road, borders, centre line, start line, driving direction,
and optional trajectories coloured by speed with a colour bar."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from sim.world.track import Track

GRASS = (58, 94, 52)
ROAD = (64, 66, 72)
BORDER = (245, 245, 245)
CENTRE = (236, 200, 60)
TEXT = (245, 245, 245)
BOX = (235, 140, 40)  # obstacle boxes: orange, clear of the speed ramp's blue-to-red at a glance
PANEL = (30, 34, 38)
# Speed colour ramp (slow -> fast): blue, cyan, green, yellow, red.
_RAMP = np.array([(48, 80, 220), (40, 190, 230), (70, 200, 90), (245, 215, 50), (225, 50, 40)], dtype=float)
_SUPERSAMPLE = 2  # draw at 2x and downscale for anti-aliased lines


@dataclass(frozen=True)
class Trajectory:
    """A driven path: xy (T, 2) in metres and speed (T,) in m/s; `label` shows in the legend. With a `colour`
    (RGB) the path is drawn in that one colour instead of by speed (two cars of a head-to-head match)."""

    xy: np.ndarray
    speed: np.ndarray
    label: str = ""
    colour: tuple[int, int, int] | None = None


def speed_colour(speed: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """(T, 3) uint8 colours of speeds on the slow-to-fast ramp."""
    f = np.clip((np.asarray(speed, dtype=float) - vmin) / max(vmax - vmin, 1e-9), 0.0, 1.0) * (len(_RAMP) - 1)
    i = np.minimum(f.astype(int), len(_RAMP) - 2)
    t = (f - i)[:, None]
    return np.round(_RAMP[i] * (1 - t) + _RAMP[i + 1] * t).astype(np.uint8)


def _as_trajectory(item) -> Trajectory:
    if isinstance(item, Trajectory):
        traj = item
    elif isinstance(item, Sequence) and len(item) in (2, 3):
        traj = Trajectory(*item)
    else:
        raise ValueError("a trajectory is Trajectory(xy, speed[, label]) or a tuple (xy, speed[, label])")
    xy = np.asarray(traj.xy, dtype=float)
    speed = np.asarray(traj.speed, dtype=float)
    if xy.ndim != 2 or xy.shape[1] != 2 or speed.shape != (len(xy),):
        raise ValueError(f"trajectory needs xy (T, 2) and speed (T,), got {xy.shape} and {speed.shape}")
    return Trajectory(xy, speed, traj.label, traj.colour)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


class _View:
    """World (m) -> pixel transform fitting the track into a box with a margin, y up."""

    def __init__(self, track: Track, box: tuple[int, int, int, int], margin_m: float = 0.4):
        x0, y0, x1, y1 = track.bounds
        x0, y0, x1, y1 = x0 - margin_m, y0 - margin_m, x1 + margin_m, y1 + margin_m
        left, top, right, bottom = box
        self.scale = min((right - left) / (x1 - x0), (bottom - top) / (y1 - y0))
        self.ox = left + ((right - left) - (x1 - x0) * self.scale) / 2 - x0 * self.scale
        self.oy = top + ((bottom - top) - (y1 - y0) * self.scale) / 2 + y1 * self.scale

    def __call__(self, xy: np.ndarray) -> list[tuple[float, float]]:
        xy = np.asarray(xy, dtype=float)
        return list(zip(self.ox + xy[:, 0] * self.scale, self.oy - xy[:, 1] * self.scale, strict=True))


def _draw_track(draw: ImageDraw.ImageDraw, track: Track, view: _View) -> None:
    px = view.scale  # pixels per metre
    draw.polygon(view(track.outer), fill=ROAD)
    draw.polygon(view(track.inner), fill=GRASS)
    border_w = max(2, round(0.05 * px))
    draw.line(view(track.outer), fill=BORDER, width=border_w, joint="curve")
    draw.line(view(track.inner), fill=BORDER, width=border_w, joint="curve")
    # Dashed centre line: 0.15 m dash, 0.15 m gap along the arc length.
    s = np.arange(0.0, track.length, 0.05)
    pts = track.interpolate(s / track.length)
    dash = (s // 0.15) % 2 == 0
    line_w = max(1, round(0.02 * px))
    start = None
    for k in range(len(s)):
        if dash[k] and start is None:
            start = k
        if (not dash[k] or k == len(s) - 1) and start is not None:
            if k - start >= 1:
                draw.line(view(pts[start : k + 1]), fill=CENTRE, width=line_w)
            start = None
    _draw_start_line(draw, track, view)
    _draw_direction_arrow(draw, track, view)


def _draw_start_line(draw: ImageDraw.ImageDraw, track: Track, view: _View) -> None:
    """Chequered start/finish strip across the road at waypoint 0."""
    inner, outer = track.inner[0], track.outer[0]
    heading = track.segment_direction[np.flatnonzero(track.segment_length > 0)[0]]
    depth = 0.12  # metres along the driving direction
    n_squares = 8
    for row in range(2):
        for k in range(n_squares):
            a = inner + (outer - inner) * (k / n_squares)
            b = inner + (outer - inner) * ((k + 1) / n_squares)
            off0, off1 = heading * (depth / 2) * (row - 1), heading * (depth / 2) * row
            quad = np.array([a + off0, b + off0, b + off1, a + off1])
            draw.polygon(view(quad), fill=(245, 245, 245) if (k + row) % 2 == 0 else (20, 20, 20))


def _draw_direction_arrow(draw: ImageDraw.ImageDraw, track: Track, view: _View) -> None:
    """A chevron on the road just after the start line pointing in the driving direction."""
    ndist = min(0.6 / track.length, 0.1)
    (xy,), (yaw,) = track.pose_at([ndist])
    width = float(np.median(track.widths))
    fwd = np.array([np.cos(yaw), np.sin(yaw)])
    left = np.array([-fwd[1], fwd[0]])
    size = 0.22 * width
    tip = xy + fwd * size
    chevron = np.array([tip, xy - fwd * size * 0.3 + left * size * 0.8, xy, xy - fwd * size * 0.3 - left * size * 0.8])
    draw.polygon(view(chevron), fill=(255, 255, 255))


def _draw_colour_bar(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], vmin: float, vmax: float, ss: int):
    left, top, right, bottom = box
    steps = bottom - top
    colours = speed_colour(np.linspace(vmax, vmin, steps), vmin, vmax)
    for i, col in enumerate(colours):
        draw.line([(left, top + i), (right, top + i)], fill=tuple(int(c) for c in col))
    draw.rectangle(box, outline=TEXT, width=ss)
    font = _font(13 * ss)
    for value in np.linspace(vmin, vmax, 5):
        y = bottom - (value - vmin) / max(vmax - vmin, 1e-9) * steps
        draw.line([(right, y), (right + 5 * ss, y)], fill=TEXT, width=ss)
        draw.text((right + 8 * ss, y), f"{value:.1f}", fill=TEXT, font=font, anchor="lm")
    draw.text(((left + right) / 2, top - 10 * ss), "m/s", fill=TEXT, font=font, anchor="md")


def render_track_image(
    track: Track,
    trajectories: Sequence = (),
    size: tuple[int, int] = (1200, 800),
    title: str | None = None,
    speed_range: tuple[float, float] | None = None,
    boxes: Sequence[np.ndarray] = (),
) -> Image.Image:
    """The picture as a Pillow image (RGB). `speed_range` defaults to (0, max(4, fastest speed)); `boxes` are
    obstacle outlines (4, 2) in metres (``TrackObjects.rectangles()``), drawn on the road under the paths."""
    width, height = size
    if width < 64 or height < 64:
        raise ValueError(f"image size must be at least 64 x 64, got {size}")
    trajs = [_as_trajectory(t) for t in trajectories]
    ss = _SUPERSAMPLE
    img = Image.new("RGB", (width * ss, height * ss), GRASS)
    draw = ImageDraw.Draw(img)
    show_bar = any(t.colour is None for t in trajs)
    header = max(0, round(height * 0.07)) if title != "" else 0
    bar_w = round(min(110, width * 0.12)) if show_bar else 0
    box = (6 * ss, (header + 4) * ss, (width - bar_w - 6) * ss, (height - 6) * ss)
    view = _View(track, box)
    _draw_track(draw, track, view)
    for corners in boxes:
        draw.polygon(view(np.asarray(corners)), fill=BOX, outline=BORDER, width=ss)
    if trajs:
        vmin, vmax = speed_range or (0.0, max(4.0, max(float(t.speed.max(initial=0.0)) for t in trajs)))
        line_w = max(2, round(0.035 * view.scale))
        for traj in trajs:
            if len(traj.xy) < 2:
                continue
            pts = view(traj.xy)
            colours = speed_colour((traj.speed[:-1] + traj.speed[1:]) / 2, vmin, vmax)
            for k in range(len(pts) - 1):
                fill = traj.colour or tuple(int(c) for c in colours[k])
                draw.line([pts[k], pts[k + 1]], fill=fill, width=line_w)
        font = _font(12 * ss)
        if show_bar:
            bar_left = (width - bar_w + 10) * ss
            bar_box = (bar_left, int(height * 0.2) * ss, bar_left + 18 * ss, int(height * 0.8) * ss)
            _draw_colour_bar(draw, bar_box, vmin, vmax, ss)
            labels = [(t.label, TEXT) for t in trajs if t.label]
            legend = (bar_left, int(height * 0.84))
        else:  # one colour per path: the legend names them in their colours, top left
            labels = [(t.label, t.colour) for t in trajs if t.label]
            legend = (12 * ss, header + 10)
        for i, (label, colour) in enumerate(labels[:6]):
            draw.text((legend[0], (legend[1] + 16 * i) * ss), label, fill=colour, font=font)
    if header:
        text = title if title is not None else f"{track.title} — {track.length:.2f} m"
        draw.text(
            (12 * ss, (header // 2 + 4) * ss), text, fill=TEXT, font=_font(round(header * 0.55) * ss), anchor="lm"
        )
    return img.resize((width, height), Image.Resampling.LANCZOS)


def render_track_png(
    track: Track,
    path_or_buffer: str | os.PathLike | BinaryIO,
    trajectories: Sequence = (),
    size: tuple[int, int] = (1200, 800),
    title: str | None = None,
    speed_range: tuple[float, float] | None = None,
    boxes: Sequence[np.ndarray] = (),
) -> None:
    """Write a top-down PNG of `track` with optional speed-coloured trajectories (and obstacle boxes).

    `trajectories`: items `Trajectory(xy, speed, label)` or tuples `(xy (T, 2), speed (T,)[, label])`."""
    img = render_track_image(track, trajectories, size=size, title=title, speed_range=speed_range, boxes=boxes)
    img.save(path_or_buffer, format="PNG", optimize=False)


def track_preview_png(track: Track, size: tuple[int, int] = (480, 320), boxes: Sequence[np.ndarray] = ()) -> bytes:
    """A small PNG (bytes) of the track (and its obstacle boxes) for the league server's track and race pages."""
    buf = io.BytesIO()
    render_track_image(track, size=size, title="", boxes=boxes).save(buf, format="PNG")
    return buf.getvalue()
