"""The training loop: stop conditions, the model folder, resume, clone and the lab's reward functions.

Runs are tiny (5 episodes per iteration, short episode cap) so each test takes seconds; whether PPO
actually learns is in test_training_learns.py.
"""

import dataclasses
import json
import os
import signal

import pytest
import torch
from deepracer.logs import DeepRacerLog

from sim.io.archive import inspect_archive, load_actor_critic, write_model_archive
from sim.learn.agent import Agent
from sim.learn.checkpoints import latest_checkpoint
from sim.learn.config import TrainingConfig, TrainingError
from sim.learn.hyperparameters import HyperparameterError, Hyperparameters
from sim.learn.networks import build_actor_critic
from sim.learn.rollouts import collect_episodes, round_robin_starts
from sim.learn.trainer import StopConditions
from sim.learn.training import resume_training, start_training
from sim.race.env import VectorRaceEnv
from sim.world.reward_examples import EXAMPLE_FILES, example_source
from sim.world.reward_function import RewardFunction, RewardFunctionError
from sim.world.track_catalog import get_track
from sim.world.vehicle import DiscreteActionSpace, Vehicle, get_vehicle

SMALL = Hyperparameters(batch_size=128, num_epochs=3, learning_rate=1e-3, episodes_between_training=5)


def _config(reward: str = "example_1_follow_center_line", **overrides) -> TrainingConfig:
    values = dict(track="pitlane_oval", vehicle=get_vehicle("original_deepracer"),
                  reward_function_source=example_source(reward), hyperparameters=SMALL, evaluation_episodes=1,
                  max_episode_steps=30)
    values.update(overrides)
    return TrainingConfig(**values)


@pytest.mark.slow
def test_max_episodes_stops_exactly_and_the_model_folder_is_complete(tmp_path):
    folder = tmp_path / "model"
    result = start_training(folder, _config()).run(StopConditions(max_episodes=7), progress=False)

    # 5 episodes, then the 2 that remain: exactly the budget.
    assert (result.stopped_by, result.iterations, result.episodes) == ("max_episodes", 2, 7)
    assert latest_checkpoint(folder).iteration == 2
    iterations = json.loads((folder / "metrics" / "iterations.json").read_text())["iterations"]
    assert [row["iteration"] for row in iterations] == [1, 2]
    assert sum(row["is_best"] for row in iterations) == 1
    episodes = json.loads((folder / "metrics" / "episodes.json").read_text())["episodes"]
    assert [e["episode"] for e in episodes if e["phase"] == "training"] == list(range(7))
    assert (folder / "metrics" / "iterations.csv").read_text().startswith("iteration,episodes,")
    assert (folder / "reward_graph.png").read_bytes()[:4] == b"\x89PNG"
    log_lines = next((folder / "logs" / "training").glob("*-robomaker.log")).read_text().splitlines()
    assert log_lines and all(line.startswith("SIM_TRACE_LOG:") for line in log_lines)

    log = DeepRacerLog(model_folder=str(folder))
    log.load_training_trace()
    trace = log.dataframe()
    assert sorted(trace["episode"].unique()) == list(range(7))
    # DeepRacer numbers training simtraces from 0: iterations 1 and 2 are files 0 and 1.
    assert set(trace["iteration"].unique()) == {0, 1}
    assert sorted(trace["unique_episode"].unique()) == list(range(7))

    info = inspect_archive(folder / "model.tar.gz")
    assert info.vehicle == get_vehicle("original_deepracer")
    assert info.reward_function_source == example_source("example_1_follow_center_line")
    assert info.hyperparameters["lr"] == 1e-3 and info.hyperparameters["batch_size"] == 128
    assert {"metrics/iterations.csv", "metrics/episodes.json", "metrics/reward_graph.png"} <= set(info.members)
    vehicle, network = load_actor_critic(folder / "model.tar.gz")
    assert vehicle == get_vehicle("original_deepracer")
    assert network.state_dict().keys() == build_actor_critic(vehicle, seed=0).state_dict().keys()


def test_round_robin_starts_advance_five_percent_per_episode():
    assert round_robin_starts(0, 3).tolist() == pytest.approx([0.0, 0.05, 0.10])
    assert round_robin_starts(19, 2).tolist() == pytest.approx([0.95, 0.0])


def test_an_iteration_bounded_by_env_steps_cuts_the_running_episodes_and_bootstraps_them():
    """Cars that would drive on are cut as ``time_up`` once the iteration's steps are spent; PPO then values
    where they stopped (the lap went on), while an episode that ended by itself is worth nothing more."""
    vehicle = get_vehicle("original_deepracer")
    env = VectorRaceEnv(get_track("pitlane_oval"), 5, vehicle,
                        RewardFunction.from_source(example_source("example_1_follow_center_line")),
                        record_simtrace=True)
    agent = Agent(build_actor_critic(vehicle, seed=0), mixed_precision=False)
    batch = collect_episodes(env, agent, 5, first_episode=40, max_steps=50)

    assert batch.env_steps == 50  # 5 cars x 10 steps: the bound, met on the step that reaches it
    assert [e["episode"] for e in batch.episodes] == [40, 41, 42, 43, 44]
    cut = [e["car"] for e in batch.episodes if e["status"] == "time_up"]
    assert cut, "on the oval no random car leaves the track within 10 steps"
    assert all(not e["lap_complete"] and e["steps"] == 10 for e in batch.episodes if e["car"] in cut)
    rollout = batch.rollout
    assert rollout.num_steps == 10
    for car in range(5):
        if car in cut:  # still driving on the last step: not done, bootstrapped from the critic
            assert not rollout.dones[-1, car] and rollout.last_values[car] != 0.0
        else:
            assert rollout.last_values[car] == 0.0
    assert not env.running.any()  # every car waits for the next iteration
    assert {row.episode for row in batch.simtrace} == {40 + car for car in cut} | {
        e["episode"] for e in batch.episodes if e["car"] not in cut}


def test_training_with_a_step_bound_keeps_it_across_a_resume(tmp_path):
    folder = tmp_path / "model"
    hyperparameters = Hyperparameters(**{**SMALL.to_dict(), "max_iteration_steps": 100})
    start_training(folder, _config(max_episode_steps=1500, hyperparameters=hyperparameters)).run(
        StopConditions(max_episodes=5), progress=False)
    iterations = json.loads((folder / "metrics" / "iterations.json").read_text())["iterations"]
    assert iterations[0]["episodes"] == 5 and 100 <= iterations[0]["env_steps"] < 105
    assert resume_training(folder).config.hyperparameters.max_iteration_steps == 100
    assert inspect_archive(folder / "model.tar.gz").hyperparameters["max_iteration_steps"] == 100
    with pytest.raises(HyperparameterError, match="max_iteration_steps must be between 100 and 100000"):
        Hyperparameters(max_iteration_steps=99)
    assert "max_iteration_steps" not in Hyperparameters().to_deepracer_json()  # unset: the console's file


def test_a_spent_time_budget_stops_at_once_and_exports_the_starting_weights(tmp_path):
    trainer = start_training(tmp_path / "model", _config())
    starting = {name: tensor.clone() for name, tensor in trainer.agent.network.state_dict().items()}
    result = trainer.run(StopConditions(max_minutes=1e-4), progress=False)
    assert (result.stopped_by, result.iterations, result.best_iteration, result.best_progress) == (
        "max_minutes", 0, None, None)
    _, network = load_actor_critic(result.archive)
    assert all(torch.equal(starting[name], tensor) for name, tensor in network.state_dict().items())
    assert inspect_archive(result.archive).hyperparameters["exported_iteration"] == 0


def test_ctrl_c_keeps_the_last_checkpoint_and_still_exports(tmp_path):
    def press_ctrl_c(row):
        os.kill(os.getpid(), signal.SIGINT)  # the run's handler turns it into a stop request

    result = start_training(tmp_path / "model", _config()).run(
        StopConditions(max_episodes=100), progress=False, on_iteration=press_ctrl_c
    )
    assert (result.stopped_by, result.iterations) == ("interrupted", 1)
    assert latest_checkpoint(tmp_path / "model").iteration == 1
    assert inspect_archive(tmp_path / "model" / "model.tar.gz").vehicle == get_vehicle("original_deepracer")


@pytest.mark.slow
def test_resume_continues_the_iteration_and_episode_counts(tmp_path):
    folder = tmp_path / "model"
    start_training(folder, _config()).run(StopConditions(max_episodes=5), progress=False)
    trainer = resume_training(folder)
    assert (trainer.iteration, trainer.episodes) == (1, 5)
    before = {name: tensor.clone() for name, tensor in trainer.agent.network.state_dict().items()}

    result = trainer.run(StopConditions(max_episodes=10), progress=False)
    assert (result.iterations, result.episodes) == (2, 10)
    iterations = json.loads((folder / "metrics" / "iterations.json").read_text())["iterations"]
    assert [row["iteration"] for row in iterations] == [1, 2]
    assert [row["episodes"] for row in iterations] == [5, 10]
    assert any(not torch.equal(before[name], tensor) for name, tensor in trainer.agent.network.state_dict().items())


def test_an_iteration_changes_nothing_until_it_is_committed(tmp_path):
    trainer = start_training(tmp_path / "model", _config(record_simtrace=False))
    result = trainer.train_iteration()
    assert (result.iteration, len(result.batch.episodes), len(result.evaluation)) == (1, 5, 1)
    assert (trainer.iteration, trainer.episodes, trainer.best_iteration) == (0, 0, None)
    assert latest_checkpoint(tmp_path / "model") is None and not result.metrics["is_best"]

    row = trainer.commit_iteration(result, None)
    assert row["is_best"] and row["iteration"] == 1 and row["episodes"] == 5
    assert (trainer.iteration, trainer.episodes, trainer.best_iteration) == (1, 5, 1)
    assert latest_checkpoint(tmp_path / "model").iteration == 1


def test_among_checkpoints_that_complete_every_evaluation_lap_the_fastest_is_the_best(tmp_path):
    """Once every evaluation lap completes, progress ties at 100 %: the faster laps decide, not the later iteration
    (a 20-minute run of the README's first example drifted from 7.4 s to 8.3 s laps and exported the slow one)."""
    folder = tmp_path / "model"
    trainer = start_training(folder, _config(record_simtrace=False))
    result = trainer.train_iteration()

    def lapping(iteration: int, steps: int):
        evaluation = [dict(e, progress=100.0, lap_complete=True, steps=steps) for e in result.evaluation]
        return dataclasses.replace(result, iteration=iteration, evaluation=evaluation,
                                   metrics=dict(result.metrics, iteration=iteration, evaluation_mean_progress=100.0))

    rows = [trainer.commit_iteration(lapping(i, steps), None) for i, steps in ((1, 130), (2, 120), (3, 125), (4, 120))]
    assert [row["is_best"] for row in rows] == [True, True, False, True]  # a full tie goes to the later one
    assert (trainer.best_iteration, trainer.best_lap_steps) == (4, 120.0)
    assert resume_training(folder).best_lap_steps == 120.0  # a resumed run keeps comparing against it


def test_a_model_folder_is_never_overwritten(tmp_path):
    start_training(tmp_path / "model", _config())
    with pytest.raises(TrainingError, match="already holds a model"):
        start_training(tmp_path / "model", _config())


def test_clone_starts_from_the_archive_weights(tmp_path):
    vehicle = get_vehicle("original_deepracer")
    source = build_actor_critic(vehicle, seed=7)
    write_model_archive(tmp_path / "parent.tar.gz", vehicle, source.state_dict())
    trainer = start_training(tmp_path / "clone", _config(), clone_from=tmp_path / "parent.tar.gz")
    for name, tensor in source.state_dict().items():
        assert torch.equal(trainer.agent.network.state_dict()[name], tensor), name
    assert json.loads((tmp_path / "clone" / "training.json").read_text())["cloned_from"].endswith("parent.tar.gz")


def test_clone_refuses_a_model_with_a_different_action_space(tmp_path):
    parent = get_vehicle("original_deepracer")  # 5 angles x 3 speeds = 15 actions
    write_model_archive(tmp_path / "parent.tar.gz", parent, build_actor_critic(parent, seed=0).state_dict())
    wider = Vehicle(parent.sensors, parent.neural_network, DiscreteActionSpace.from_granularity(30, 7, 1, 3))
    with pytest.raises(TrainingError, match="15 vs 21 actions"):
        start_training(tmp_path / "clone", _config(vehicle=wider), clone_from=tmp_path / "parent.tar.gz")
    continuous = get_vehicle("continuous_camera")
    with pytest.raises(TrainingError, match="discrete vs continuous action space"):
        start_training(tmp_path / "clone", _config(vehicle=continuous), clone_from=tmp_path / "parent.tar.gz")
    assert not (tmp_path / "clone").exists()


def test_a_broken_reward_function_fails_before_anything_is_written(tmp_path):
    config = _config()
    broken = TrainingConfig(**{**config.__dict__, "reward_function_source": "def reward_function(params):\n  return ("})
    with pytest.raises(ValueError, match="reward_function"):
        start_training(tmp_path / "model", broken)
    assert not (tmp_path / "model").exists()


def test_a_reward_function_failing_on_a_car_is_refused_like_the_consoles_validate(tmp_path):
    # Loads fine, but breaks on the first real params dict: caught on synthetic cars before training.
    source = "def reward_function(params):\n    return params['no_such_key']\n"
    config = TrainingConfig(**{**_config().__dict__, "reward_function_source": source})
    with pytest.raises(RewardFunctionError, match="no_such_key"):
        start_training(tmp_path / "model", config)
    assert not (tmp_path / "model").exists()


@pytest.mark.slow
@pytest.mark.parametrize("example", list(EXAMPLE_FILES))
def test_the_lab_example_reward_functions_train_without_error(tmp_path, example):
    config = _config(example, evaluation_episodes=0, record_simtrace=False)
    result = start_training(tmp_path / "model", config).run(StopConditions(max_episodes=5), progress=False)
    assert result.iterations == 1
    rewards = json.loads((tmp_path / "model" / "metrics" / "episodes.json").read_text())["episodes"]
    assert all(row["reward"] > 0 for row in rewards)


@pytest.mark.slow
def test_continuous_action_spaces_train(tmp_path):
    config = _config(vehicle=get_vehicle("continuous_camera"), evaluation_episodes=1)
    result = start_training(tmp_path / "model", config).run(StopConditions(max_episodes=5), progress=False)
    assert result.iterations == 1
    assert inspect_archive(result.archive).vehicle.action_space_type == "continuous"


@pytest.mark.slow
def test_a_cloned_model_is_ranked_as_iteration_0_so_a_worse_first_iteration_does_not_replace_it(
        tmp_path, lapping_archive, capsys):
    parent = tmp_path / "parent.tar.gz"
    parent.write_bytes(lapping_archive)  # laps the oval
    config = _config(evaluation_episodes=1, max_episode_steps=200)
    result = start_training(tmp_path / "clone", config, clone_from=parent).run(StopConditions(max_episodes=5))
    out = "".join(capsys.readouterr())
    clone_progress = float(out.split("Cloned model evaluation: progress ")[1].split("%")[0])
    first = json.loads((tmp_path / "clone" / "metrics" / "iterations.json").read_text())["iterations"][0]
    assert clone_progress > 50  # 200 steps of a lapping model
    # The exported model is the better of the two: the parent's weights unless iteration 1 did at least as well.
    assert result.best_iteration == (1 if first["evaluation_mean_progress"] >= clone_progress else 0)
    assert result.best_progress == pytest.approx(max(clone_progress, first["evaluation_mean_progress"]), abs=0.1)


@pytest.mark.slow
def test_the_starting_weights_evaluation_is_announced_before_iteration_1_and_only_for_a_clone_or_warm_start(tmp_path):
    """The league's runner draws the starting model's laps and camera film from it while iteration 1 runs."""
    vehicle = get_vehicle("original_deepracer")
    write_model_archive(tmp_path / "parent.tar.gz", vehicle, build_actor_critic(vehicle, seed=7).state_dict())
    seen = []
    trainer = start_training(tmp_path / "clone", _config(), clone_from=tmp_path / "parent.tar.gz")
    trainer.evaluation_envs[0].record_trace = True
    trainer.run(StopConditions(max_episodes=5), progress=False,
                on_start_evaluated=lambda: seen.append((trainer.iteration,
                                                        len(trainer.evaluation_envs[0].record(0).trace["x"]))))
    assert len(seen) == 1 and seen[0][0] == 0 and seen[0][1] > 0
    scratch = start_training(tmp_path / "scratch", _config())
    scratch.run(StopConditions(max_episodes=5), progress=False, on_start_evaluated=lambda: seen.append("scratch"))
    assert "scratch" not in seen
