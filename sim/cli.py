"""``python -m sim train|evaluate|garage|tracks|validate-reward``: the console lab's workflow, locally.

Each sub-command is a thin layer over the library (``sim.learn.training``/``trainer``, ``sim.race.evaluation``,
``sim.race.scoring``, ``sim.world.vehicle``, ``sim.world.track_catalog``, ``sim.world.reward_function``); errors
are printed as one clear line, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sim.io.archive import ArchiveError, load_actor_critic
from sim.learn.hyperparameters import HyperparameterError, Hyperparameters
from sim.learn.inference import PRECISIONS
from sim.race.scoring import RankingMethod, ScoringError, format_lap_time, score_run
from sim.world.reward_examples import EXAMPLE_FILES, example_source
from sim.world.reward_function import RewardFunctionError
from sim.world.rules import RaceRules
from sim.world.track_catalog import available_tracks, get_track, track_argument
from sim.world.vehicle import Vehicle, VehicleError, get_vehicle, list_vehicles

if TYPE_CHECKING:
    from sim.learn.trainer import TrainingResult

DEFAULT_REWARD = "example_1_follow_center_line"
RACING_LINE_EXAMPLE = "community_racing_line"
TRACK_HELP = "a track name (see `tracks`) or the path of a .npy route file, e.g. one from a league's tracks page"
_HYPERPARAMETER_FLAGS = {
    "batch_size": int, "num_epochs": int, "learning_rate": float, "entropy": float, "discount_factor": float,
    "loss_type": str, "episodes_between_training": int, "clip_epsilon": float, "gae_lambda": float,
    "max_iteration_steps": int,
}
_USER_ERRORS = (ArchiveError, HyperparameterError, RewardFunctionError, ScoringError, VehicleError, KeyError,
                ValueError, FileNotFoundError)


def main(argv: Sequence[str] | None = None, started: float | None = None) -> int:
    """Run one sub-command; ``started``: ``time.monotonic()`` when the process started (default: now)."""
    parser = _parser()
    args = parser.parse_args(argv)
    args.started = time.monotonic() if started is None else started
    try:
        return args.command(args)
    except _USER_ERRORS as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        return 2


# --------------------------------------------------------------------------------------------- train


def cmd_train(args: argparse.Namespace) -> int:
    started = args.started  # --max-minutes is a hard budget for the whole command, imports and set-up included
    from sim.learn.budget import StopConditions
    from sim.learn.config import TrainingConfig
    from sim.learn.training import resume_training, start_training

    stop = StopConditions(max_minutes=args.max_minutes, max_episodes=args.max_episodes)
    try:
        if args.resume:
            trainer = resume_training(args.model_dir, threads=args.threads)
            print(f"Resuming {args.model_dir} at iteration {trainer.iteration} ({trainer.episodes} episodes)")
        else:
            vehicle = get_vehicle(args.vehicle)
            config = TrainingConfig(
                track=track_argument(args.track), vehicle=vehicle, reward_function_source=_reward_source(args, vehicle),
                hyperparameters=_hyperparameters(args), evaluation_episodes=args.evaluation_episodes,
                max_episode_steps=args.max_episode_steps, seed=args.seed, export=args.export,
                record_simtrace=not args.no_simtrace, tracks_dir=args.tracks_dir,
                more_tracks=tuple(track_argument(track) for track in args.also_track), best_by=args.best_by,
            )
            trainer = start_training(args.model_dir, config, clone_from=args.clone, threads=args.threads)
            print(f"Training {args.model_dir} on {' + '.join(t.title or t.name for t in trainer.tracks)} "
                  f"(Ctrl-C stops and keeps the model)")
    except KeyboardInterrupt:
        print("Interrupted before training started: nothing was trained", file=sys.stderr)
        return 130
    result = trainer.run(stop, progress=not args.quiet, warm_start=args.warm_start, started=started)
    starting = ("the warm start's weights" if args.warm_start else "the cloned model's weights" if args.clone
                else "the weights it resumed from" if args.resume else "its untrained weights")
    print(_summary(result, time.monotonic() - started, starting))
    print(f"Model: {result.archive}")
    return 0


def _summary(result: TrainingResult, seconds: float, starting: str) -> str:
    """The run's last line; ``starting``: what the model holds when no iteration finished ("the warm start's
    weights")."""
    from sim.learn.progress import STOP_REASONS

    reason = STOP_REASONS.get(result.stopped_by, result.stopped_by)
    done = (f"{result.iterations_this_run} iteration{'s' * (result.iterations_this_run != 1)} in "
            f"{seconds / 60:.1f} min")
    if result.best_iteration is None:
        return f"Stopped ({reason}) after {done}: no iteration finished, so the model holds {starting}"
    best = ("the warm start" if result.best_iteration == 0 else f"iteration {result.best_iteration}")
    return (f"Stopped ({reason}) after {done}; the model's totals: {result.iterations} iteration"
            f"{'s' * (result.iterations != 1)}, {result.episodes} episodes, {result.env_steps:,} steps; "
            f"best: {best} ({_best_score(result)})")


def _best_score(result: TrainingResult) -> str:
    if result.best_by == "reward":
        return f"mean reward {result.best_progress:.2f}"
    return f"evaluation progress {result.best_progress:.1f}%"


def _reward_source(args: argparse.Namespace, vehicle: Vehicle) -> str:
    if args.reward_function:
        return Path(args.reward_function).read_text(encoding="utf-8")
    if args.reward_example == RACING_LINE_EXAMPLE:  # the example's line is pitlane_technical's: paste this track's
        from sim.race.racing_line_reward import racing_line_reward_source

        return racing_line_reward_source(get_track(args.track, args.tracks_dir), vehicle.top_speed)
    return example_source(args.reward_example or DEFAULT_REWARD)


def _hyperparameters(args: argparse.Namespace) -> Hyperparameters:
    values = {}
    if args.hyperparameters:
        document = json.loads(Path(args.hyperparameters).read_text(encoding="utf-8"))
        known = set(Hyperparameters.__dataclass_fields__)
        # Our own names, or a DeepRacer hyperparameters.json (lr, beta_entropy, ...).
        base = (Hyperparameters.from_dict(document) if set(document) <= known
                else Hyperparameters.from_deepracer_json(document))
        values = base.to_dict()
    for name in _HYPERPARAMETER_FLAGS:
        value = getattr(args, name)
        if value is not None:
            values[name] = value
    return Hyperparameters.from_dict(values)


# --------------------------------------------------------------------------------------------- evaluate


def cmd_evaluate(args: argparse.Namespace) -> int:
    from sim.io.render import render_track_png
    from sim.io.simtrace import evaluation_simtrace_path, write_simtrace_csv
    from sim.learn.agent import race_policy, use_cores_for_torch
    from sim.race.evaluation import run_race

    source = Path(args.model)
    if source.is_dir() and (source / "model.tar.gz").is_file():
        source = source / "model.tar.gz"  # a training model folder
    use_cores_for_torch(1)  # one car, batch 1: as the league's evaluator races it
    vehicle, network = load_actor_critic(source)
    track = get_track(args.track, args.tracks_dir)
    rules = RaceRules(total_laps=args.laps, off_track_penalty_s=args.off_track_penalty,
                      collision_penalty_s=args.collision_penalty, max_resets=args.max_resets,
                      time_cap_s=args.time_cap)
    print(f"Racing {source} on {track.title or track.name} ({track.length:.2f} m): {args.laps} laps, "
          f"off-track penalty {args.off_track_penalty:g} s")
    run = run_race(race_policy(network, args.precision), track, vehicle, rules, seed=args.seed)

    print(f"\n{'Trial':>5}  {'Time':>9}  {'Progress':>8}  {'Off track':>9}  {'Resets':>6}  Status")
    for lap in run.laps:
        print(f"{lap.trial:>5}  {format_lap_time(lap.elapsed_time_in_milliseconds):>9}  "
              f"{lap.completion_percentage:>7.1f}%  {lap.off_track_count:>9}  {lap.reset_count:>6}  "
              f"{lap.episode_status}")
    minimum = args.minimum_laps or args.laps
    print(f"\nScores (minimum {minimum} consecutive laps):")
    for method in RankingMethod:
        score = score_run(run.laps, method, minimum)
        shown = format_lap_time(score.ranking_score_ms) if score.qualified else "not qualified"
        print(f"  {method.label:<17} {shown}")

    stamp = datetime.now()
    output = Path(args.output_dir) if args.output_dir else Path(args.model if Path(args.model).is_dir() else ".")
    simtrace = write_simtrace_csv(evaluation_simtrace_path(output, stamp), run.simtrace)
    picture = simtrace.parent.parent / "trajectory.png"
    xy = np.column_stack([run.trace["x"], run.trace["y"]])
    render_track_png(track, picture, [(xy, np.asarray(run.trace["speed"]), source.name)],
                     title=f"{track.title or track.name} — {source.name}")
    laps = [lap.to_dict() for lap in run.laps]
    (simtrace.parent.parent / "evaluation_metrics.json").write_text(json.dumps({"metrics": laps}, indent=2) + "\n")
    print(f"\nSimtrace: {simtrace}\nTrajectory: {picture}")
    return 0


# --------------------------------------------------------------------------------------------- garage etc.


def cmd_garage(args: argparse.Namespace) -> int:
    if args.vehicle:
        vehicle = get_vehicle(args.vehicle)
        print(json.dumps(vehicle.to_file_dict(), indent=2))
        if vehicle.is_discrete:
            print("\nActions:")
            for index, action in enumerate(vehicle.action_space.actions):
                print(f"  {index:>2}: steering {action.steering_angle:>6.1f}°  speed {action.speed:.2f} m/s")
        return 0
    for name in list_vehicles():
        vehicle = get_vehicle(name)
        print(f"{name:<24} {vehicle.name:<28} {'+'.join(vehicle.sensors):<34} {vehicle.neural_network:<36} "
              f"{vehicle.action_space_type}")
    print("\nShow one: python -m sim garage <name or vehicle.json>")
    return 0


def cmd_tracks(args: argparse.Namespace) -> int:
    for name in available_tracks(args.tracks_dir):
        track = get_track(name, args.tracks_dir)
        print(f"{name:<28} {track.length:>7.2f} m  width {float(np.mean(track.widths)):.2f} m  {track.title}")
    return 0


def cmd_validate_reward(args: argparse.Namespace) -> int:
    from sim.world.reward_check import reward_samples  # the same check the league's Validate button runs

    path = Path(args.reward_function)
    track = get_track(args.track, args.tracks_dir)
    for name, reward in reward_samples(path.read_text(encoding="utf-8"), track, filename=path.name):
        print(f"  {name:<12} reward {reward:.4f}")
    print(f"{path} is valid")
    return 0


# --------------------------------------------------------------------------------------------- parser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sim", description="Pitlane: train and race DeepRacer models.")
    commands = parser.add_subparsers(required=True, metavar="command")

    train = commands.add_parser("train", help="train a model (clipped PPO) into a model folder")
    train.set_defaults(command=cmd_train)
    train.add_argument("model_dir", help="the model folder (created; with --resume, an existing one)")
    train.add_argument("--resume", action="store_true", help="continue the model folder's latest checkpoint")
    train.add_argument("--track", default="pitlane_oval", help=TRACK_HELP)
    train.add_argument("--also-track", action="append", default=[], metavar="TRACK",
                       help="train on this track too (repeatable): iterations rotate through the tracks and every "
                            "evaluation drives all of them, so the model generalises to tracks it has not seen")
    train.add_argument("--vehicle", default="original_deepracer", help="garage name or vehicle JSON file")
    reward = train.add_mutually_exclusive_group()
    reward.add_argument("--reward-function", help="a reward_function.py file")
    reward.add_argument("--reward-example", choices=list(EXAMPLE_FILES), help=f"default: {DEFAULT_REWARD}")
    train.add_argument("--hyperparameters", help="JSON file (our names or DeepRacer's hyperparameters.json)")
    for name, kind in _HYPERPARAMETER_FLAGS.items():
        train.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, default=None)
    train.add_argument("--max-minutes", type=float, default=None,
                       help="hard wall-clock budget of the whole command (warm start included)")
    train.add_argument("--max-episodes", type=int, default=None, help="stop after this many episodes in total")
    train.add_argument("--evaluation-episodes", type=int, default=5)
    train.add_argument("--max-episode-steps", type=int, default=1500)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--export", choices=("best", "last"), default="best", help="checkpoint put in model.tar.gz")
    train.add_argument("--best-by", choices=("progress", "reward"), default="progress",
                       help="the best checkpoint has the highest evaluation progress (default) or mean reward")
    start = train.add_mutually_exclusive_group()
    start.add_argument("--clone", help="start from this model.tar.gz (same sensors, network, action-space shape)")
    start.add_argument("--warm-start", action="store_true",
                       help="start by imitating the racing-line driver (counted in --max-minutes)")
    train.add_argument("--no-simtrace", action="store_true", help="skip training simtrace and log lines")
    train.add_argument("--threads", type=int, default=2,
                       help="torch threads (default 2; at most OMP_NUM_THREADS where that is set)")
    train.add_argument("--tracks-dir", default=None, help="folder of extra .npy tracks")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    evaluate = commands.add_parser("evaluate", help="race a model under race rules and score it")
    evaluate.set_defaults(command=cmd_evaluate)
    evaluate.add_argument("model", help="model.tar.gz, or a model folder")
    evaluate.add_argument("--track", default="pitlane_oval", help=TRACK_HELP)
    evaluate.add_argument("--laps", type=int, default=3)
    evaluate.add_argument("--minimum-laps", type=int, default=None, help="laps needed to qualify (default: --laps)")
    evaluate.add_argument("--off-track-penalty", type=float, default=2.0)
    evaluate.add_argument("--collision-penalty", type=float, default=5.0)
    evaluate.add_argument("--max-resets", type=int, default=None)
    evaluate.add_argument("--time-cap", type=float, default=180.0)
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--output-dir", default=None, help="where evaluation-<stamp>/ goes (default: the model "
                          "folder, or the current folder for an archive)")
    evaluate.add_argument("--tracks-dir", default=None)
    evaluate.add_argument("--precision", default="auto", choices=PRECISIONS,
                          help="the network's inference plan: auto (the league's: int8 dense weights, bfloat16 "
                          "convolutions where native) or fp32 (exactly as trained)")

    garage = commands.add_parser("garage", help="list the example vehicles, or show one")
    garage.set_defaults(command=cmd_garage)
    garage.add_argument("vehicle", nargs="?")

    tracks = commands.add_parser("tracks", help="list the available tracks")
    tracks.set_defaults(command=cmd_tracks)
    tracks.add_argument("--tracks-dir", default=None)

    validate = commands.add_parser("validate-reward", help="check a reward function on synthetic cars")
    validate.set_defaults(command=cmd_validate_reward)
    validate.add_argument("reward_function")
    validate.add_argument("--track", default="pitlane_oval", help=TRACK_HELP)
    validate.add_argument("--tracks-dir", default=None)
    return parser
