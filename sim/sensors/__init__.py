"""Sensors of the DeepRacer car (SPEC §4), batched over cars: cameras and lidars.

``make_sensor(name)`` returns a :class:`Sensor`: ``name``, ``observation_space`` (exact shape and dtype of
ONE car's observation) and ``observe(track, x, y, yaw, objects=None) -> (N, *shape)`` for N cars whose
origins (midway between the axles) are at (x, y) heading yaw. ``objects`` is None, a :class:`Bodies`
or anything with ``centres``/``yaws`` arrays such as ``sim.world.objects.StaticBoxes`` (see ``bodies``).

| name | observation |
|---|---|
| FRONT_FACING_CAMERA | (120, 160, 1) uint8 grayscale |
| STEREO_CAMERAS | (120, 160, 2) uint8, left lens then right lens |
| LIDAR | (64,) float32 ranges clipped to [0.15, 1.0] m, scan centred backwards |
| SECTOR_LIDAR | (8,) float32 bits: something closer than 0.5 m in the sector |
"""

from __future__ import annotations

from collections.abc import Iterable

from sim.sensors.base import Sensor
from sim.sensors.bodies import Bodies
from sim.sensors.camera import FrontFacingCamera, StereoCameras
from sim.sensors.lidar import Lidar, SectorLidar

CAMERAS = ("FRONT_FACING_CAMERA", "STEREO_CAMERAS")
LIDARS = ("LIDAR", "SECTOR_LIDAR")
SENSOR_NAMES = CAMERAS + LIDARS
_FACTORIES = {
    "FRONT_FACING_CAMERA": FrontFacingCamera,
    "STEREO_CAMERAS": StereoCameras,
    "LIDAR": Lidar,
    "SECTOR_LIDAR": SectorLidar,
}

__all__ = ["CAMERAS", "LIDARS", "SENSOR_NAMES", "Bodies", "Sensor", "make_sensor", "validate_sensor_combination"]


def make_sensor(name: str, **options) -> Sensor:
    """The sensor called `name`; lidars accept ``noise_std`` and ``seed`` (default: no noise)."""
    if name not in _FACTORIES:
        raise ValueError(f"unknown sensor {name!r} (known: {', '.join(SENSOR_NAMES)})")
    return _FACTORIES[name](**options)


def validate_sensor_combination(names: Iterable[str]) -> None:
    """Exactly one camera and at most one lidar, each listed once, as the simapp requires."""
    names = list(names)
    unknown = [n for n in names if n not in SENSOR_NAMES]
    if unknown:
        raise ValueError(f"unknown sensor {unknown[0]!r} (known: {', '.join(SENSOR_NAMES)})")
    if len(set(names)) != len(names):
        raise ValueError(f"a sensor is listed twice: {names}")
    if sum(n in CAMERAS for n in names) != 1:
        raise ValueError("choose exactly one camera: FRONT_FACING_CAMERA or STEREO_CAMERAS")
    if sum(n in LIDARS for n in names) > 1:
        raise ValueError("choose at most one lidar: LIDAR or SECTOR_LIDAR")
