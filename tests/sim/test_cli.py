"""``python -m sim``: the lab's workflow from a terminal (garage, tracks, validate, train, evaluate)."""

import json

import pytest

from sim.cli import main


def test_garage_lists_the_vehicles_and_shows_the_labs_15_actions(capsys):
    assert main(["garage"]) == 0
    assert "original_deepracer" in capsys.readouterr().out
    assert main(["garage", "original_deepracer"]) == 0
    out = capsys.readouterr().out
    assert "14: steering   30.0°  speed 1.00 m/s" in out and "15:" not in out


def test_tracks_lists_the_builtins(capsys):
    assert main(["tracks"]) == 0
    assert "pitlane_technical" in capsys.readouterr().out


def test_validate_reward_runs_the_function_on_synthetic_cars(tmp_path, capsys):
    good = tmp_path / "reward.py"
    good.write_text("def reward_function(params):\n    return 1.0 if params['all_wheels_on_track'] else 1e-3\n")
    assert main(["validate-reward", str(good)]) == 0
    assert "is valid" in capsys.readouterr().out

    bad = tmp_path / "bad.py"
    bad.write_text("def reward_function(params):\n    return params['speeed']\n")
    assert main(["validate-reward", str(bad)]) == 2
    assert "speeed" in capsys.readouterr().err


def test_user_errors_are_one_line_and_exit_code_2(tmp_path, capsys):
    assert main(["train", str(tmp_path / "m"), "--vehicle", "no_such_car", "--max-episodes", "5", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no_such_car" in err and err.count("\n") == 1
    assert main(["train", str(tmp_path / "m"), "--batch-size", "7", "--max-episodes", "5", "--quiet"]) == 2
    assert "batch_size" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_train_then_evaluate_prints_the_lap_table_and_every_ranking_method(tmp_path, capsys):
    folder = tmp_path / "model"
    assert main(["train", str(folder), "--max-episodes", "5", "--episodes-between-training", "5",
                 "--max-episode-steps", "40", "--evaluation-episodes", "1", "--quiet"]) == 0
    assert "Stopped (episode budget reached) after 1 iteration in" in capsys.readouterr().out
    assert main(["train", str(folder), "--resume", "--max-episodes", "10", "--quiet"]) == 0
    assert "Resuming" in capsys.readouterr().out
    assert json.loads((folder / "metrics" / "iterations.json").read_text())["iterations"][-1]["iteration"] == 2

    assert main(["evaluate", str(folder), "--laps", "1", "--time-cap", "30"]) == 0
    out = capsys.readouterr().out
    assert "Trial" in out and "Best lap time" in out and "Average lap time" in out and "Total time" in out
    evaluation = next(folder.glob("evaluation-*"))
    assert (evaluation / "trajectory.png").read_bytes()[:4] == b"\x89PNG"
    assert next(evaluation.glob("evaluation-simtrace/*.csv")).read_text().startswith("episode,")


def test_a_track_file_can_be_given_by_its_path(tmp_path, capsys, monkeypatch):
    import numpy as np

    from sim.world.builtin_tracks import build_builtin_track

    np.save(tmp_path / "club.npy", build_builtin_track("pitlane_technical").waypoints)
    reward = tmp_path / "reward.py"
    reward.write_text("def reward_function(params):\n    return 1.0\n")
    monkeypatch.chdir(tmp_path)
    assert main(["validate-reward", str(reward), "--track", "club.npy"]) == 0
    assert "is valid" in capsys.readouterr().out
    assert main(["validate-reward", str(reward), "--track", "elsewhere.npy"]) == 2
    assert "no track file 'elsewhere.npy'" in capsys.readouterr().err
