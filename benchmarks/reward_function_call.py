"""Cost of calling a reward function through ``RewardFunction`` (params copy + checks) and of validating one.

Run: .venv/bin/python benchmarks/reward_function_call.py
Prints a table, then as the last line one JSON object with all figures (microseconds per call, ms per validation).
"""

import copy
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.world.reward_examples import EXAMPLES
from sim.world.reward_function import RewardFunction, isolated_copy, validate_reward_function

WAYPOINTS = [(0.05 * i, 0.01 * i) for i in range(150)] + [(0.0, 0.0)]
PARAMS = {
    "all_wheels_on_track": True, "x": 3.2, "y": 0.68, "heading": 12.5, "distance_from_center": 0.05,
    "projection_distance": 3.1, "progress": 12.3, "steps": 2.0, "speed": 1.0, "steering_angle": -15.0,
    "steering": -15.0, "track_width": 1.07, "track_length": 23.1, "waypoints": WAYPOINTS,
    "closest_waypoints": [3, 4], "is_left_of_center": False, "is_reversed": False, "is_offtrack": False,
    "is_crashed": False, "closest_objects": [0, 0], "objects_location": [], "objects_left_of_center": [],
    "object_in_camera": False, "objects_speed": [], "objects_heading": [], "objects_distance_from_center": [],
    "objects_distance": [],
}


def best_us(fn, repeats: int = 5, number: int = 2000) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best * 1e6


def main() -> None:
    source = EXAMPLES["example_1_follow_center_line"]
    loaded = RewardFunction.from_source(source)
    namespace: dict = {}
    exec(compile(source, "raw.py", "exec"), namespace)
    raw = namespace["reward_function"]

    figures = {
        "deepcopy_us": best_us(lambda: copy.deepcopy(PARAMS)),
        "isolated_copy_us": best_us(lambda: isolated_copy(PARAMS)),
        "raw_call_us": best_us(lambda: raw(PARAMS)),
        "checked_call_us": best_us(lambda: loaded(PARAMS)),
    }
    start = time.perf_counter()
    for _ in range(5):
        validate_reward_function(source, [PARAMS] * 4, names=["start", "mid-lap", "off track", "near finish"])
    figures["validation_4_cars_ms"] = (time.perf_counter() - start) / 5 * 1e3
    figures["waypoints"] = len(WAYPOINTS)

    print(f"{'measure':<34} {'value':>10}")
    print(f"{'copy.deepcopy(params)':<34} {figures['deepcopy_us']:>8.1f} µs")
    print(f"{'isolated_copy(params)':<34} {figures['isolated_copy_us']:>8.1f} µs")
    print(f"{'example 1, plain call':<34} {figures['raw_call_us']:>8.1f} µs")
    print(f"{'example 1, RewardFunction call':<34} {figures['checked_call_us']:>8.1f} µs")
    print(f"{'validation, 4 cars (fork)':<34} {figures['validation_4_cars_ms']:>8.1f} ms")
    print(json.dumps({key: round(value, 2) for key, value in figures.items()}))


if __name__ == "__main__":
    main()
