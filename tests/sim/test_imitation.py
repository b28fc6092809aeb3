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


def _fake_laps(*laps: tuple[str, int, int]):
    from sim.race.evaluation import RaceRun
    from sim.race.scoring import LapMetrics

    return RaceRun(laps=[LapMetrics(trial=i + 1, elapsed_time_in_milliseconds=ms, completion_percentage=100.0,
                                    off_track_count=off, episode_status=status)
                         for i, (status, ms, off) in enumerate(laps)], trace={}, simtrace=[], steps=0)


@pytest.mark.parametrize(("races", "kept_seed"), [
    # seed 0 clips the edge once: seed 1 laps cleanly and is kept, and no third clone is trained
    ([[("Lap complete", 7900, 1)], [("Lap complete", 8100, 0)], None], 1),
    # no clone laps cleanly: the fewest laps missed wins over fewer off-tracks, then off-tracks over time
    ([[("Off track", 9000, 3)], [("Lap complete", 9500, 2)], [("Lap complete", 8000, 4)]], 1),
    ([[("Lap complete", 9000, 1)], [("Lap complete", 8000, 1)], [("Lap complete", 7000, 2)]], 1),
])
def test_the_driver_clone_kept_is_the_first_that_laps_cleanly_else_the_best_raced(monkeypatch, races, kept_seed):
    from sim.learn import imitation

    trained: list[int] = []

    def train(track, vehicle, seed, driver):
        trained.append(seed)
        return imitation.ImitationResult(network=seed, frames=0, accuracy=0.0)  # the seed stands for the network

    monkeypatch.setattr(imitation, "train_imitation_model", train)
    monkeypatch.setattr(imitation, "race_policy", lambda network, precision: network)
    monkeypatch.setattr(imitation, "run_race", lambda policy, *args, **kwargs: _fake_laps(*races[policy]))
    kept = imitation.clone_racing_line_driver(build_builtin_track("pitlane_oval"), get_vehicle("pitlane_racer"),
                                              laps=1, attempts=3)
    assert kept.network == kept_seed
    assert trained == [seed for seed, race in enumerate(races) if race is not None]
