"""Reward functions: every failure mode gives its documented message with the line; the lab's examples run."""

import copy
import re
from pathlib import Path

import numpy as np
import pytest

from sim.world.reward_examples import EXAMPLES, LAB_EXAMPLES
from sim.world.reward_function import (
    RewardFunction,
    RewardFunctionError,
    isolated_copy,
    summarise_params,
    validate_reward_function,
)

SEED = Path(__file__).resolve().parents[3] / "shared" / "seed" / "000_e0b07e1e01ed8e48.txt"
WAYPOINTS = [(float(i), 0.0) for i in range(20)] + [(0.0, 0.0)]


def params(**overrides):
    """Every SPEC §2 key (object keys empty, as in a time trial) plus the lab's ``steering`` alias."""
    base = {
        "all_wheels_on_track": True, "x": 3.2, "y": 0.68, "heading": 12.5, "distance_from_center": 0.05,
        "projection_distance": 3.1, "progress": 12.3, "steps": 2.0, "speed": 1.0, "steering_angle": -15.0,
        "steering": -15.0, "track_width": 1.07, "track_length": 23.1, "waypoints": WAYPOINTS,
        "closest_waypoints": [3, 4], "is_left_of_center": False, "is_reversed": False, "is_offtrack": False,
        "is_crashed": False, "closest_objects": [0, 0], "objects_location": [], "objects_left_of_center": [],
        "object_in_camera": False, "objects_speed": [], "objects_heading": [], "objects_distance_from_center": [],
        "objects_distance": [],
    }
    return base | overrides


def load(body: str) -> RewardFunction:
    return RewardFunction.from_source(body)


def function_returning(expression: str) -> RewardFunction:
    return load(f"def reward_function(params):\n    reward = {expression}\n    return reward\n")


# ------------------------------------------------------------------------------------------- the lab's examples


@pytest.mark.parametrize(
    ("name", "penalised"),
    [
        ("example_1_follow_center_line", {}),
        ("example_2_prevent_zig_zag", {"steering_angle": 30.0}),
        ("example_3_penalize_slow", {"speed": 0.33}),
    ],
)
def test_the_labs_examples_run_unchanged(name, penalised):
    reward_function = load(EXAMPLES[name])
    assert reward_function(params()) == 1.0
    assert reward_function(params(distance_from_center=0.2)) == 0.5
    assert reward_function(params(distance_from_center=0.5)) == 0.1
    assert reward_function(params(distance_from_center=0.6, all_wheels_on_track=False)) == 1e-3
    if penalised:
        assert reward_function(params(**penalised)) == 0.5


@pytest.mark.skipif(not SEED.exists(), reason="the lab document ../shared/seed is not beside this checkout")
def test_our_example_files_are_the_labs_code_verbatim():
    text = SEED.read_text(encoding="utf-8")
    pattern = r"\*\*Example [123]\*\*.*?(def reward_function\(params\):.*?return float\(reward\))"
    blocks = re.findall(pattern, text, re.S)
    assert len(blocks) == 3
    # The lab text lost its line breaks (lines run together, indented by tabs): compare token by token.
    tokens = lambda code: code.split()  # noqa: E731
    assert [tokens(block) for block in blocks] == [tokens(EXAMPLES[name]) for name in sorted(LAB_EXAMPLES)]


# --------------------------------------------------------------------------------------- loading failures


@pytest.mark.parametrize(
    ("source", "message", "line"),
    [
        ("def reward_function(params)\n    return 1.0\n",
         r"^Syntax error in reward_function.py, line 1: expected ':'\n    def reward_function\(params\)$", 1),
        ("def reward_function(params):\n    x = (1,\n    return 1.0\n",
         r"^Syntax error in reward_function.py, line 2: '\(' was never closed\n    x = \(1,$", 2),
        ("def reward_function(params):\nreturn 1.0\n", r"line 2: expected an indented block", 2),
        ("def reward(params):\n    return 1.0\n",
         r"^reward_function.py must define a function named reward_function\(params\)$", None),
        ("reward_function = 1.0\n", r"^reward_function in reward_function.py is a float, not a function$", None),
        ("def reward_function():\n    return 1.0\n",
         r"^reward_function.py, line 1: reward_function must take exactly one parameter \(params\), "
         r"but its signature is \(\)$", 1),
        ("import math\n\ndef reward_function(a, b):\n    return 1.0\n", r"line 3: .* its signature is \(a, b\)$", 3),
        ("def reward_function(*params):\n    return 1.0\n", r"its signature is \(\*params\)$", 1),
        ("import os\ndef reward_function(params):\n    return 1.0\n",
         r"^reward_function.py, line 1: import of 'os' is not allowed \(allowed: math, random, numpy, scipy, "
         r"shapely, copy, typing, __future__\)$", 1),
        ("def reward_function(params):\n    from subprocess import run\n    return 1.0\n",
         "line 2: import of 'subprocess' is not allowed", 2),
        ("def reward_function(params):\n    open('x')\n    return 1.0\n",
         r"^reward_function.py, line 2: 'open' is not allowed in a reward function$", 2),
        ("import numpy as np\ndef reward_function(params):\n    np.save('x', 1)\n    return 1.0\n",
         r"^reward_function.py, line 3: '.save' \(file access\) is not allowed in a reward function$", 3),
        ("x = 1\ny = undefined_name\ndef reward_function(params):\n    return 1.0\n",
         r"^reward_function.py failed while loading: NameError: name 'undefined_name' is not defined "
         r"at line 2: y = undefined_name$", 2),
    ],
)
def test_loading_failures_name_the_problem_and_line(source, message, line):
    with pytest.raises(RewardFunctionError, match=message) as caught:
        load(source)
    assert caught.value.line == line


def test_allowed_imports_and_typed_signatures_load():
    source = ("from __future__ import annotations\nimport math, random\nimport numpy as np\nfrom typing import Any\n"
              "def reward_function(params: dict[str, Any]) -> float:\n    return float(np.clip(math.pi, 0, 3))\n")
    assert load(source)(params()) == 3.0


# ---------------------------------------------------------------------------------------- run-time failures


@pytest.mark.parametrize(
    ("body", "message", "line"),
    [
        ("    x = 1\n    return params['speed'] / 0\n",
         r"^reward_function raised ZeroDivisionError: float division by zero at line 3: return params\['speed'\] / 0; "
         r"params: x=3.2, y=0.68, heading=12.5, progress=42.5, steps=2.0, speed=1.0, steering_angle=-15.0, ", 3),
        ("    return params['no_such_key']\n", r"^reward_function raised KeyError: 'no_such_key' at line 2: ", 2),
        ("    return helper(params)\ndef helper(p):\n    return p['x'] + None\n",
         r"raised TypeError: unsupported operand .* at line 4: return p\['x'\] \+ None;", 4),
        ("    x = 1\n    raise SystemExit(3)\n", r"^reward_function raised SystemExit: 3 at line 3: raise SystemExit",
         3),
    ],
)
def test_exceptions_name_the_line_and_the_params(body, message, line):
    reward_function = load("def reward_function(params):\n" + body)
    with pytest.raises(RewardFunctionError, match=message) as caught:
        reward_function(params(progress=42.5))
    assert caught.value.line == line and caught.value.__cause__ is not None


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("'fast'", r"^reward_function returned 'fast' \(str\), which is not a number, at line 3: return reward; "),
        ("None", r"^reward_function returned None \(NoneType\), which is not a number, at line 3"),
        ("[1.0]", r"^reward_function returned \[1.0\] \(list\), which is not a number, at line 3"),
        ("float('nan')", r"^reward_function returned nan, rewards must be finite numbers, at line 3: return reward; "),
        ("float('inf')", r"^reward_function returned inf, rewards must be finite numbers, at line 3"),
        ("-float('inf')", r"^reward_function returned -inf, rewards must be finite numbers, at line 3"),
        ("200000.0", r"^reward_function returned 200000.0, outside the allowed range \[-100000, 100000\], at line 3"),
        ("-100000.5", r"^reward_function returned -100000.5, outside the allowed range"),
        ("10 ** 400", r"^reward_function returned 1000000000.* \(int\), which is not a number, at line 3"),
    ],
)
def test_bad_return_values_name_the_return_line_and_the_params(expression, message):
    with pytest.raises(RewardFunctionError, match=message) as caught:
        function_returning(expression)(params(progress=42.5))
    assert caught.value.line == 3 and "; params: x=3.2, y=0.68, heading=12.5, progress=42.5" in str(caught.value)


def test_the_return_that_failed_is_found_among_several():
    reward_function = load("def reward_function(params):\n    if params['is_offtrack']:\n        return float('nan')\n"
                           "    return 1.0\n")
    with pytest.raises(RewardFunctionError, match=r"returned nan.* at line 3: return float\('nan'\)"):
        reward_function(params(is_offtrack=True))


def test_rewards_at_the_range_limits_and_non_float_numbers_are_accepted_like_the_simapp():
    assert function_returning("1e5")(params()) == 1e5 and function_returning("-1e5")(params()) == -1e5
    assert function_returning("True")(params()) == 1.0 and function_returning("3")(params()) == 3.0
    reward = load("import numpy as np\ndef reward_function(params):\n    return np.float32(0.5)\n")(params())
    assert reward == 0.5 and type(reward) is float


def test_params_summary_rounds_floats_and_keeps_the_keys_present():
    assert summarise_params({"x": 1.234567, "closest_waypoints": [3, 4], "is_offtrack": True, "other": 1}) == (
        "x=1.2346, closest_waypoints=[3, 4], is_offtrack=True")


# ------------------------------------------------------------------------------------------------ isolation


def test_a_function_mutating_its_params_cannot_affect_later_calls():
    reward_function = load(
        "def reward_function(params):\n"
        "    n = len(params['waypoints'])\n"
        "    params['waypoints'].clear()\n    params['closest_waypoints'][0] = -1\n"
        "    params['objects_location'][0][0] = 99.0\n    params['extra'][0] = 99.0\n"
        "    params['speed'] = 0.0\n    params.clear()\n"
        "    return float(n)\n"
    )
    shared = params(objects_location=[[1.0, 2.0]], extra=np.array([1.0, 2.0]))
    before = copy.deepcopy(shared)
    assert reward_function(shared) == 21.0 and reward_function(shared) == 21.0
    assert shared.keys() == before.keys()
    for key, value in before.items():
        assert np.array_equal(shared[key], value) if key == "extra" else shared[key] == value


def test_the_isolated_copy_equals_the_params_and_shares_only_immutable_values():
    original = params(objects_location=[[1.0, 2.0]], closest_objects=(0, 1))
    fresh = isolated_copy(original)
    assert fresh == original and fresh is not original
    assert fresh["waypoints"] is not original["waypoints"] and fresh["waypoints"][0] is original["waypoints"][0]
    assert fresh["objects_location"][0] is not original["objects_location"][0]
    mixed = {"points": [(1.0, 2.0), [3.0, 4.0]]}
    assert isolated_copy(mixed)["points"][1] is not mixed["points"][1]


# ----------------------------------------------------------------------------------------------- validation


def test_validation_runs_synthetic_cars_and_reports_the_first_failure():
    source = "def reward_function(params):\n    if params['is_offtrack']:\n        return 1 / 0\n    return 1.0\n"
    cars = [params(), params(is_offtrack=True), params(is_offtrack=True, x=9.0)]
    with pytest.raises(RewardFunctionError) as caught:
        validate_reward_function(source, cars, names=["start", "off track", "far"])
    assert str(caught.value).startswith(
        "On synthetic car 'off track': reward_function raised ZeroDivisionError: division by zero at line 3: "
        "return 1 / 0; params: x=3.2,")
    assert caught.value.line == 3 and caught.value.car == "off track"


def test_validation_returns_the_loaded_function():
    reward_function = validate_reward_function(EXAMPLES["example_1_follow_center_line"], [params(), params()])
    assert reward_function(params()) == 1.0


def test_validation_checks_syntax_without_a_child_and_names_unnamed_cars_by_number():
    with pytest.raises(RewardFunctionError, match=r"^Syntax error in my_reward.py, line 1"):
        validate_reward_function("def reward_function(params)\n", [params()], filename="my_reward.py")
    with pytest.raises(RewardFunctionError, match=r"^On synthetic car '#2': reward_function returned nan"):
        validate_reward_function("def reward_function(params):\n    return params['reward']\n",
                                 [params(reward=1.0), params(reward=float("nan"))])


def test_validation_stops_a_function_that_never_returns():
    source = "def reward_function(params):\n    while True:\n        pass\n"
    with pytest.raises(RewardFunctionError) as caught:
        validate_reward_function(source, [params(), params()], time_limit_s=0.5, names=["start", "mid-lap"])
    assert str(caught.value).startswith("Reward function timed out after 0.5 s on synthetic car 'start'; params: x=3.2")
    assert caught.value.car == "start"


def test_validation_stops_a_module_that_never_finishes_loading():
    source = "while True:\n    pass\ndef reward_function(params):\n    return 1.0\n"
    with pytest.raises(RewardFunctionError, match=r"^Reward function timed out after 0.3 s while loading "
                                                  r"reward_function.py$"):
        validate_reward_function(source, [params()], time_limit_s=0.3)


def test_validation_reports_a_function_that_kills_its_process():
    source = "def reward_function(params):\n    raise KeyboardInterrupt  # not an Exception: escapes the call\n"
    with pytest.raises(RewardFunctionError, match=r"^Reward function ended the validation process \(exit code 1\) "
                                                  r"on synthetic car 'start'; params: x=3.2"):
        validate_reward_function(source, [params()], names=["start"])


def test_validation_arguments_are_checked():
    with pytest.raises(ValueError, match="time_limit_s must be a positive number of seconds, got 0"):
        validate_reward_function(EXAMPLES["example_1_follow_center_line"], [params()], time_limit_s=0)
    with pytest.raises(ValueError, match="1 names for 2 synthetic cars"):
        validate_reward_function(EXAMPLES["example_1_follow_center_line"], [params(), params()], names=["start"])


def test_the_labs_examples_validate_on_the_synthetic_cars_of_a_built_in_track():
    from sim.world.params import synthetic_params
    from sim.world.track_catalog import get_track

    names, cars = synthetic_params(get_track("pitlane_oval"))
    for name in LAB_EXAMPLES:
        reward_function = validate_reward_function(EXAMPLES[name], cars, names=names, filename=f"{name}.py")
        rewards = dict(zip(names, map(reward_function, cars), strict=True))
        assert rewards["start"] == 1.0 and rewards["off track"] < 0.01, name


@pytest.mark.parametrize("name", [name for name in EXAMPLES if name.startswith("community_")])
def test_the_community_examples_pay_more_for_driving_fast_on_track_than_slow(name):
    from sim.race.racing_line_reward import racing_line_reward_source
    from sim.world.params import synthetic_params
    from sim.world.track_catalog import get_track

    track = get_track("pitlane_technical")
    source = racing_line_reward_source(track, 3.0) if name == "community_racing_line" else EXAMPLES[name]
    names, cars = synthetic_params(track)
    reward_function = validate_reward_function(source, cars, names=names, filename=f"{name}.py")
    on_track = next(car for label, car in zip(names, cars, strict=True) if label == "start")
    # Along a straight at the racing line's pace: faster pays more; off the track pays (almost) nothing.
    slow, fast = dict(on_track, speed=1.0, steps=30, progress=5.0), dict(on_track, speed=3.0, steps=30, progress=5.0)
    assert reward_function(fast) > reward_function(slow) > reward_function(dict(on_track, is_offtrack=True))
