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
    FINE_M_PER_PX,
    FINE_REACH_M,
    HAZE,
    LEVELS,
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
        self._rays32 = np.moveaxis(self.rays, -1, 0).astype(np.float32)  # (3, HEIGHT, WIDTH) for object casts
        with np.errstate(divide="ignore"):
            self._inv_rz = (1.0 / self._rays32[2]).astype(np.float32)
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
        level = np.clip(np.floor(np.log2(footprint / FINE_M_PER_PX)), 0, LEVELS - 1).astype(np.int64)
        reach = np.hypot(self._ground_forward, np.abs(self._ground_left) + max(map(abs, self.offsets)))
        level[(level == 0) & (reach > FINE_REACH_M)] = 1  # the fine level only exists near the cars
        return level

    def _features(self, raster: FloorRaster) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(5, P) float32 features (P = floor pixels x channels) for this raster, and per-pixel row/col bounds.

        With a car's pose rows (cos, -sin, x, 1, 0) and (sin, cos, y, 0, 1), they give the pixel's raster
        column and stacked row: scale * (car-frame ground point rotated + car position - level origin)."""
        levels = raster.levels
        scale = np.array([1.0 / level.metres_per_pixel for level in levels])[self._level]
        x0 = np.array([level.x0 for level in levels])[self._level]
        y0 = np.array([level.y0 for level in levels])[self._level]
        first_row = np.array([level.row for level in levels])[self._level]
        sees_floor = self._distance < FAR_M
        features = np.zeros((len(self._level), WIDTH, self.channels, 5))
        for channel, offset in enumerate(self.offsets):
            features[:, :, channel, 0] = self._ground_forward * scale
            features[:, :, channel, 1] = (self._ground_left + offset) * scale
            features[:, :, channel, 2] = scale
            features[:, :, channel, 3] = -x0 * scale
            features[:, :, channel, 4] = -y0 * scale + first_row
        features[~sees_floor] = (0.0, 0.0, 0.0, 0.0, raster.haze_row)
        rows = np.array([level.rows for level in levels])[self._level]
        cols = np.array([level.cols for level in levels])[self._level]
        row_lo = np.where(sees_floor, first_row, raster.haze_row)
        row_hi = np.where(sees_floor, first_row + rows - 1, raster.haze_row)
        col_hi = np.where(sees_floor, cols - 1, 0)
        per_pixel = [np.repeat(a.reshape(-1), self.channels).astype(np.int32) for a in (row_lo, row_hi, col_hi)]
        return features.reshape(-1, 5).T.astype(np.float32).copy(), np.stack(per_pixel[:2]), per_pixel[2]

    def render(self, track, x: np.ndarray, y: np.ndarray, yaw: np.ndarray, objects: Bodies) -> np.ndarray:
        """(N, HEIGHT, WIDTH, channels) uint8 frames."""
        raster = floor_raster(track)
        key = ("sensors.camera_features", self.offsets)
        if key not in track.cache:
            track.cache[key] = self._features(raster)
        features, row_bounds, col_hi = track.cache[key]

        n = len(x)
        cos, sin = np.cos(yaw), np.sin(yaw)
        poses = np.zeros((2 * n, 5), dtype=np.float32)  # rows 0..N-1 -> raster column, N..2N-1 -> raster row
        poses[:n, 0], poses[:n, 1], poses[:n, 2], poses[:n, 3] = cos, -sin, x, 1.0
        poses[n:, 0], poses[n:, 1], poses[n:, 2], poses[n:, 4] = sin, cos, y, 1.0
        coordinates = (poses @ features).astype(np.int32)
        cols, rows = coordinates[:n], coordinates[n:]
        xmin, ymin, xmax, ymax = raster.safe_box()
        outside = (x < xmin) | (x > xmax) | (y < ymin) | (y > ymax)
        if outside.any():  # rare: far off the track; clamp so every pixel samples inside its own level
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
        """Ray-cast every (car, lens, body) whose projection meets the image, nearest surface wins."""
        depth: dict[tuple[int, int], np.ndarray] = {}
        for channel, offset in enumerate(self.offsets):
            lens_x = x + np.cos(yaw) * MOUNT_FORWARD - np.sin(yaw) * offset
            lens_y = y + np.sin(yaw) * MOUNT_FORWARD + np.cos(yaw) * offset
            rects = screen_rects(lens_x, lens_y, yaw, bodies)
            for car, k in zip(*np.nonzero(rects[..., 0] < rects[..., 1]), strict=True):
                zbuf = depth.setdefault((car, channel), np.full((HEIGHT, WIDTH), np.inf, dtype=np.float32))
                image = frames[car, ..., channel]
                self._cast(image, zbuf, rects[car, k], lens_x[car], lens_y[car], yaw[car], bodies, k)

    def _cast(self, image: np.ndarray, zbuf: np.ndarray, rect: np.ndarray, lens_x: float, lens_y: float, yaw: float,
              bodies: Bodies, k: int) -> None:
        """Ray-cast body k over the pixels of `rect` of one image: the slab method in the body's frame."""
        r0, r1, c0, c1 = (int(v) for v in rect)
        rx, ry = self._rays32[0, r0:r1, c0:c1], self._rays32[1, r0:r1, c0:c1]
        inv_z = self._inv_rz[r0:r1, c0:c1]
        psi = float(bodies.yaws[k])
        a, b, h = bodies.lengths[k] / 2, bodies.widths[k] / 2, float(bodies.heights[k])
        dx, dy = lens_x - bodies.centres[k, 0], lens_y - bodies.centres[k, 1]
        ox, oy = dx * math.cos(psi) + dy * math.sin(psi), -dx * math.sin(psi) + dy * math.cos(psi)
        cos_d, sin_d = np.float32(math.cos(yaw - psi)), np.float32(math.sin(yaw - psi))
        with np.errstate(divide="ignore", invalid="ignore"):
            inv_x = 1.0 / (cos_d * rx - sin_d * ry)
            inv_y = 1.0 / (sin_d * rx + cos_d * ry)
            tx1, tx2 = (-a - ox) * inv_x, (a - ox) * inv_x
            ty1, ty2 = (-b - oy) * inv_y, (b - oy) * inv_y
            tz1, tz2 = -MOUNT_HEIGHT * inv_z, (h - MOUNT_HEIGHT) * inv_z
            entry_x, entry_y, entry_z = np.minimum(tx1, tx2), np.minimum(ty1, ty2), np.minimum(tz1, tz2)
            near = np.maximum(np.maximum(entry_x, entry_y), entry_z)
            far = np.minimum(np.minimum(np.maximum(tx1, tx2), np.maximum(ty1, ty2)), np.maximum(tz1, tz2))
        window = zbuf[r0:r1, c0:c1]
        hit = (near <= far) & (near > 0) & (near < window)
        if not hit.any():
            return
        t = near[hit]
        face = np.where(entry_z[hit] == t, 2, np.where(entry_y[hit] == t, 1, 0))  # 0/1: ±x/±y side, 2: top
        px = ox + t / inv_x[hit]
        py = oy + t / inv_y[hit]
        pz = MOUNT_HEIGHT + t / inv_z[hit]
        normal_angle = psi + np.where(face == 1, math.pi / 2, 0.0)
        lit = np.abs(np.cos(normal_angle) * LIGHT[0] + np.sin(normal_angle) * LIGHT[1])
        shade = bodies.shades[k] * np.where(face == 2, 1.1, 0.6 + 0.4 * lit)
        # Dark outline: distance from the hit point to the nearest edge of the face it lies on.
        to_x, to_y, to_z = a - np.abs(px), b - np.abs(py), np.minimum(pz, h - pz)
        edge = np.where(face == 0, np.minimum(to_y, to_z), np.where(face == 1, np.minimum(to_x, to_z),
                                                                      np.minimum(to_x, to_y)))
        shade = np.where(edge < EDGE_M, shade * 0.45, shade)
        image[r0:r1, c0:c1][hit] = np.clip(shade, 0, 255).astype(np.uint8)
        window[hit] = t


def screen_rects(lens_x: np.ndarray, lens_y: np.ndarray, yaw: np.ndarray, bodies: Bodies) -> np.ndarray:
    """(N, K, 4) int pixel rectangles [row0, row1) x [col0, col1) bounding each body's projection in each
    car's lens; empty (row0 == row1) when the body is behind the lens, off-screen, too far or the car itself."""
    corners = bodies.corners()  # (K, 4, 2)
    rel_x = corners[None, :, :, 0] - lens_x[:, None, None]  # (N, K, 4)
    rel_y = corners[None, :, :, 1] - lens_y[:, None, None]
    cos, sin = np.cos(yaw)[:, None, None], np.sin(yaw)[:, None, None]
    ahead = np.concatenate([rel_x * cos + rel_y * sin] * 2, axis=2)  # (N, K, 8): floor corners, then top
    left = np.concatenate([-rel_x * sin + rel_y * cos] * 2, axis=2)
    up = np.concatenate([np.full((len(bodies), 4), -MOUNT_HEIGHT), (bodies.heights - MOUNT_HEIGHT)[:, None]
                         + np.zeros((1, 4))], axis=1)[None]  # (1, K, 8)
    depth = ahead * _FORWARD[0] + up * _FORWARD[2]
    with np.errstate(divide="ignore", invalid="ignore"):
        cols = (-left) / depth * FOCAL + WIDTH / 2
        rows = (ahead * _DOWN[0] + up * _DOWN[2]) / depth * FOCAL + HEIGHT / 2
    straddles = np.any(depth <= 1e-3, axis=2)  # projection unbounded: cast over the whole image
    rects = np.stack([
        np.clip(np.floor(rows.min(axis=2)) - 1, 0, HEIGHT),
        np.clip(np.ceil(rows.max(axis=2)) + 1, 0, HEIGHT),
        np.clip(np.floor(cols.min(axis=2)) - 1, 0, WIDTH),
        np.clip(np.ceil(cols.max(axis=2)) + 1, 0, WIDTH),
    ], axis=-1)
    rects[straddles] = (0, HEIGHT, 0, WIDTH)
    reach = FAR_M + np.hypot(bodies.lengths, bodies.widths) / 2
    hidden = (
        np.all(depth <= 0, axis=2)
        | (np.hypot(bodies.centres[None, :, 0] - lens_x[:, None], bodies.centres[None, :, 1] - lens_y[:, None]) > reach)
        | (bodies.owners[None, :] == np.arange(len(lens_x))[:, None])
        | (rects[..., 0] >= rects[..., 1])
        | (rects[..., 2] >= rects[..., 3])
    )
    rects[hidden] = 0
    return rects.astype(np.int64)


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
