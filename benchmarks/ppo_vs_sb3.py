"""Our PPO trainer against stable-baselines3 PPO: same environment, same settings, same wall-clock budget.

Run: .venv/bin/python benchmarks/ppo_vs_sb3.py [--minutes 5] [--track pitlane_oval]

Both learn the lab's task: front camera, 15 discrete actions (30 deg / 5, 1 m/s / 3), Example 1 reward, the
console's default hyperparameters (lr 3e-4, batch 64, 10 epochs, entropy 0.01, discount 0.999, clip 0.2,
GAE 0.95), about 1,000 steps between updates, torch on both cores.
  ours  sim.training: 20 cars stepped by one numpy call, the DeepRacer 3-layer CNN with separate policy and
        value towers, bf16 autocast + channels_last for the update
  sb3   stable_baselines3.PPO("CnnPolicy") on 4 copies of sim.env.RaceEnv (the Gymnasium single-car
        environment that passes gymnasium's check_env) in a DummyVecEnv, n_steps 256

After the budget each policy drives greedily (argmax) from 8 evenly spaced starting points; the figure is
their mean progress (% of a lap, 100 = a whole lap without leaving the track). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.env import RaceEnv
from sim.hyperparameters import Hyperparameters
from sim.reward_examples import example_source
from sim.reward_function import RewardFunction
from sim.track import get_track
from sim.training import TrainingConfig, start_training
from sim.vehicle import get_vehicle

REWARD = "example_1_follow_center_line"
EVALUATION_STARTS = np.linspace(0.0, 1.0, 8, endpoint=False)
MAX_EPISODE_STEPS = 1500


def greedy_progress(track_name: str, act) -> float:
    """Mean progress of one greedy episode from each evaluation start (training rules: off track ends it)."""
    env = RaceEnv(get_track(track_name), get_vehicle("original_deepracer"), max_episode_steps=MAX_EPISODE_STEPS)
    progress = []
    for start in EVALUATION_STARTS:
        observation, info = env.reset(seed=0, options={"start_ndist": float(start)})
        while not info["episodes"]:  # the step that ends the episode reports its summary
            observation, _reward, _terminated, _truncated, info = env.step(act(observation))
        progress.append(info["episodes"][-1]["progress"])
    return float(np.mean(progress))


def train_ours(track: str, minutes: float, folder: Path) -> dict:
    config = TrainingConfig(track=track, vehicle=get_vehicle("original_deepracer"),
                            reward_function_source=example_source(REWARD), hyperparameters=Hyperparameters(),
                            evaluation_episodes=0, max_episode_steps=MAX_EPISODE_STEPS, record_simtrace=False)
    trainer = start_training(folder, config)
    started = time.monotonic()
    while time.monotonic() - started < minutes * 60:
        trainer.commit_iteration(trainer.train_iteration(), None)
    seconds = time.monotonic() - started
    network = trainer.agent.network.eval()
    progress = greedy_progress(track, lambda observation: int(network.predict(observation[None])[0]))
    return {"env_steps": trainer.env_steps, "seconds": round(seconds, 1), "episodes": trainer.episodes,
            "updates": trainer.iteration, "steps_per_second": round(trainer.env_steps / seconds, 1),
            "greedy_progress": round(progress, 1)}


def train_sb3(track: str, minutes: float) -> dict:
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    reward = RewardFunction.from_source(example_source(REWARD))
    vehicle, race_track = get_vehicle("original_deepracer"), get_track(track)
    envs = make_vec_env(lambda: RaceEnv(race_track, vehicle, reward, max_episode_steps=MAX_EPISODE_STEPS),
                        n_envs=4, seed=0)
    hp = Hyperparameters()
    model = PPO("CnnPolicy", envs, learning_rate=hp.learning_rate, n_steps=256, batch_size=hp.batch_size,
                n_epochs=hp.num_epochs, gamma=hp.discount_factor, gae_lambda=hp.gae_lambda,
                clip_range=hp.clip_epsilon, ent_coef=hp.entropy, seed=0, device="cpu", verbose=0)

    class Budget(BaseCallback):
        def _on_step(self) -> bool:
            return time.monotonic() - started < minutes * 60

    started = time.monotonic()
    model.learn(total_timesteps=10**9, callback=Budget())
    seconds = time.monotonic() - started
    progress = greedy_progress(track, lambda observation: int(model.predict(observation, deterministic=True)[0]))
    return {"env_steps": int(model.num_timesteps), "seconds": round(seconds, 1), "episodes": None,
            "updates": int(model._n_updates // max(hp.num_epochs, 1)),
            "steps_per_second": round(model.num_timesteps / seconds, 1), "greedy_progress": round(progress, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="wall-clock training budget of each trainer")
    parser.add_argument("--track", default="pitlane_oval")
    args = parser.parse_args()
    torch.set_num_threads(2)

    with tempfile.TemporaryDirectory() as scratch:
        ours = train_ours(args.track, args.minutes, Path(scratch) / "ours")
    sb3 = train_sb3(args.track, args.minutes)

    print(f"\n{'trainer':<8} {'env steps':>10} {'steps/s':>9} {'updates':>8} {'greedy progress':>16}   "
          f"({args.minutes:g} min each on {args.track})")
    for name, figures in (("ours", ours), ("sb3", sb3)):
        print(f"{name:<8} {figures['env_steps']:>10} {figures['steps_per_second']:>9.1f} {figures['updates']:>8} "
              f"{figures['greedy_progress']:>15.1f}%")
    print(json.dumps({"benchmark": "ppo_vs_sb3", "minutes": args.minutes, "track": args.track,
                      "ours": ours, "sb3": sb3}))


if __name__ == "__main__":
    main()
