"""The floor the cameras look at: a top-down grey raster of a track, with mipmaps, memoised per track.

The raster is drawn once (road, white borders, dashed yellow centre line, off-track turf, a subtle
texture), then halved three times (2x2 means) so that far-away pixels, whose footprint on the floor
covers many centimetres, sample a pre-averaged level instead of flickering between lines and road.
All levels are stacked vertically in ONE array with the same row stride, so a camera turns any
(level, row, col) into a single flat index and a frame is one ``np.take``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def gray(r: int, g: int, b: int) -> int:
    """DeepRacer's RGB -> Y, truncated like the simapp's ``astype(uint8)``."""
    return int(0.2989 * r + 0.587 * g + 0.114 * b)


ROAD = gray(62, 64, 68)  # dark asphalt
TURF = gray(96, 150, 96)  # off-track ground
BORDER = gray(248, 248, 248)  # white border lines
CENTRE = gray(250, 200, 40)  # dashed yellow centre line
HAZE = gray(150, 160, 156)  # far floor fades into this
SKY_TOP, SKY_HORIZON = gray(170, 200, 235), gray(214, 224, 236)

FINE_M_PER_PX = 0.005  # level 0: only near the cars, where a camera pixel covers a few millimetres
FINE_REACH_M = 0.8  # cameras use level 0 only for floor points this close to the car origin
METRES_PER_PIXEL = 0.01  # level 1; levels 2.. halve it (2, 4, 8 cm per pixel)
COARSE_LEVELS = 4
LEVELS = 1 + COARSE_LEVELS
FAR_M = 8.0  # floor farther than this from the camera is haze
SAFE_M = 2.0  # cars within this distance of the track's bounding box never sample outside a level
BORDER_WIDTH_M, CENTRE_WIDTH_M, DASH_M = 0.05, 0.03, 0.15
TEXTURE_SEED = 2019
CACHE_KEY = "sensors.floor_raster"
# A raster saved for another process (the worker draws it once per track, the sandboxed runner maps it): the pixels
# as a plain .npy, the layout as JSON naming the track it was drawn for.
PIXELS_FILE, LAYOUT_FILE = "floor_pixels.npy", "floor_layout.json"


@dataclasses.dataclass(frozen=True)
class Level:
    metres_per_pixel: float
    x0: float  # world x of column 0's left edge
    y0: float  # world y of row 0's lower edge
    row: int  # first row of this level in the stacked pixels
    rows: int
    cols: int


@dataclasses.dataclass(frozen=True)
class FloorRaster:
    pixels: np.ndarray  # (rows, stride) uint8: the levels stacked vertically, then one haze row
    stride: int  # row stride of the stacked array (the widest level)
    levels: tuple[Level, ...]  # finest first
    haze_row: int  # a row filled with HAZE: pixels that see no floor point here
    bounds: tuple[float, float, float, float]  # the track's bounding box

    @property
    def flat(self) -> np.ndarray:
        return self.pixels.reshape(-1)

    def safe_box(self) -> tuple[float, float, float, float]:
        """Car positions inside this box never make a camera sample outside a level."""
        xmin, ymin, xmax, ymax = self.bounds
        return xmin - SAFE_M, ymin - SAFE_M, xmax + SAFE_M, ymax + SAFE_M


def floor_raster(track) -> FloorRaster:
    """The floor raster of `track`, built on first use and memoised in ``track.cache``."""
    cached = track.cache.get(CACHE_KEY)
    if cached is None:
        cached = _build(track)
        track.cache[CACHE_KEY] = cached
    return cached


def floor_raster_drawn(track) -> bool:
    """Whether ``floor_raster(track)`` is at hand (drawn or loaded) rather than to be drawn."""
    return CACHE_KEY in track.cache


def track_fingerprint(track) -> str:
    """What a floor raster depends on: the track's rows in driving order (the centre line's dashes follow it)."""
    return hashlib.sha256(np.ascontiguousarray(track.waypoints, dtype=np.float64).tobytes()).hexdigest()


def save_floor_raster(track, folder: str | Path) -> None:
    """Write ``floor_raster(track)`` into ``folder`` for ``load_floor_raster`` in another process."""
    raster = floor_raster(track)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / PIXELS_FILE, raster.pixels, allow_pickle=False)
    layout = {"track": track_fingerprint(track), "stride": raster.stride, "haze_row": raster.haze_row,
              "bounds": list(raster.bounds), "levels": [list(dataclasses.astuple(level)) for level in raster.levels]}
    (folder / LAYOUT_FILE).write_text(json.dumps(layout), encoding="utf-8")


def load_floor_raster(track, folder: str | Path) -> FloorRaster | None:
    """The raster ``save_floor_raster`` wrote for this very track, memoised like ``floor_raster``; None if ``folder``
    holds none, or one for another track or of another shape (then the caller draws it)."""
    folder = Path(folder)
    try:
        layout = json.loads((folder / LAYOUT_FILE).read_text(encoding="utf-8"))
        if layout["track"] != track_fingerprint(track):
            return None
        pixels = np.load(folder / PIXELS_FILE, mmap_mode="r", allow_pickle=False)
        levels = tuple(Level(float(m), float(x), float(y), int(r), int(n), int(c))
                       for m, x, y, r, n, c in layout["levels"])
        raster = FloorRaster(pixels=pixels, stride=int(layout["stride"]), levels=levels,
                             haze_row=int(layout["haze_row"]), bounds=tuple(float(b) for b in layout["bounds"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if pixels.dtype != np.uint8 or pixels.shape != (raster.haze_row + 1, raster.stride) or len(levels) != LEVELS:
        return None
    track.cache[CACHE_KEY] = raster
    return raster


def _build(track) -> FloorRaster:
    xmin, ymin, xmax, ymax = track.bounds
    # Coarse levels: one 1 cm drawing halved repeatedly (sizes are multiples of 2**(COARSE_LEVELS-1)).
    margin = SAFE_M + FAR_M + 0.5
    block = 2 ** (COARSE_LEVELS - 1)
    x0, y0 = xmin - margin, ymin - margin
    cols = math.ceil((xmax - xmin + 2 * margin) / METRES_PER_PIXEL / block) * block
    rows = math.ceil((ymax - ymin + 2 * margin) / METRES_PER_PIXEL / block) * block
    grain = np.random.default_rng(TEXTURE_SEED).integers(-6, 7, size=(rows, cols), dtype=np.int16)
    coarse = [_draw(track, x0, y0, METRES_PER_PIXEL, cols, rows, grain)]
    for _ in range(COARSE_LEVELS - 1):
        p = coarse[-1].astype(np.uint16)
        coarse.append(((p[0::2, 0::2] + p[1::2, 0::2] + p[0::2, 1::2] + p[1::2, 1::2] + 2) // 4).astype(np.uint8))
    # Fine level: drawn at 5 mm over a smaller box, with the 1 cm grain upsampled so textures agree.
    fine_margin = SAFE_M + FINE_REACH_M + 0.2
    fx0 = x0 + math.floor((margin - fine_margin) / METRES_PER_PIXEL) * METRES_PER_PIXEL
    fy0 = y0 + math.floor((margin - fine_margin) / METRES_PER_PIXEL) * METRES_PER_PIXEL
    c_off, r_off = round((fx0 - x0) / METRES_PER_PIXEL), round((fy0 - y0) / METRES_PER_PIXEL)
    fcols_1cm = math.ceil((xmax - fx0 + fine_margin) / METRES_PER_PIXEL)
    frows_1cm = math.ceil((ymax - fy0 + fine_margin) / METRES_PER_PIXEL)
    fine_grain = np.repeat(np.repeat(grain[r_off : r_off + frows_1cm, c_off : c_off + fcols_1cm], 2, 0), 2, 1)
    fine = _draw(track, fx0, fy0, FINE_M_PER_PX, 2 * fcols_1cm, 2 * frows_1cm, fine_grain)

    images = [fine, *coarse]
    origins = [(fx0, fy0, FINE_M_PER_PX)] + [(x0, y0, METRES_PER_PIXEL * 2**i) for i in range(COARSE_LEVELS)]
    stride = max(image.shape[1] for image in images)
    levels, row = [], 0
    for image, (lx, ly, resolution) in zip(images, origins, strict=True):
        levels.append(Level(resolution, lx, ly, row, image.shape[0], image.shape[1]))
        row += image.shape[0]
    pixels = np.full((row + 1, stride), HAZE, dtype=np.uint8)
    for image, level in zip(images, levels, strict=True):
        pixels[level.row : level.row + level.rows, : level.cols] = image
    return FloorRaster(pixels=pixels, stride=stride, levels=tuple(levels), haze_row=row,
                       bounds=(xmin, ymin, xmax, ymax))


def _draw(track, x0: float, y0: float, resolution: float, cols: int, rows: int, grain: np.ndarray) -> np.ndarray:
    """The floor over [x0, x0 + cols * resolution) x [y0, y0 + rows * resolution); row = y, column = x."""
    image = Image.new("L", (cols, rows), TURF)
    draw = ImageDraw.Draw(image)

    def px(points: np.ndarray) -> list[tuple[float, float]]:
        return [((p[0] - x0) / resolution, (p[1] - y0) / resolution) for p in points]

    # The road is the band between the borders: fill the larger ring with road, then the smaller with turf.
    inner, outer = px(track.inner), px(track.outer)
    if _area(track.inner) > _area(track.outer):
        inner, outer = outer, inner
    draw.polygon(outer, fill=ROAD)
    draw.polygon(inner, fill=TURF)
    border_px = max(1, round(BORDER_WIDTH_M / resolution))
    for line in (inner, outer):
        draw.line(line + line[:1], fill=BORDER, width=border_px, joint="curve")
    _dashed(draw, px(track.center), DASH_M / resolution, max(1, round(CENTRE_WIDTH_M / resolution)))
    pixels = np.asarray(image, dtype=np.int16)

    # Subtle texture: the fine grain everywhere plus soft 4 cm blotches on the turf (seeded from the
    # position, so every level agrees), blurred together with the line edges (anti-aliasing).
    cells_x = np.floor((x0 + (np.arange(cols) + 0.5) * resolution) / 0.04).astype(np.int64)
    cells_y = np.floor((y0 + (np.arange(rows) + 0.5) * resolution) / 0.04).astype(np.int64)
    table = np.random.default_rng(TEXTURE_SEED + 1).integers(-8, 9, size=(512, 512), dtype=np.int16)
    blotches = table[(cells_y % 512)[:, None], (cells_x % 512)[None, :]]
    pixels += grain + np.where(pixels == TURF, blotches, 0).astype(np.int16)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).filter(ImageFilter.BoxBlur(1))
    return np.asarray(image, dtype=np.uint8)


def _area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2


def _dashed(draw: ImageDraw.ImageDraw, points: list[tuple[float, float]], dash: float, width: int) -> None:
    """Dashes of length `dash` pixels (gaps the same) along the polyline."""
    carried, on = 0.0, True
    for (ax, ay), (bx, by) in itertools.pairwise(points):
        length = math.hypot(bx - ax, by - ay)
        position = 0.0
        while position < length:
            step = min(dash - carried, length - position)
            if on:
                t0, t1 = position / length, (position + step) / length
                draw.line([(ax + (bx - ax) * t0, ay + (by - ay) * t0), (ax + (bx - ax) * t1, ay + (by - ay) * t1)],
                          fill=CENTRE, width=width)
            position += step
            carried += step
            if carried >= dash - 1e-9:
                carried, on = 0.0, not on
