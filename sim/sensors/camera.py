"""Front-facing (and stereo) camera: the ground plane seen through DeepRacer's camera, rendered in numpy.

Geometry (SPEC §4): 160x120 pixels, horizontal FOV 1.13 rad, lens 0.145 m ahead of and 0.130 m above the
car origin, pitched 15° down. Each pixel's ray is fixed in the car frame, so its ground point (where the ray
meets the floor) is precomputed once; a frame is then one rotation + translation of those points per car and
a gather from a top-down raster of the track (road, white borders, dashed centre line, carpet). Rays above
the horizon, or meeting the floor beyond ``FAR_M``, show the wall/sky gradient.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from gymnasium import spaces
from PIL import Image, ImageDraw

WIDTH, HEIGHT = 160, 120
HORIZONTAL_FOV = 1.13
MOUNT_FORWARD, MOUNT_HEIGHT, PITCH = 0.145, 0.130, math.radians(15.0)
STEREO_BASELINE = 0.06
FAR_M = 12.0
RASTER_M_PER_PX = 0.01
MARGIN_M = FAR_M + 1.0


def _gray(r: int, g: int, b: int) -> int:
    return int(0.2989 * r + 0.587 * g + 0.114 * b)  # truncation, like the simapp's astype(uint8)


CARPET = _gray(58, 112, 64)  # green mat around the track
ROAD = _gray(52, 54, 58)
BORDER = _gray(245, 245, 245)
CENTRE = _gray(238, 200, 40)  # DeepRacer's dashed yellow centre line
WALL_TOP, WALL_BOTTOM = _gray(200, 214, 230), _gray(150, 160, 172)
BORDER_WIDTH_M, CENTRE_WIDTH_M, DASH_M = 0.05, 0.025, 0.15


def ground_raster(track) -> tuple[np.ndarray, float, float]:
    """(raster uint8 (H, W), x0, y0): a 1 cm/px top-down picture of the floor, memoised on the track."""
    cached = track.cache.get("camera_raster")
    if cached is not None:
        return cached
    xmin, ymin, xmax, ymax = track.bounds
    x0, y0 = xmin - MARGIN_M, ymin - MARGIN_M
    width = math.ceil((xmax - xmin + 2 * MARGIN_M) / RASTER_M_PER_PX)
    height = math.ceil((ymax - ymin + 2 * MARGIN_M) / RASTER_M_PER_PX)
    image = Image.new("L", (width, height), CARPET)
    draw = ImageDraw.Draw(image)

    def px(points: np.ndarray) -> list[tuple[float, float]]:
        return [((p[0] - x0) / RASTER_M_PER_PX, (p[1] - y0) / RASTER_M_PER_PX) for p in points]

    draw.polygon(px(track.outer), fill=ROAD)
    draw.polygon(px(track.inner), fill=CARPET)
    border_px = max(1, round(BORDER_WIDTH_M / RASTER_M_PER_PX))
    for line in (track.outer, track.inner):
        draw.line(px(line), fill=BORDER, width=border_px, joint="curve")
    _dashed(draw, px(track.center), DASH_M / RASTER_M_PER_PX, max(1, round(CENTRE_WIDTH_M / RASTER_M_PER_PX)))
    raster = np.asarray(image, dtype=np.uint8)  # row = y index, column = x index
    track.cache["camera_raster"] = (raster, x0, y0)
    return raster, x0, y0


def _dashed(draw: ImageDraw.ImageDraw, points: list[tuple[float, float]], dash: float, width: int) -> None:
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


def _pixel_ground_points(lateral_offset: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel ground point in the car frame (float32), the mask of pixels that see the floor, and the
    background shade of the others."""
    focal = (WIDTH / 2) / math.tan(HORIZONTAL_FOV / 2)
    u = (np.arange(WIDTH) + 0.5 - WIDTH / 2) / focal
    v = (np.arange(HEIGHT) + 0.5 - HEIGHT / 2) / focal
    uu, vv = np.meshgrid(u, v)
    forward = np.array([math.cos(PITCH), 0.0, -math.sin(PITCH)])
    down = np.array([-math.sin(PITCH), 0.0, -math.cos(PITCH)])
    right = np.array([0.0, -1.0, 0.0])
    rays = forward + uu[..., None] * right + vv[..., None] * down
    t = MOUNT_HEIGHT / np.maximum(-rays[..., 2], 1e-9)
    gx = MOUNT_FORWARD + t * rays[..., 0]
    gy = lateral_offset + t * rays[..., 1]
    sees_floor = (rays[..., 2] < 0) & (np.hypot(gx, gy) < FAR_M)
    shade = np.linspace(WALL_TOP, WALL_BOTTOM, HEIGHT)[:, None].repeat(WIDTH, axis=1)
    return gx.astype(np.float32), gy.astype(np.float32), sees_floor, shade.astype(np.uint8)


class _GroundCamera:
    def __init__(self, lateral_offset: float) -> None:
        gx, gy, self.sees_floor, self.background = _pixel_ground_points(lateral_offset)
        self.gx, self.gy = gx[self.sees_floor], gy[self.sees_floor]

    def render(self, track, x: np.ndarray, y: np.ndarray, yaw: np.ndarray) -> np.ndarray:
        raster, x0, y0 = ground_raster(track)
        n = len(x)
        cos = np.cos(yaw).astype(np.float32)[:, None]
        sin = np.sin(yaw).astype(np.float32)[:, None]
        scale = np.float32(1.0 / RASTER_M_PER_PX)
        wx = ((x.astype(np.float32)[:, None] - np.float32(x0)) + self.gx * cos - self.gy * sin) * scale
        wy = ((y.astype(np.float32)[:, None] - np.float32(y0)) + self.gx * sin + self.gy * cos) * scale
        col = np.clip(wx.astype(np.int32), 0, raster.shape[1] - 1)
        row = np.clip(wy.astype(np.int32), 0, raster.shape[0] - 1)
        frames = np.broadcast_to(self.background, (n, HEIGHT, WIDTH)).copy()
        frames[:, self.sees_floor] = raster[row, col]
        return frames


class FrontFacingCamera:
    name = "FRONT_FACING_CAMERA"

    def __init__(self) -> None:
        self._camera = _GroundCamera(0.0)
        self.observation_space = spaces.Box(0, 255, (HEIGHT, WIDTH, 1), np.uint8)

    def observe(self, track, x: np.ndarray, y: np.ndarray, yaw: np.ndarray, objects=None) -> np.ndarray:
        return self._camera.render(track, x, y, yaw)[..., None]


class StereoCameras:
    name = "STEREO_CAMERAS"

    def __init__(self) -> None:
        self._left = _GroundCamera(STEREO_BASELINE / 2)
        self._right = _GroundCamera(-STEREO_BASELINE / 2)
        self.observation_space = spaces.Box(0, 255, (HEIGHT, WIDTH, 2), np.uint8)

    def observe(self, track, x: np.ndarray, y: np.ndarray, yaw: np.ndarray, objects=None) -> np.ndarray:
        return np.stack([self._left.render(track, x, y, yaw), self._right.render(track, x, y, yaw)], axis=-1)
