"""Warm start from the driver: a model cloned from the scripted driver completes clean laps on its own."""

import pytest
import torch

from sim.io.archive import load_actor_critic
from sim.race.evaluation import run_race
from sim.world.builtin_tracks import build_builtin_track
from sim.world.rules import RaceRules
from sim.world.vehicle import get_vehicle


@pytest.mark.slow
def test_an_imitated_model_races_three_clean_laps_from_its_camera(lapping_archive, tmp_path):
    # The session's lapping model (tests/conftest.py) is this imitation: 3,000 frames of the oval, 4 epochs.
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(lapping_archive)
    vehicle, network = load_actor_critic(archive)
    assert vehicle == get_vehicle("original_deepracer")

    def policy(observations):
        with torch.inference_mode():
            return network.predict(observations).numpy()

    run = run_race(policy, build_builtin_track("pitlane_oval"), vehicle, RaceRules(total_laps=3), record_simtrace=False)
    assert [lap.episode_status for lap in run.laps] == ["Lap complete"] * 3
    assert sum(lap.off_track_count for lap in run.laps) == 0
