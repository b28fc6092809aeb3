"""Time to a reliable model: train until a race-mode evaluation drives 3 consecutive laps without leaving the track.

Run: .venv/bin/python benchmarks/time_to_lap.py [--max-minutes 20] [--seeds 1] [--skip-shared] [--skip-fast]

Scenarios (each from scratch, each stopped at its budget):
  lab        the console lab's settings: camera, 3-layer CNN, 30 deg / 5 / 1 m/s / 3 (15 actions), Example 1
             reward, the console's default hyperparameters, on pitlane_technical (our built-in track shaped
             like the 2019 Championship Cup: hairpin and S-bends, curvature within 20 % of reInvent2019)
  lab-2019   the same on the real ``reInvent2019_track`` from ../shared/tracks (skipped when absent)
  fast       a 3 m/s car (30 deg / 5, speeds 1.5-3 m/s) with a speed-and-centre reward, warm-started by
             imitating the scripted driver, then PPO; its best race lap is shown next to the ideal lap time

After every training iteration the latest weights race a deterministic evaluation (fp32 argmax, as the
league's evaluator runs them): 3 laps, continuous, no reset allowed to count (any off-track fails the check).
Times are wall clock on this machine and include the checks. One training run follows one random path, so its
time varies from seed to seed: ``--seeds N`` trains the lab scenarios from seeds 0..N-1 and reports the median
and the range. Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.learn.agent import race_policy, use_cores_for_torch
from sim.learn.config import TrainingConfig
from sim.learn.hyperparameters import Hyperparameters
from sim.learn.imitation import train_imitation_model
from sim.learn.training import start_training
from sim.race.evaluation import run_race
from sim.race.ideal_lap import ideal_lap_time
from sim.world.reward_examples import example_source
from sim.world.rules import RaceRules
from sim.world.vehicle import DiscreteActionSpace, Vehicle, get_vehicle

SHARED_TRACKS = Path(__file__).resolve().parents[2] / "shared" / "tracks"
CHECK_RULES = RaceRules(total_laps=3, time_cap_s=240.0)

# Rewards speed once the car is near the centre, and a little for being on track at all.
FAST_REWARD = '''
def reward_function(params):
    if not params["all_wheels_on_track"] or params["is_offtrack"]:
        return 1e-3
    centre = 1.0 - min(1.0, params["distance_from_center"] / (0.5 * params["track_width"]))
    return float(0.2 + centre * (params["speed"] / 3.0) ** 2)
'''


@dataclass
class Outcome:
    scenario: str
    track: str
    seed: int
    reached: bool
    minutes: float
    iterations: int
    episodes: int
    env_steps: int
    best_lap_s: float | None
    ideal_lap_s: float
    check_seconds: float

    def to_dict(self) -> dict:
        return self.__dict__ | {"minutes": round(self.minutes, 2), "check_seconds": round(self.check_seconds, 1)}


def race_check(trainer) -> tuple[bool, float | None]:
    """3 consecutive clean laps in race mode? And the best completed lap time in seconds."""
    run = run_race(race_policy(trainer.agent.network), trainer.track, trainer.config.vehicle, CHECK_RULES,
                   record_simtrace=False)
    completed = [lap for lap in run.laps if lap.episode_status == "Lap complete"]
    clean = len(completed) >= 3 and all(lap.off_track_count == 0 and lap.reset_count == 0 for lap in run.laps)
    best = min((lap.elapsed_time_in_milliseconds for lap in completed), default=None)
    return clean, (best / 1000 if best is not None else None)


def train_until_clean(scenario: str, config: TrainingConfig, minutes: float, folder: Path,
                      initial_weights=None, keep_going: bool = False) -> Outcome:
    """Train iteration by iteration until the race check passes (or, with keep_going, until the budget
    ends, keeping the best clean lap) or the budget is spent."""
    started = time.monotonic()
    trainer = start_training(folder, config, initial_weights=initial_weights)
    reached, best_lap, check_seconds = False, None, 0.0
    while time.monotonic() - started < minutes * 60:
        row = trainer.commit_iteration(trainer.train_iteration(), None)
        check_started = time.monotonic()
        clean, lap = race_check(trainer)
        check_seconds += time.monotonic() - check_started
        if clean:
            reached = True
            best_lap = lap if best_lap is None else min(best_lap, lap)
        print(f"  {scenario:<9} it {row['iteration']:>3}  {(time.monotonic() - started) / 60:5.1f} min  "
              f"{row['env_steps']:>7} steps  train progress {row['mean_progress']:5.1f}%  "
              f"race: {'3 clean laps, best ' + format(lap, '.2f') + ' s' if clean else 'not yet'}", flush=True)
        if reached and not keep_going:
            break
    track = trainer.track
    speed = max(action.speed for action in config.vehicle.action_space.actions)
    ideal = round(ideal_lap_time(track, max_speed=speed).lap_time, 2)
    return Outcome(scenario, config.track, config.seed, reached, (time.monotonic() - started) / 60, trainer.iteration,
                   trainer.episodes, trainer.env_steps, best_lap, ideal, check_seconds)


def lab_config(track: str, tracks_dir: str | None, seed: int = 0) -> TrainingConfig:
    return TrainingConfig(track=track, vehicle=get_vehicle("original_deepracer"),
                          reward_function_source=example_source("example_1_follow_center_line"),
                          hyperparameters=Hyperparameters(), evaluation_episodes=0, record_simtrace=False,
                          tracks_dir=tracks_dir, seed=seed)


def fast_config() -> TrainingConfig:
    lab = get_vehicle("original_deepracer")
    actions = DiscreteActionSpace.from_granularity(30.0, 5, 3.0, 2)  # 1.5 and 3 m/s
    vehicle = Vehicle(lab.sensors, lab.neural_network, actions, name="Fast camera car")
    return TrainingConfig(track="pitlane_technical", vehicle=vehicle, reward_function_source=FAST_REWARD,
                          hyperparameters=Hyperparameters(learning_rate=1e-4), evaluation_episodes=0,
                          record_simtrace=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-minutes", type=float, default=20.0, help="budget per scenario")
    parser.add_argument("--seeds", type=int, default=1, help="lab scenarios: train from seeds 0..N-1")
    parser.add_argument("--skip-shared", action="store_true")
    parser.add_argument("--skip-fast", action="store_true")
    args = parser.parse_args()
    use_cores_for_torch(2)

    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        lab_tracks = [("lab", "pitlane_technical", None)]
        if not args.skip_shared and (SHARED_TRACKS / "reInvent2019_track.npy").is_file():
            lab_tracks.append(("lab-2019", "reInvent2019_track", str(SHARED_TRACKS)))
        for scenario, track, tracks_dir in lab_tracks:
            for seed in range(args.seeds):
                outcomes.append(train_until_clean(scenario, lab_config(track, tracks_dir, seed), args.max_minutes,
                                                  root / f"{scenario}-{seed}"))
        if not args.skip_fast:
            config = fast_config()
            warm = train_imitation_model(config.load_track(), config.vehicle, seed=0).network.state_dict()
            outcomes.append(train_until_clean("fast", config, args.max_minutes, root / "fast",
                                              initial_weights=warm, keep_going=True))

    print(f"\n{'scenario':<9} {'track':<20} {'seed':>4} {'3 clean laps':>12} {'minutes':>8} {'iters':>6} "
          f"{'episodes':>9} {'env steps':>10} {'best lap s':>11} {'ideal lap s':>12}")
    for o in outcomes:
        best = f"{o.best_lap_s:.2f}" if o.best_lap_s is not None else "-"
        print(f"{o.scenario:<9} {o.track:<20} {o.seed:>4} {'yes' if o.reached else 'NO':>12} {o.minutes:>8.2f} "
              f"{o.iterations:>6} {o.episodes:>9} {o.env_steps:>10} {best:>11} {o.ideal_lap_s:>12.2f}")
    print("(ideal lap: racing line and speed profile at the car's top speed; target: lab <= 20 minutes)")
    summaries = [summarise(scenario, outcomes) for scenario in dict.fromkeys(o.scenario for o in outcomes)]
    if args.seeds > 1:
        print(f"\n{'scenario':<9} {'seeds':>5} {'reached':>8} {'median min':>11} {'fastest':>8} {'slowest':>8} "
              f"{'median steps':>13}")
        for summary in summaries:
            print(f"{summary['scenario']:<9} {summary['seeds']:>5} {summary['reached']:>8} "
                  f"{summary['median_minutes']:>11.2f} {summary['fastest_minutes']:>8.2f} "
                  f"{summary['slowest_minutes']:>8.2f} {summary['median_env_steps']:>13.0f}")
    print(json.dumps({"benchmark": "time_to_lap", "budget_minutes": args.max_minutes, "seeds": args.seeds,
                      "summaries": summaries, "scenarios": [o.to_dict() for o in outcomes]}))


def summarise(scenario: str, outcomes: list[Outcome]) -> dict:
    """Median and range over a scenario's seeds; a seed that never reached clean laps counts at its budget."""
    runs = [o for o in outcomes if o.scenario == scenario]
    minutes = [o.minutes for o in runs]
    return {"scenario": scenario, "seeds": len(runs), "reached": sum(o.reached for o in runs),
            "median_minutes": round(statistics.median(minutes), 2), "fastest_minutes": round(min(minutes), 2),
            "slowest_minutes": round(max(minutes), 2),
            "median_env_steps": statistics.median(o.env_steps for o in runs)}


if __name__ == "__main__":
    main()
