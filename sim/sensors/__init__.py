"""Sensors of the DeepRacer car (SPEC §4), batched over cars: cameras and lidars.

``make_sensor(name)`` returns an object with ``name``, ``observation_space`` and
``observe(track, x, y, yaw, objects=None) -> (N, ...) array`` for cars whose origins are at (x, y, yaw).
"""

from __future__ import annotations

from collections.abc import Iterable

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


def make_sensor(name: str):
    try:
        return _FACTORIES[name]()
    except KeyError:
        raise ValueError(f"unknown sensor {name!r} (known: {', '.join(SENSOR_NAMES)})") from None


def validate_sensor_combination(names: Iterable[str]) -> None:
    """Exactly one camera and at most one lidar, as the simapp requires."""
    names = list(names)
    unknown = [n for n in names if n not in SENSOR_NAMES]
    if unknown:
        raise ValueError(f"unknown sensor {unknown[0]!r} (known: {', '.join(SENSOR_NAMES)})")
    if sum(n in CAMERAS for n in names) != 1:
        raise ValueError("choose exactly one camera: FRONT_FACING_CAMERA or STEREO_CAMERAS")
    if sum(n in LIDARS for n in names) > 1:
        raise ValueError("choose at most one lidar: LIDAR or SECTOR_LIDAR")
