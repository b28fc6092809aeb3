"""Ideal lap time of every built-in track, plus the cost of the per-step track queries.

Run: .venv/bin/python benchmarks/ideal_lap_times.py
Prints a table, then as the last line one JSON object with all figures.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.race.ideal_lap import ideal_lap_time
from sim.world.builtin_tracks import BUILTIN_TRACKS
from sim.world.track import Track
from sim.world.track_catalog import get_track


def best_time_us(fn, repeats: int = 7, number: int = 200) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best * 1e6


def road_points(track: Track, m: int, seed: int = 0) -> np.ndarray:
    """m points spread over the road surface (like wheel positions of cars on track)."""
    rng = np.random.default_rng(seed)
    ndist = rng.uniform(0, 1, m)
    centre = track.interpolate(ndist)
    inner, outer = track.border_points(centre)
    f = rng.uniform(0.05, 0.95, (m, 1))
    return inner * (1 - f) + outer * f


def time_queries(track: Track) -> dict[str, float]:
    """Best-of microseconds of the per-step queries for 64 and 256 points on the road."""
    results = {}
    for m in (64, 256):
        pts = road_points(track, m)
        results[f"project_{m}"] = best_time_us(lambda pts=pts: track.project(pts))
        results[f"contains_{m}"] = best_time_us(lambda pts=pts: track.contains(pts))
    pts = road_points(track, 64)
    centre = track.project(pts).point
    results["border_points_64"] = best_time_us(lambda: track.border_points(centre))
    results["closest_waypoints_64"] = best_time_us(lambda: track.closest_waypoints(track.project(pts).ndist))
    return results


def main() -> None:
    figures: dict = {"tracks": {}, "queries_us": {}}
    print(f"{'track':<20} {'length m':>9} {'width m':>8} {'line m':>7} {'ideal lap s':>12} {'min v':>6}")
    for name in BUILTIN_TRACKS:
        track = get_track(name)
        lap = ideal_lap_time(track)
        width = float(np.median(track.widths))
        figures["tracks"][name] = {
            "length_m": round(track.length, 3),
            "width_m": round(width, 3),
            "racing_line_m": round(lap.line_length, 3),
            "ideal_lap_s": round(lap.lap_time, 3),
        }
        print(
            f"{name:<20} {track.length:>9.3f} {width:>8.3f} {lap.line_length:>7.2f} {lap.lap_time:>12.3f} "
            f"{lap.speed.min():>6.2f}"
        )
    figures["ideal_lap_params"] = lap.params

    shared = Path(__file__).resolve().parents[2] / "shared" / "tracks" / "reInvent2019_track.npy"
    query_tracks = [get_track("pitlane_technical")] + ([Track.from_npy(shared)] if shared.is_file() else [])
    print()
    print(f"{'track':<20} {'query':<28} {'us':>8}")
    for track in query_tracks:
        results = time_queries(track)
        for key, value in results.items():
            print(f"{track.name:<20} {key:<28} {value:>8.1f}")
        figures["queries_us"][track.name] = {k: round(v, 1) for k, v in results.items()}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
