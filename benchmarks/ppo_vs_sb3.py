"""Our PPO trainer against stable-baselines3 PPO: same environment, same settings, same wall-clock budget.

Run: .venv/bin/python benchmarks/ppo_vs_sb3.py [--minutes 8] [--track pitlane_technical] [--check-every 60]
     [--sb3-shared]

Both learn the lab's task: front camera, 15 discrete actions (30 deg / 5, 1 m/s / 3), Example 1 reward, the
console's default hyperparameters (lr 3e-4, batch 64, 10 epochs, entropy 0.01, discount 0.999, clip 0.2,
GAE 0.95), about 1,000 steps between updates, torch on both cores.
  ours  sim.learn.trainer: 20 cars stepped by one numpy call, the DeepRacer 3-layer CNN with separate policy and
        value towers (channels_last; bf16 autocast only on CPUs with native bf16)
  sb3   stable_baselines3.PPO("CnnPolicy", share_features_extractor=False) on 4 copies of sim.race.env.RaceEnv (the
        Gymnasium single-car environment that passes gymnasium's check_env) in a DummyVecEnv, n_steps 256.
        Its NatureCNN is layer for layer the DeepRacer 3-layer CNN (convs 32/8/4, 64/4/2, 64/3/1, dense 512), and
        with separate extractors it trains the same network as ours: the comparison is of trainers, not of
        network sizes (a shared trunk would halve SB3's compute but is not the DeepRacer network; --sb3-shared).

Every ``--check-every`` seconds of training (the clock is paused meanwhile) the policy drives greedily
(argmax) from 4 evenly spaced starting points; greedy progress is their mean (% of a lap, 100 = every start
drove a whole lap without leaving the track). Figures: env steps/s, minutes to the first 100 %, minutes to
100 % that holds at every later check, and the progress at the end of the budget. Last line: one JSON object.
Both run in one process after ``sim.learn.agent.use_cores_for_torch``: numpy's OpenBLAS on one thread for SB3 too.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.learn.agent import cpu_has_native_bf16, use_cores_for_torch
from sim.learn.config import TrainingConfig
from sim.learn.hyperparameters import Hyperparameters
from sim.learn.training import start_training
from sim.race.env import RaceEnv
from sim.world.reward_examples import example_source
from sim.world.reward_function import RewardFunction
from sim.world.track_catalog import get_track
from sim.world.vehicle import get_vehicle

REWARD = "example_1_follow_center_line"
EVALUATION_STARTS = np.linspace(0.0, 1.0, 4, endpoint=False)
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


class LearningCurve:
    """Training time on a clock that stops while the greedy checks run."""

    def __init__(self, track: str, minutes: float, check_every_s: float) -> None:
        self.track, self.budget_s, self.check_every_s = track, minutes * 60, check_every_s
        self.training_s, self.next_check_s = 0.0, check_every_s
        self.points: list[dict] = []
        self._resumed = time.monotonic()

    def tick(self, env_steps: int, act) -> bool:
        """Call between updates: records a check when one is due; False once the budget is spent."""
        self.training_s += time.monotonic() - self._resumed
        over = self.training_s >= self.budget_s
        if over or self.training_s >= self.next_check_s:
            progress = greedy_progress(self.track, act)
            self.points.append({"minutes": round(self.training_s / 60, 2), "env_steps": env_steps,
                                "greedy_progress": round(progress, 1)})
            print(f"  {self.points[-1]}", flush=True)
            self.next_check_s += self.check_every_s
        self._resumed = time.monotonic()
        return not over

    def summary(self, env_steps: int, updates: int) -> dict:
        full = [p["greedy_progress"] >= 100.0 for p in self.points]
        first_lap = next((p["minutes"] for p, ok in zip(self.points, full, strict=True) if ok), None)
        # From this check on every later check drove full laps too: a policy that holds, not a lucky check.
        stable = next((p["minutes"] for i, p in enumerate(self.points) if all(full[i:])), None)
        return {"env_steps": env_steps, "training_seconds": round(self.training_s, 1), "updates": updates,
                "steps_per_second": round(env_steps / self.training_s, 1), "minutes_to_full_laps": first_lap,
                "minutes_to_stable_full_laps": stable,
                "final_greedy_progress": self.points[-1]["greedy_progress"], "curve": self.points}


def train_ours(track: str, minutes: float, check_every_s: float, folder: Path) -> dict:
    config = TrainingConfig(track=track, vehicle=get_vehicle("original_deepracer"),
                            reward_function_source=example_source(REWARD), hyperparameters=Hyperparameters(),
                            evaluation_episodes=0, max_episode_steps=MAX_EPISODE_STEPS, record_simtrace=False)
    trainer = start_training(folder, config)
    network = trainer.agent.network

    def act(observation) -> int:
        return int(network.predict(observation[None])[0])

    curve = LearningCurve(track, minutes, check_every_s)
    while True:
        trainer.commit_iteration(trainer.train_iteration(), None)
        if not curve.tick(trainer.env_steps, act):
            return curve.summary(trainer.env_steps, trainer.iteration)


def train_sb3(track: str, minutes: float, check_every_s: float, shared: bool) -> dict:
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
                clip_range=hp.clip_epsilon, ent_coef=hp.entropy, seed=0, device="cpu", verbose=0,
                policy_kwargs={"share_features_extractor": shared})

    def act(observation) -> int:
        return int(model.predict(observation, deterministic=True)[0])

    class Budget(BaseCallback):
        """Checks after each update (at the start of the next rollout); stops the rollout once over budget."""

        running = True

        def _on_rollout_start(self) -> None:
            if model._n_updates:
                self.running = curve.tick(int(model.num_timesteps), act)

        def _on_step(self) -> bool:
            return self.running

    curve = LearningCurve(track, minutes, check_every_s)
    model.learn(total_timesteps=10**9, callback=Budget())
    return curve.summary(int(model.num_timesteps), int(model._n_updates // hp.num_epochs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=8.0, help="training budget of each trainer")
    parser.add_argument("--track", default="pitlane_technical")
    parser.add_argument("--check-every", type=float, default=60.0, help="seconds of training between checks")
    parser.add_argument("--sb3-shared", action="store_true", help="SB3 with one CNN for policy and value")
    args = parser.parse_args()
    use_cores_for_torch(2)

    print("ours")
    with tempfile.TemporaryDirectory() as scratch:
        ours = train_ours(args.track, args.minutes, args.check_every, Path(scratch) / "ours")
    print("sb3")
    sb3 = train_sb3(args.track, args.minutes, args.check_every, args.sb3_shared)

    print(f"\n{'trainer':<8} {'env steps':>10} {'steps/s':>9} {'updates':>8} {'min to full laps':>17} "
          f"{'min to stable laps':>19} {'final progress':>15}   ({args.minutes:g} min each on {args.track})")
    for name, figures in (("ours", ours), ("sb3", sb3)):
        first, stable = figures["minutes_to_full_laps"], figures["minutes_to_stable_full_laps"]
        print(f"{name:<8} {figures['env_steps']:>10} {figures['steps_per_second']:>9.1f} {figures['updates']:>8} "
              f"{first if first is not None else '-':>17} {stable if stable is not None else '-':>19} "
              f"{figures['final_greedy_progress']:>14.1f}%")
    print(json.dumps({"benchmark": "ppo_vs_sb3", "minutes": args.minutes, "track": args.track,
                      "sb3_shared_extractor": args.sb3_shared, "cpu_bf16": cpu_has_native_bf16(),
                      "ours": ours, "sb3": sb3}))


if __name__ == "__main__":
    main()
