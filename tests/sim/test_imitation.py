"""Warm start from the driver: a model cloned from the scripted driver completes clean laps on its own."""

import pytest
import torch

from sim.learn.imitation import train_imitation_model
from sim.race.evaluation import run_race
from sim.world.builtin_tracks import build_builtin_track
from sim.world.rules import RaceRules
from sim.world.vehicle import get_vehicle


@pytest.mark.slow
def test_an_imitated_model_races_three_clean_laps_from_its_camera():
    vehicle = get_vehicle("original_deepracer")
    track = build_builtin_track("pitlane_oval")
    result = train_imitation_model(track, vehicle, frames=3000, epochs=4)
    assert result.accuracy > 0.8

    def policy(observations):
        with torch.inference_mode():
            return result.network.predict(observations).numpy()

    run = run_race(policy, track, vehicle, RaceRules(total_laps=3), record_simtrace=False)
    assert [lap.episode_status for lap in run.laps] == ["Lap complete"] * 3
    assert sum(lap.off_track_count for lap in run.laps) == 0
