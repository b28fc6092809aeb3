"""Example camera frames of a track: straight, left curve, right curve, off track, box ahead.

    python -m sim.sensors.examples reInvent2019_track docs/img [--tracks-dir ../shared/tracks] [--scale 3]

Writes ``camera_<situation>.png`` (each frame upscaled with nearest neighbour, so pixels stay visible).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from sim.sensors.bodies import Bodies
from sim.sensors.camera import FrontFacingCamera
from sim.world.track import Track
from sim.world.track_catalog import get_track

LOOKAHEAD_M = 1.0


def example_poses(track: Track) -> dict[str, tuple[float, float, float, Bodies | None]]:
    """Car poses (x, y, yaw, objects) for each situation, found from the centre line's curvature."""
    centre = track.center[:-1]
    heading = np.unwrap(np.arctan2(*np.roll(np.diff(track.center, axis=0), 1, axis=1).T))
    spacing = np.linalg.norm(np.diff(track.center, axis=0), axis=1)
    ahead = max(1, round(LOOKAHEAD_M / max(float(np.median(spacing)), 1e-6)))
    turn = np.roll(heading, -ahead) - heading  # heading change over the next metre (+ = left)
    turn[-ahead:] = 0.0
    straightness = np.abs(turn) + np.abs(np.roll(turn, ahead))

    def pose(i: int, lateral: float = 0.0, dyaw: float = 0.0) -> tuple[float, float, float]:
        yaw = float(heading[i])
        x, y = centre[i] + lateral * np.array([-np.sin(yaw), np.cos(yaw)])
        return float(x), float(y), yaw + dyaw

    straight = int(np.argmin(straightness))
    x, y, yaw = pose(straight)
    box = Bodies([[x + 1.8 * np.cos(yaw), y + 1.8 * np.sin(yaw)]], [yaw], lengths=0.5, widths=0.4, heights=0.3)
    half_width = float(np.median(track.widths)) / 2
    return {
        "straight": (*pose(straight), None),
        "left_curve": (*pose(int(np.argmax(turn))), None),
        "right_curve": (*pose(int(np.argmin(turn))), None),
        "off_track": (*pose(straight, lateral=-(half_width + 0.5), dyaw=0.9), None),
        "box_ahead": (x, y, yaw, box),
    }


def write_examples(track: Track, out_dir: Path, scale: int = 3) -> list[Path]:
    camera = FrontFacingCamera()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for situation, (x, y, yaw, objects) in example_poses(track).items():
        frame = camera.observe(track, np.array([x]), np.array([y]), np.array([yaw]), objects)[0, :, :, 0]
        image = Image.fromarray(frame).resize((frame.shape[1] * scale, frame.shape[0] * scale), Image.NEAREST)
        path = out_dir / f"camera_{situation}.png"
        image.save(path, optimize=True)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("track")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--tracks-dir", default=None)
    parser.add_argument("--scale", type=int, default=3)
    args = parser.parse_args()
    for path in write_examples(get_track(args.track, args.tracks_dir), args.out_dir, args.scale):
        print(path)


if __name__ == "__main__":
    main()
