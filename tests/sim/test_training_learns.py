"""PPO learns: the lab's car, reward (Example 1) and default hyperparameters on the easy oval.

Seeds make the run reproducible (same machine kind, same torch): after 3 iterations of 20 episodes
(~80 s on 2 cores) the deterministic evaluation cars, which barely left the start, drive whole laps.
"""

import pytest

from sim.learn.config import TrainingConfig
from sim.learn.hyperparameters import Hyperparameters
from sim.learn.training import start_training
from sim.world.reward_examples import example_source
from sim.world.vehicle import get_vehicle


@pytest.mark.slow
def test_a_few_iterations_on_the_oval_take_the_evaluation_cars_from_the_start_to_whole_laps(tmp_path):
    # Three iterations in fp32 (progress 0.4 %, 38 %, 100 %); bf16 autocast, the default on CPUs that compute it
    # natively, takes one more (0 %, 0 %, 31 %, 100 %): the same learning, other rounding.
    config = TrainingConfig(track="pitlane_oval", vehicle=get_vehicle("original_deepracer"),
                            reward_function_source=example_source("example_1_follow_center_line"),
                            hyperparameters=Hyperparameters(), evaluation_episodes=4, record_simtrace=False)
    trainer = start_training(tmp_path / "model", config)
    rows = []
    while len(rows) < 4 and (not rows or rows[-1]["evaluation_mean_progress"] < 90):
        rows.append(trainer.commit_iteration(trainer.train_iteration(), None))

    first, last = rows[0], rows[-1]
    assert first["evaluation_mean_progress"] < 20
    assert last["evaluation_mean_progress"] >= 90, [row["evaluation_mean_progress"] for row in rows]
    assert last["mean_progress"] > first["mean_progress"]  # the stochastic training episodes improve too
    assert trainer.best_iteration == len(rows)
