"""Small, quick training requests for the training tests: the smallest network, three actions, short episodes."""

from __future__ import annotations

from races.models import Race, Track
from races.services.training import TrainingOptions, TrainingRequest
from sim.world.reward_examples import EXAMPLES
from sim.world.vehicle import DiscreteActionSpace, Vehicle

CENTRE_LINE = EXAMPLES["example_1_follow_center_line"]
SMALL_VEHICLE = Vehicle(sensors=("FRONT_FACING_CAMERA",), neural_network="DEEP_CONVOLUTIONAL_NETWORK_DEEP",
                        action_space=DiscreteActionSpace.from_granularity(30, 3, 1, 1)).to_file_dict()
# 5 episodes per iteration (the console's minimum) of at most 60 steps, one evaluation episode: ~1.5 s per iteration
SMALL_HYPERPARAMETERS = {"episodes_between_training": 5, "batch_size": 32, "num_epochs": 3}


def small_request(track: Track, name: str = "trained", max_minutes: float = 10, **changes) -> TrainingRequest:
    values = dict(name=name, description="", tracks=(track,), direction=Race.Direction.COUNTERCLOCKWISE,
                  vehicle=SMALL_VEHICLE, race_type=Race.RaceType.TIME_TRIAL, reward_function_source=CENTRE_LINE,
                  hyperparameters=SMALL_HYPERPARAMETERS, max_minutes=max_minutes)
    return TrainingRequest(**(values | changes))


def small_options(max_episodes: int | None = 10, **changes) -> TrainingOptions:
    return TrainingOptions(**({"evaluation_episodes": 1, "max_episode_steps": 60, "max_episodes": max_episodes}
                              | changes))
