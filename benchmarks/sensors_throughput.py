"""Sensor throughput: observations per second for batches of 1 and 64 cars, on one core.

    .venv/bin/python benchmarks/sensors_throughput.py [--track reInvent2019_track] [--seconds 1.0]

Cars are spread around the track on the centre line (the camera's common case). "+boxes" rows add three
obstacle boxes (object-avoidance races) placed ahead of some cars. Target: camera >= 5,000 frames/s at
batch 64. Prints a table, then as the LAST line one JSON object with the figures.
"""

from __future__ import annotations

import os

# One core: BLAS would otherwise spread the camera's matmul over every core.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.sensors import SENSOR_NAMES, Bodies, make_sensor  # noqa: E402
from sim.world.track_catalog import get_track  # noqa: E402

SHARED_TRACKS = Path(__file__).resolve().parents[2] / "shared" / "tracks"
BATCHES = (1, 64)


def frames_per_second(sensor, track, x, y, yaw, objects, seconds: float) -> float:
    sensor.observe(track, x, y, yaw, objects)  # warm-up: floor raster, per-track features
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        sensor.observe(track, x, y, yaw, objects)
        calls += 1
    return calls * len(x) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--track", default="reInvent2019_track")
    parser.add_argument("--seconds", type=float, default=1.0, help="timing per row")
    args = parser.parse_args()
    try:
        track = get_track(args.track, SHARED_TRACKS if SHARED_TRACKS.is_dir() else None)
    except KeyError:
        track = get_track("pitlane_oval")

    xy, yaw = track.pose_at(np.linspace(0.0, 1.0, max(BATCHES), endpoint=False))
    ahead = xy[:3] + 1.0 * np.stack([np.cos(yaw[:3]), np.sin(yaw[:3])], axis=1)
    boxes = Bodies(ahead, yaw[:3], lengths=0.5, widths=0.4, heights=0.3)

    results: dict[str, float] = {}
    print(f"track {track.name}, one core, {args.seconds:.1f} s per row")
    print(f"{'sensor':<28}{'batch':>6}{'frames/s':>12}")
    for name in SENSOR_NAMES:
        sensor = make_sensor(name)
        for label, objects in (("", None), ("+boxes", boxes)):
            for batch in BATCHES:
                fps = frames_per_second(sensor, track, xy[:batch, 0], xy[:batch, 1], yaw[:batch], objects,
                                        args.seconds)
                key = f"{name}{label}@{batch}"
                results[key] = round(fps, 1)
                print(f"{name + label:<28}{batch:>6}{fps:>12,.0f}")
    target = results["FRONT_FACING_CAMERA@64"]
    print(f"FRONT_FACING_CAMERA at batch 64: {target:,.0f} frames/s (target >= 5,000: "
          f"{'met' if target >= 5000 else 'NOT met'})")
    print(json.dumps({"benchmark": "sensors_throughput", "track": track.name, "frames_per_second": results}))


if __name__ == "__main__":
    main()
