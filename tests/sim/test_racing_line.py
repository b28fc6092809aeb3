"""The racing line put to use: a driver that laps near the ideal time, and the community's pasted-line reward."""

import re

import numpy as np
import pytest

from sim.race.drivers import RacingLineDriver
from sim.race.evaluation import run_driver_race
from sim.race.ideal_lap import ideal_lap_time
from sim.race.racing_line_reward import racing_line_reward_source
from sim.world.params import synthetic_params
from sim.world.reward_examples import example_source
from sim.world.reward_function import validate_reward_function
from sim.world.rules import RaceRules
from sim.world.track_catalog import get_track
from sim.world.vehicle import get_vehicle

RACER = get_vehicle("pitlane_racer")  # 21 actions up to 3 m/s


def _racing_line(source: str) -> np.ndarray:
    return np.array([[float(v) for v in row.split(",")]
                     for row in re.findall(r"^\s+\[([-0-9., ]+)\],$", source, re.MULTILINE)])


def test_the_racing_line_driver_laps_within_ten_percent_of_the_ideal_lap_cleanly():
    track = get_track("pitlane_technical")
    run = run_driver_race(RacingLineDriver(track, max_speed=3.0), RACER, RaceRules(total_laps=3))
    assert [lap.episode_status for lap in run.laps] == ["Lap complete"] * 3
    assert all(lap.off_track_count == 0 for lap in run.laps)
    best = min(lap.elapsed_time_in_milliseconds for lap in run.laps) / 1000
    assert best <= 1.10 * ideal_lap_time(track, max_speed=3.0).lap_time


def test_the_example_file_holds_pitlane_technicals_line_and_any_track_gets_its_own():
    technical = get_track("pitlane_technical")
    assert racing_line_reward_source(technical, 3.0) == example_source("community_racing_line")

    oval = get_track("pitlane_oval")
    source = racing_line_reward_source(oval, 2.0)
    line = _racing_line(source)
    ideal = ideal_lap_time(oval, max_speed=2.0)
    assert line[:, :2] == pytest.approx(ideal.line, abs=1e-3) and line[:, 2].max() <= 2.0
    assert "# The racing line of pitlane_oval for a 2 m/s car:" in source
    names, cars = synthetic_params(oval)
    validate_reward_function(source, cars, names=names)
