"""Training on several tracks at once and choosing the best checkpoint by reward (the console's options that
DeepRacer-for-Cloud added): what the trainer does with them, what the model folder records, and the CLI flags."""

import json

import numpy as np
import pytest

from sim.cli import main
from sim.io.model_folder import ModelFolder
from sim.io.simtrace import read_simtrace_csv
from sim.learn.checkpoints import latest_checkpoint
from sim.learn.config import TrainingConfig, TrainingError
from sim.learn.hyperparameters import Hyperparameters
from sim.learn.trainer import StopConditions
from sim.learn.training import resume_training, start_training
from sim.world.reward_examples import example_source
from sim.world.reward_function import RewardFunctionError
from sim.world.track_catalog import get_track
from sim.world.vehicle import get_vehicle

SMALL = Hyperparameters(batch_size=64, num_epochs=3, learning_rate=1e-3, episodes_between_training=5)


def _config(**overrides) -> TrainingConfig:
    values = dict(track="pitlane_oval", more_tracks=("pitlane_technical",), vehicle=get_vehicle("original_deepracer"),
                  reward_function_source=example_source("example_1_follow_center_line"), hyperparameters=SMALL,
                  evaluation_episodes=2, max_episode_steps=30)
    values.update(overrides)
    return TrainingConfig(**values)


def _on_track(track_name: str, xy: np.ndarray) -> float:
    """The share of points that lie on the named track's road."""
    return float(get_track(track_name).contains(xy).mean())


@pytest.mark.slow
def test_iterations_rotate_through_the_tracks_and_every_evaluation_drives_all_of_them(tmp_path):
    folder = tmp_path / "model"
    result = start_training(folder, _config()).run(StopConditions(max_episodes=10), progress=False)
    assert result.iterations == 2

    # Iteration 1 trained on the main track, iteration 2 on the other (DeepRacer's simtrace files 0 and 1).
    for iteration, track_name in ((1, "pitlane_oval"), (2, "pitlane_technical")):
        rows = read_simtrace_csv(ModelFolder(folder).training_simtrace(iteration))
        xy = np.array([[row.X, row.Y] for row in rows])
        assert _on_track(track_name, xy) > 0.9
    # Two evaluation cars shared out over two tracks: one each, every iteration.
    episodes = json.loads((folder / "metrics" / "episodes.json").read_text())["episodes"]
    evaluation = [e for e in episodes if e["phase"] == "evaluation"]
    assert [e["iteration"] for e in evaluation] == [1, 1, 2, 2]
    assert json.loads((folder / "training.json").read_text())["more_tracks"] == ["pitlane_technical"]


@pytest.mark.slow
def test_best_by_reward_exports_the_iteration_with_the_highest_mean_reward(tmp_path):
    folder = tmp_path / "model"
    config = _config(more_tracks=(), best_by="reward", evaluation_episodes=0)
    result = start_training(folder, config).run(StopConditions(max_episodes=15), progress=False)

    rows = json.loads((folder / "metrics" / "iterations.json").read_text())["iterations"]
    rewards = [row["mean_reward"] for row in rows]
    best = max(range(len(rows)), key=lambda i: (rewards[i], i)) + 1  # ties go to the later iteration
    assert result.best_iteration == best and result.best_by == "reward"
    assert result.best_progress == pytest.approx(rewards[best - 1])
    assert [row["iteration"] for row in rows if row["is_best"]] == [best]
    # The choice survives a resume: the next iteration is ranked by reward too.
    assert resume_training(folder).config.best_by == "reward"


def test_training_tracks_are_checked_before_any_file_is_written(tmp_path):
    with pytest.raises(TrainingError, match="named once"):
        _config(more_tracks=("pitlane_oval",))
    with pytest.raises(TrainingError, match="best_by"):
        _config(best_by="laps")
    with pytest.raises(TrainingError, match="no_such_track"):
        start_training(tmp_path / "model", _config(more_tracks=("no_such_track",)))
    # A reward function that works on the main track but not on another is refused like any invalid one.
    source = ("def reward_function(params):\n"
              "    return 1.0 if params['track_length'] < 20 else params['no_such_key']\n")
    with pytest.raises(RewardFunctionError, match="no_such_key"):
        start_training(tmp_path / "model", _config(reward_function_source=source))
    assert not (tmp_path / "model").exists()


@pytest.mark.slow
def test_the_cli_trains_on_several_tracks_and_ranks_by_reward(tmp_path, capsys):
    folder = tmp_path / "model"
    code = main(["train", str(folder), "--track", "pitlane_oval", "--also-track", "pitlane_technical",
                 "--best-by", "reward", "--max-episodes", "5", "--episodes-between-training", "5",
                 "--batch-size", "64", "--num-epochs", "3", "--evaluation-episodes", "0",
                 "--max-episode-steps", "30", "--no-simtrace", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert "on Pitlane Oval + " in out and "mean reward" in out
    config = json.loads((folder / "training.json").read_text())
    assert (config["track"], config["more_tracks"], config["best_by"]) == (
        "pitlane_oval", ["pitlane_technical"], "reward")
    assert latest_checkpoint(folder).iteration == 1


def test_object_avoidance_training_puts_the_boxes_on_every_training_track(tmp_path):
    boxes = {"kind": "boxes", "items": [{"ndist": 0.3, "lane": "inner"}, {"ndist": 0.7, "lane": "outer"}]}
    trainer = start_training(tmp_path / "model", _config(objects=boxes))
    for env in trainer.training_envs + trainer.evaluation_envs:
        assert env.objects is not None and len(env.objects.centres) == 2
    assert json.loads((tmp_path / "model" / "training.json").read_text())["objects"] == boxes
    assert resume_training(tmp_path / "model").config.objects == boxes
    with pytest.raises(TrainingError, match="objects"):
        _config(objects={"kind": "cones", "items": []}).load_tracks()
