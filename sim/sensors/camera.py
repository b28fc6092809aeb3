"""Front-facing and stereo cameras: DeepRacer's pinhole camera over the track's floor, in numpy.

Geometry (SPEC §4, research/simapp.md §3): 160x120 pixels, horizontal FOV 1.13 rad, lens 0.145 m ahead
of and 0.130 m above the car origin, pitched 15° down; stereo = two such lenses at y = ±0.03 m.

How a frame is made, batched over N cars:
1. Once per camera: each pixel's ray in the car frame and where it meets the floor (car frame), the
   mipmap level matching the pixel's footprint there, packed as a (4, pixels) feature matrix.
2. Per step: ONE matmul of the cars' (2N, 4) pose matrix with those features gives every pixel's
   (row, column) in the ground raster (`sim.sensors.floor`), then one ``np.take`` gathers the frame.
   Rows above the horizon are sky; floor farther than ``FAR_M`` fades into haze.
3. Objects (boxes, other cars: upright oriented boxes with heights) are ray-cast per (car, object)
   pair, only inside the object's projected bounding rectangle, with a depth buffer.
"""

from __future__ import annotations

import math

import numpy as np
from gymnasium import spaces

from sim.sensors.base import as_poses
from sim.sensors.bodies import Bodies, as_bodies
from sim.sensors.floor import (
    FAR_M,
    HAZE,
    LEVELS,
    METRES_PER_PIXEL,
    SKY_HORIZON,
    SKY_TOP,
    FloorRaster,
    floor_raster,
)

WIDTH, HEIGHT = 160, 120
HORIZONTAL_FOV = 1.13
MOUNT_FORWARD, MOUNT_HEIGHT = 0.145, 0.130
PITCH = math.radians(15.0)
STEREO_BASELINE = 0.06
FOCAL = (WIDTH / 2) / math.tan(HORIZONTAL_FOV / 2)  # pixels
FOG_START_M = 4.0
LIGHT = np.array([0.6, 0.8])  # world direction the object faces are lit from (unit)
EDGE_M = 0.012  # dark outline width on object edges

# Camera axes in the car frame (x forward, y left, z up).
_FORWARD = np.array([math.cos(PITCH), 0.0, -math.sin(PITCH)])
_RIGHT = np.array([0.0, -1.0, 0.0])
_DOWN = np.array([-math.sin(PITCH), 0.0, -math.cos(PITCH)])


def pixel_rays() -> np.ndarray:
    """(HEIGHT, WIDTH, 3) ray direction of each pixel centre in the car frame (not normalised)."""
    u = (np.arange(WIDTH) + 0.5 - WIDTH / 2) / FOCAL
    v = (np.arange(HEIGHT) + 0.5 - HEIGHT / 2) / FOCAL
    uu, vv = np.meshgrid(u, v)
    return _FORWARD + uu[..., None] * _RIGHT + vv[..., None] * _DOWN


def horizon_row() -> int:
    """First pixel row whose centre ray points below the horizontal (rows above it show sky)."""
    return int(np.argmax(pixel_rays()[:, 0, 2] < 0))


class _Rig:
    """One or more lenses at lateral offsets (metres, +left) rendering interleaved channels."""

    def __init__(self, lateral_offsets: tuple[float, ...]) -> None:
        self.offsets = lateral_offsets
        self.channels = len(lateral_offsets)
        self.rays = pixel_rays()
        self.first_floor_row = horizon_row()
        rays = self.rays[self.first_floor_row :]
        t = MOUNT_HEIGHT / -rays[..., 2]
        self._ground_forward = MOUNT_FORWARD + t * rays[..., 0]  # (rows, WIDTH), independent of the lens
        self._ground_left = t * rays[..., 1]
        self._distance = t * np.hypot(rays[..., 0], rays[..., 1])
        self._level = self._mip_levels()
        sky = np.linspace(SKY_TOP, SKY_HORIZON, self.first_floor_row).astype(np.uint8)
        self._sky = np.repeat(sky, WIDTH * self.channels)  # row-major (row, col, channel)
        fog = np.clip((self._distance - FOG_START_M) / (FAR_M - FOG_START_M), 0.0, 1.0)
        fog_rows = int(np.max(np.nonzero(fog.max(axis=1) > 0)[0], initial=-1)) + 1
        self._fog = np.repeat(fog[:fog_rows].reshape(-1), self.channels).astype(np.float32)

    def _mip_levels(self) -> np.ndarray:
        """Per floor pixel, the raster level whose texel best matches the pixel's footprint."""
        d_row = np.hypot(np.gradient(self._ground_forward, axis=0), np.gradient(self._ground_left, axis=0))
        d_col = np.hypot(np.gradient(self._ground_forward, axis=1), np.gradient(self._ground_left, axis=1))
        footprint = np.sqrt(d_row * d_col)  # geometric mean: sharp across, slightly aliased along the view
        return np.clip(np.floor(np.log2(footprint / METRES_PER_PIXEL)), 0, LEVELS - 1).astype(np.int64)

    def _features(self, raster: FloorRaster) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(4, P) float32 features (P = floor pixels x channels) for this raster, and per-pixel row/col bounds."""
        rows = len(self._level)
        features = np.zeros((rows, WIDTH, self.channels, 4))
        scale = 1.0 / (METRES_PER_PIXEL * 2.0 ** self._level)
        level_rows = np.array(raster.level_rows)[self._level]
        sees_floor = self._distance < FAR_M
        for channel, offset in enumerate(self.offsets):
            features[:, :, channel, 0] = self._ground_forward * scale
            features[:, :, channel, 1] = (self._ground_left + offset) * scale
            features[:, :, channel, 2] = scale
            features[:, :, channel, 3] = level_rows
        features[~sees_floor] = (0.0, 0.0, 0.0, raster.haze_row)
        shapes = np.array(raster.level_shapes)[self._level]
        row_lo = np.where(sees_floor, level_rows, raster.haze_row)
        row_hi = np.where(sees_floor, level_rows + shapes[..., 0] - 1, raster.haze_row)
        col_hi = np.where(sees_floor, shapes[..., 1] - 1, 0)
        per_pixel = [np.repeat(a.reshape(-1), self.channels).astype(np.int32) for a in (row_lo, row_hi, col_hi)]
        return features.reshape(-1, 4).T.astype(np.float32).copy(), np.stack(per_pixel[:2]), per_pixel[2]

    def render(self, track, x: np.ndarray, y: np.ndarray, yaw: np.ndarray, objects: Bodies) -> np.ndarray:
        """(N, HEIGHT, WIDTH, channels) uint8 frames."""
        raster = floor_raster(track)
        key = ("sensors.camera_features", self.offsets)
        if key not in track.cache:
            track.cache[key] = self._features(raster)
        features, row_bounds, col_hi = track.cache[key]

        n = len(x)
        cos, sin = np.cos(yaw), np.sin(yaw)
        poses = np.empty((2 * n, 4), dtype=np.float32)  # rows 0..N-1 -> raster column, N..2N-1 -> raster row
        poses[:n, 0], poses[:n, 1], poses[:n, 2], poses[:n, 3] = cos, -sin, x - raster.x0, 0.0
        poses[n:, 0], poses[n:, 1], poses[n:, 2], poses[n:, 3] = sin, cos, y - raster.y0, 1.0
        coordinates = (poses @ features).astype(np.int32)
        cols, rows = coordinates[:n], coordinates[n:]
        xmin, ymin, xmax, ymax = raster.safe_box()
        outside = (x < xmin) | (x > xmax) | (y < ymin) | (y > ymax)
        if outside.any():  # rare: far off the track; clamp so every pixel samples inside its level
            cols[outside] = np.clip(cols[outside], 0, col_hi)
            rows[outside] = np.clip(rows[outside], row_bounds[0], row_bounds[1])
        rows *= raster.stride
        rows += cols

        frames = np.empty((n, HEIGHT * WIDTH * self.channels), dtype=np.uint8)
        sky = len(self._sky)
        frames[:, :sky] = self._sky
        np.take(raster.flat, rows, out=frames[:, sky:], mode="clip")
        fogged = frames[:, sky : sky + len(self._fog)]
        haze = np.float32(HAZE)
        fogged[:] = fogged + self._fog * (haze - fogged)
        frames = frames.reshape(n, HEIGHT, WIDTH, self.channels)
        if len(objects):
            self._draw_objects(frames, x, y, yaw, objects)
        return frames

    def _draw_objects(self, frames: np.ndarray, x: np.ndarray, y: np.ndarray, yaw: np.ndarray, bodies: Bodies) -> None:
        depth = {}
        corners = bodies.corners()
        for channel, offset in enumerate(self.offsets):
            lens_x = x + np.cos(yaw) * MOUNT_FORWARD - np.sin(yaw) * offset
            lens_y = y + np.sin(yaw) * MOUNT_FORWARD + np.cos(yaw) * offset
            for k in range(len(bodies)):
                for car in self._cars_that_may_see(lens_x, lens_y, bodies, k):
                    rect = _screen_rect(lens_x[car], lens_y[car], yaw[car], corners[k], bodies.heights[k])
                    if rect is None or bodies.owners[k] == car:
                        continue
                    zbuf = depth.setdefault((car, channel), np.full((HEIGHT, WIDTH), np.inf))
                    self._cast(frames[car, ..., channel], zbuf, rect, lens_x[car], lens_y[car], yaw[car], bodies, k)

    @staticmethod
    def _cars_that_may_see(lens_x: np.ndarray, lens_y: np.ndarray, bodies: Bodies, k: int) -> np.ndarray:
        reach = FAR_M + math.hypot(bodies.lengths[k], bodies.widths[k]) / 2
        near = np.hypot(bodies.centres[k, 0] - lens_x, bodies.centres[k, 1] - lens_y) < reach
        return np.nonzero(near)[0]

    def _cast(self, image: np.ndarray, zbuf: np.ndarray, rect: tuple[int, int, int, int], lens_x: float,
              lens_y: float, yaw: float, bodies: Bodies, k: int) -> None:
        """Ray-cast body k (slab method in the body's frame) over the pixels of `rect` of one image."""
        r0, r1, c0, c1 = rect
        rays = self.rays[r0:r1, c0:c1]
        psi = bodies.yaws[k]
        half = np.array([bodies.lengths[k] / 2, bodies.widths[k] / 2])
        dx, dy = lens_x - bodies.centres[k, 0], lens_y - bodies.centres[k, 1]
        origin = np.array([dx * math.cos(psi) + dy * math.sin(psi), -dx * math.sin(psi) + dy * math.cos(psi),
                           MOUNT_HEIGHT])
        delta = yaw - psi
        direction = np.stack([
            math.cos(delta) * rays[..., 0] - math.sin(delta) * rays[..., 1],
            math.sin(delta) * rays[..., 0] + math.cos(delta) * rays[..., 1],
            rays[..., 2],
        ], axis=-1)
        direction = np.where(np.abs(direction) < 1e-12, 1e-12, direction)
        low = np.array([-half[0], -half[1], 0.0])
        high = np.array([half[0], half[1], bodies.heights[k]])
        t1, t2 = (low - origin) / direction, (high - origin) / direction
        entry = np.minimum(t1, t2)
        near, far = entry.max(axis=-1), np.maximum(t1, t2).min(axis=-1)
        hit = (near <= far) & (near > 0) & (near < zbuf[r0:r1, c0:c1])
        if not hit.any():
            return
        face = entry.argmax(axis=-1)  # 0/1: a side facing ±x/±y of the body, 2: the top
        point = origin + near[..., None] * direction
        normal_angle = psi + np.where(face == 0, 0.0, math.pi / 2)
        lit = np.abs(np.cos(normal_angle) * LIGHT[0] + np.sin(normal_angle) * LIGHT[1])
        shade = bodies.shades[k] * np.where(face == 2, 1.1, 0.6 + 0.4 * lit)
        margin = np.abs(np.stack([np.abs(point[..., 0]) - half[0], np.abs(point[..., 1]) - half[1],
                                  np.minimum(point[..., 2], bodies.heights[k] - point[..., 2])], axis=-1))
        margin[np.arange(3) == face[..., None]] = np.inf  # distance to the edges of the face that was hit
        shade = np.where(margin.min(axis=-1) < EDGE_M, shade * 0.45, shade)
        image[r0:r1, c0:c1][hit] = np.clip(shade[hit], 0, 255).astype(np.uint8)
        zbuf[r0:r1, c0:c1][hit] = near[hit]


def _screen_rect(lens_x: float, lens_y: float, yaw: float, corners: np.ndarray,
                 height: float) -> tuple[int, int, int, int] | None:
    """Pixel rectangle (row0, row1, col0, col1) bounding a body's projection; None when it is behind."""
    cos, sin = math.cos(yaw), math.sin(yaw)
    rel = corners - (lens_x, lens_y)
    ahead, left = rel[:, 0] * cos + rel[:, 1] * sin, -rel[:, 0] * sin + rel[:, 1] * cos
    points = np.concatenate([
        np.stack([ahead, left, np.full(4, -MOUNT_HEIGHT)], axis=1),
        np.stack([ahead, left, np.full(4, height - MOUNT_HEIGHT)], axis=1),
    ])
    depth = points @ _FORWARD
    if np.all(depth <= 0):
        return None
    if np.any(depth <= 1e-3):  # straddles the lens plane: its projection is unbounded
        return 0, HEIGHT, 0, WIDTH
    cols = (points @ _RIGHT) / depth * FOCAL + WIDTH / 2
    rows = (points @ _DOWN) / depth * FOCAL + HEIGHT / 2
    c0, c1 = max(0, int(cols.min()) - 1), min(WIDTH, math.ceil(cols.max()) + 1)
    r0, r1 = max(0, int(rows.min()) - 1), min(HEIGHT, math.ceil(rows.max()) + 1)
    if c0 >= c1 or r0 >= r1:
        return None
    return r0, r1, c0, c1


class FrontFacingCamera:
    """FRONT_FACING_CAMERA: (N, 120, 160, 1) uint8 grayscale frames."""

    name = "FRONT_FACING_CAMERA"

    def __init__(self) -> None:
        self._rig = _Rig((0.0,))
        self.observation_space = spaces.Box(0, 255, (HEIGHT, WIDTH, 1), np.uint8)

    def observe(self, track, x: np.ndarray, y: np.ndarray, yaw: np.ndarray, objects: object = None) -> np.ndarray:
        x, y, yaw = as_poses(x, y, yaw)
        return self._rig.render(track, x, y, yaw, as_bodies(objects))


class StereoCameras:
    """STEREO_CAMERAS: (N, 120, 160, 2) uint8, channel 0 the left lens (y = +0.03 m), 1 the right."""

    name = "STEREO_CAMERAS"

    def __init__(self) -> None:
        self._rig = _Rig((STEREO_BASELINE / 2, -STEREO_BASELINE / 2))
        self.observation_space = spaces.Box(0, 255, (HEIGHT, WIDTH, 2), np.uint8)

    def observe(self, track, x: np.ndarray, y: np.ndarray, yaw: np.ndarray, objects: object = None) -> np.ndarray:
        x, y, yaw = as_poses(x, y, yaw)
        return self._rig.render(track, x, y, yaw, as_bodies(objects))
