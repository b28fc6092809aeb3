"""The floor the cameras look at: a top-down grey raster of a track, with mipmaps, memoised per track.

The raster is drawn once (road, white borders, dashed yellow centre line, off-track turf, a subtle
texture), then halved three times (2x2 means) so that far-away pixels, whose footprint on the floor
covers many centimetres, sample a pre-averaged level instead of flickering between lines and road.
All levels are stacked vertically in ONE array with the same row stride, so a camera turns any
(level, row, col) into a single flat index and a frame is one ``np.take``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

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

METRES_PER_PIXEL = 0.01  # level 0
LEVELS = 4  # 1, 2, 4, 8 cm per pixel
FAR_M = 8.0  # floor farther than this from the camera is haze
SAFE_M = 2.0  # cars within this distance of the track's bounding box never sample outside the raster
MARGIN_M = FAR_M + SAFE_M
BORDER_WIDTH_M, CENTRE_WIDTH_M, DASH_M = 0.05, 0.03, 0.15
TEXTURE_SEED = 2019
CACHE_KEY = "sensors.floor_raster"


@dataclass(frozen=True)
class FloorRaster:
    pixels: np.ndarray  # (rows, stride) uint8: level 0 on top, then the smaller levels, then a haze row
    x0: float  # world x of column 0 (level 0 pixel edges)
    y0: float  # world y of row 0
    stride: int  # row stride of the stacked array = width of level 0
    level_rows: tuple[int, ...]  # first row of each level in `pixels`
    level_shapes: tuple[tuple[int, int], ...]  # (rows, cols) of each level
    haze_row: int  # a row filled with HAZE: pixels that see no floor point here

    @property
    def flat(self) -> np.ndarray:
        return self.pixels.reshape(-1)

    def safe_box(self) -> tuple[float, float, float, float]:
        """Car positions inside this box never make a camera sample outside the raster."""
        inset = FAR_M + 0.5
        rows, cols = self.level_shapes[0]
        return (
            self.x0 + inset,
            self.y0 + inset,
            self.x0 + cols * METRES_PER_PIXEL - inset,
            self.y0 + rows * METRES_PER_PIXEL - inset,
        )


def floor_raster(track) -> FloorRaster:
    """The floor raster of `track`, built on first use and memoised in ``track.cache``."""
    cached = track.cache.get(CACHE_KEY)
    if cached is None:
        cached = _build(track)
        track.cache[CACHE_KEY] = cached
    return cached


def _build(track) -> FloorRaster:
    xmin, ymin, xmax, ymax = track.bounds
    x0, y0 = xmin - MARGIN_M, ymin - MARGIN_M
    block = 2 ** (LEVELS - 1)  # sizes are multiples of this so every level halves exactly
    cols = math.ceil((xmax - xmin + 2 * MARGIN_M) / METRES_PER_PIXEL / block) * block
    rows = math.ceil((ymax - ymin + 2 * MARGIN_M) / METRES_PER_PIXEL / block) * block
    levels = [_draw(track, x0, y0, cols, rows)]
    for _ in range(LEVELS - 1):
        p = levels[-1].astype(np.uint16)
        levels.append(((p[0::2, 0::2] + p[1::2, 0::2] + p[0::2, 1::2] + p[1::2, 1::2] + 2) // 4).astype(np.uint8))
    level_rows, row = [], 0
    for level in levels:
        level_rows.append(row)
        row += level.shape[0]
    pixels = np.full((row + 1, cols), HAZE, dtype=np.uint8)
    for start, level in zip(level_rows, levels, strict=True):
        pixels[start : start + level.shape[0], : level.shape[1]] = level
    return FloorRaster(
        pixels=pixels,
        x0=x0,
        y0=y0,
        stride=cols,
        level_rows=tuple(level_rows),
        level_shapes=tuple(level.shape for level in levels),
        haze_row=row,
    )


def _draw(track, x0: float, y0: float, cols: int, rows: int) -> np.ndarray:
    image = Image.new("L", (cols, rows), TURF)
    draw = ImageDraw.Draw(image)

    def px(points: np.ndarray) -> list[tuple[float, float]]:
        return [((p[0] - x0) / METRES_PER_PIXEL, (p[1] - y0) / METRES_PER_PIXEL) for p in points]

    # The road is the band between the borders: fill the larger ring with road, then the smaller with turf.
    inner, outer = px(track.inner), px(track.outer)
    if _area(track.inner) > _area(track.outer):
        inner, outer = outer, inner
    draw.polygon(outer, fill=ROAD)
    draw.polygon(inner, fill=TURF)
    border_px = max(1, round(BORDER_WIDTH_M / METRES_PER_PIXEL))
    for line in (inner, outer):
        draw.line(line + line[:1], fill=BORDER, width=border_px, joint="curve")
    _dashed(draw, px(track.center), DASH_M / METRES_PER_PIXEL, max(1, round(CENTRE_WIDTH_M / METRES_PER_PIXEL)))
    pixels = np.asarray(image, dtype=np.int16)  # row = y index, column = x index

    # Subtle texture: fine grain everywhere plus soft blotches (4 cm cells) on the turf, blurred together
    # with the line edges (anti-aliasing) so nothing looks blocky up close.
    rng = np.random.default_rng(TEXTURE_SEED)
    grain = rng.integers(-6, 7, size=pixels.shape, dtype=np.int16)
    blotches = rng.integers(-8, 9, size=(rows // 4 + 1, cols // 4 + 1), dtype=np.int16)
    blotches = np.repeat(np.repeat(blotches, 4, axis=0), 4, axis=1)[:rows, :cols]
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
