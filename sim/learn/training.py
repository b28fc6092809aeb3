"""The training loop: clipped PPO on the simulator, DeepRacer style, writing a model folder.

One iteration = ``episodes_between_training`` episodes, each starting 5 % of the lap after the previous one
(round robin), collected in parallel as the cars of one ``VectorRaceEnv`` (a car that finished its episode
waits and is skipped for inference), then ``num_epochs`` of PPO over that experience, then a few
deterministic evaluation episodes whose mean progress tracks the best checkpoint. Every iteration writes
a checkpoint and the metrics; the end of the run (stop condition, Ctrl-C) writes the reward graph and the
``model.tar.gz`` (see ``sim.io.model_folder`` for the layout).
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sim.io.archive import load_model, write_model_archive
from sim.io.model_folder import ModelFolder, TrainingMetrics, write_json
from sim.io.simtrace import SimTraceCsvWriter, SimTraceRow, write_sim_trace_log
from sim.learn.agent import Agent, use_cores_for_torch
from sim.learn.checkpoints import (
    Checkpoint,
    checkpoint_dir,
    latest_checkpoint,
    load_weights,
    read_checkpoint,
    restore_checkpoint,
    save_checkpoint,
)
from sim.learn.hyperparameters import Hyperparameters
from sim.learn.networks import build_actor_critic
from sim.learn.ppo import Rollout, UpdateStats, ppo_update
from sim.learn.reward_graph import draw_reward_graph
from sim.race.env import VectorRaceEnv
from sim.world import rules as R
from sim.world.params import synthetic_params
from sim.world.reward_function import RewardFunction, validate_reward_function
from sim.world.track import Track
from sim.world.track_catalog import get_track
from sim.world.vehicle import Vehicle

EXPORT_CHOICES = ("best", "last")
KEEP_LAST_CHECKPOINTS = 2  # plus the best one: a SHALLOW checkpoint with Adam state is ~140 MB


class TrainingError(ValueError):
    """Training cannot start or continue (bad settings, incompatible clone, missing model folder)."""


@dataclass(frozen=True)
class TrainingConfig:
    """Everything that defines a training run (saved as ``training.json`` so ``resume`` needs nothing else)."""

    track: str
    vehicle: Vehicle
    reward_function_source: str
    hyperparameters: Hyperparameters = field(default_factory=Hyperparameters)
    evaluation_episodes: int = 5
    max_episode_steps: int = 1500  # 100 s: an episode slower than this is going nowhere
    seed: int = 0
    export: str = "best"
    mixed_precision: bool | None = None  # None: bf16 autocast only on CPUs with native bf16 (sim.learn.agent)
    record_simtrace: bool = True
    tracks_dir: str | None = None

    def __post_init__(self) -> None:
        if self.export not in EXPORT_CHOICES:
            raise TrainingError(f"export must be 'best' or 'last', got {self.export!r}")
        if not 0 <= self.evaluation_episodes <= 20:
            raise TrainingError(f"evaluation_episodes must be between 0 and 20, got {self.evaluation_episodes}")
        if self.max_episode_steps < 30:
            raise TrainingError(f"max_episode_steps must be at least 30, got {self.max_episode_steps}")

    def to_json(self) -> dict[str, Any]:
        return {
            "track": self.track,
            "vehicle": self.vehicle.to_file_dict(),
            "hyperparameters": self.hyperparameters.to_dict(),
            "evaluation_episodes": self.evaluation_episodes,
            "max_episode_steps": self.max_episode_steps,
            "seed": self.seed,
            "export": self.export,
            "mixed_precision": self.mixed_precision,
            "record_simtrace": self.record_simtrace,
            "tracks_dir": self.tracks_dir,
        }

    @classmethod
    def from_json(cls, document: dict[str, Any], reward_function_source: str) -> TrainingConfig:
        values = dict(document)
        values.pop("cloned_from", None)  # provenance only
        values["vehicle"] = Vehicle.from_file_dict(values["vehicle"])
        values["hyperparameters"] = Hyperparameters.from_dict(values["hyperparameters"])
        return cls(reward_function_source=reward_function_source, **values)

    def load_track(self) -> Track:
        try:
            return get_track(self.track, self.tracks_dir)
        except KeyError as error:
            raise TrainingError(str(error.args[0])) from None


@dataclass(frozen=True)
class StopConditions:
    """``max_minutes``: wall-clock of this session (checked between iterations); ``max_episodes``: total
    training episodes of the model (a resumed run counts the earlier ones)."""

    max_minutes: float | None = None
    max_episodes: int | None = None

    def __post_init__(self) -> None:
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise TrainingError(f"max_minutes must be positive, got {self.max_minutes}")
        if self.max_episodes is not None and self.max_episodes < 1:
            raise TrainingError(f"max_episodes must be at least 1, got {self.max_episodes}")
        if self.max_minutes is None and self.max_episodes is None:
            raise TrainingError("give a stop condition: max_minutes and/or max_episodes")


@dataclass(frozen=True)
class TrainingResult:
    iterations: int
    episodes: int
    env_steps: int
    best_iteration: int | None
    best_progress: float
    stopped_by: str  # "max_minutes" | "max_episodes" | "interrupted"
    archive: Path | None


@dataclass
class EpisodeBatch:
    """The experience of one iteration: a padded rollout plus one summary per finished episode."""

    rollout: Rollout
    episodes: list[dict[str, Any]]
    simtrace: list[SimTraceRow]
    env_steps: int


# --------------------------------------------------------------------------------------------- collection


def round_robin_starts(first_episode: int, count: int) -> np.ndarray:
    """Start positions (fraction of the lap) of episodes ``first_episode .. first_episode + count - 1``."""
    return ((first_episode + np.arange(count)) * R.ROUND_ROBIN_ADVANCE) % 1.0


def collect_episodes(env: VectorRaceEnv, agent: Agent, count: int, first_episode: int) -> EpisodeBatch:
    """Run ``count`` training episodes in parallel (one per car) from their round-robin starts.

    The first (prepare) step of each episode is kept out of the rollout: the car is held, so its action
    changes nothing and would only add noise to the policy gradient.
    """
    if not 1 <= count <= env.num_envs:
        raise ValueError(f"count must be between 1 and {env.num_envs}, got {count}")
    n = env.num_envs
    env.start_ndist[:count] = round_robin_starts(first_episode, count)
    observation, _ = env.reset()
    env.active[count:] = False
    waiting = ~env.active.copy()
    steps: dict[str, list] = {k: [] for k in ("observations", "actions", "log_probs", "values", "rewards", "dones",
                                              "mask")}
    episodes: list[dict[str, Any]] = []
    simtrace: list[SimTraceRow] = []
    env_steps = 0
    placeholder = np.zeros(n, dtype=np.int64) if env.vehicle.is_discrete else np.zeros((n, 2), dtype=np.float32)
    while not waiting.all():
        live = np.flatnonzero(~waiting)
        sample = agent.sample(_take(observation, live))
        actions = placeholder.copy()
        actions[live] = sample.actions
        log_probs, values = np.zeros(n, np.float32), np.zeros(n, np.float32)
        log_probs[live], values[live] = sample.log_probs, sample.values
        steps["observations"].append(observation)
        observation, rewards, terminated, truncated, info = env.step(actions)
        env_steps += len(live)
        done = (terminated | truncated) & ~waiting
        steps["actions"].append(actions)
        steps["log_probs"].append(log_probs)
        steps["values"].append(values)
        steps["rewards"].append(rewards.astype(np.float32))
        steps["dones"].append(done)
        steps["mask"].append(~waiting & (info["status"] != R.PREPARE))
        for summary in info["episodes"]:
            car = summary["car"]
            if waiting[car]:
                continue
            summary = dict(summary, episode=first_episode + car)
            episodes.append(summary)
            if env.record_simtrace:
                simtrace.extend(row._replace(episode=first_episode + car) for row in env.records[car].simtrace)
            waiting[car] = True
            env.active[car] = False  # the env restarted it: park it until the next iteration
    episodes.sort(key=lambda e: e["episode"])
    rollout = Rollout(
        observations=_stack(steps["observations"]),
        actions=np.stack(steps["actions"]),
        log_probs=np.stack(steps["log_probs"]),
        values=np.stack(steps["values"]),
        rewards=np.stack(steps["rewards"]),
        dones=np.stack(steps["dones"]),
        last_values=np.zeros(n, np.float32),  # every episode ended
        mask=np.stack(steps["mask"]),
    )
    simtrace.sort(key=lambda row: (row.episode, row.steps))
    return EpisodeBatch(rollout, episodes, simtrace, env_steps)


def evaluate_progress(env: VectorRaceEnv, agent: Agent) -> list[dict[str, Any]]:
    """Deterministic training-rule episodes from evenly spaced starts (one per car): their summaries."""
    n = env.num_envs
    env.start_ndist[:] = np.arange(n) / n
    observation, _ = env.reset()
    waiting = np.zeros(n, dtype=bool)
    summaries: list[dict[str, Any]] = []
    placeholder = np.zeros(n, dtype=np.int64) if env.vehicle.is_discrete else np.zeros((n, 2), dtype=np.float32)
    while not waiting.all():
        live = np.flatnonzero(~waiting)
        actions = placeholder.copy()
        actions[live] = agent.predict(_take(observation, live))
        observation, _, _, _, info = env.step(actions)
        for summary in info["episodes"]:
            if not waiting[summary["car"]]:
                summaries.append(summary)
                waiting[summary["car"]] = True
                env.active[summary["car"]] = False
    return sorted(summaries, key=lambda s: s["car"])


def _take(observation: Any, index: np.ndarray) -> Any:
    if isinstance(observation, dict):
        return {key: value[index] for key, value in observation.items()}
    return observation[index]


def _stack(observations: list[Any]) -> Any:
    if isinstance(observations[0], dict):
        return {key: np.stack([o[key] for o in observations]) for key in observations[0]}
    return np.stack(observations)


# --------------------------------------------------------------------------------------------- the trainer


class Trainer:
    """A model folder being trained. Build with ``start_training`` or ``resume_training``, then ``run``."""

    def __init__(self, folder: ModelFolder, config: TrainingConfig, checkpoint: Checkpoint | None = None,
                 initial_weights: dict[str, torch.Tensor] | None = None, threads: int = 2) -> None:
        self.folder, self.config = folder, config
        use_cores_for_torch(threads)
        self.track = config.load_track()
        self.reward_function = RewardFunction.from_source(config.reward_function_source)
        hp = config.hyperparameters
        network = build_actor_critic(config.vehicle, seed=config.seed)
        if initial_weights is not None:
            network.load_state_dict(initial_weights, strict=True)
        self.agent = Agent(network, mixed_precision=config.mixed_precision)
        # eps 1e-5 as in CleanRL/SB3 PPO (Adam's 1e-8 lets tiny second moments blow steps up); fused: one
        # kernel over the 12 M parameters instead of a Python loop of per-tensor ops.
        self.optimizer = torch.optim.Adam(network.parameters(), lr=hp.learning_rate, eps=1e-5, fused=True)
        self.iteration = self.episodes = self.env_steps = 0
        self.elapsed_seconds = 0.0
        self.best_iteration: int | None = None
        self.best_progress = -1.0
        if checkpoint is not None:
            restore_checkpoint(checkpoint, network, self.optimizer)
            state = checkpoint.state
            self.iteration, self.episodes = checkpoint.iteration, int(state["episodes"])
            self.env_steps, self.elapsed_seconds = int(state["env_steps"]), float(state["elapsed_seconds"])
            self.best_iteration, self.best_progress = state["best_iteration"], float(state["best_progress"])
        self.metrics = TrainingMetrics.load(folder, self.iteration)
        self.env = VectorRaceEnv(self.track, hp.episodes_between_training, config.vehicle, self.reward_function,
                                 seed=config.seed, record_simtrace=config.record_simtrace,
                                 max_episode_steps=config.max_episode_steps)
        self.evaluation_env = (
            VectorRaceEnv(self.track, config.evaluation_episodes, config.vehicle, None, seed=config.seed,
                          max_episode_steps=config.max_episode_steps)
            if config.evaluation_episodes else None
        )

    # --- one iteration ---

    def train_iteration(self, episode_count: int | None = None) -> dict[str, Any]:
        """Collect, update, evaluate: returns the iteration's metrics row (not yet saved)."""
        hp, config = self.config.hyperparameters, self.config
        iteration = self.iteration + 1
        count = episode_count or hp.episodes_between_training
        torch.manual_seed(config.seed * 1_000_003 + iteration)  # sampling is reproducible and resumable
        generator = np.random.default_rng([config.seed, iteration])
        started = time.perf_counter()
        batch = collect_episodes(self.env, self.agent, count, self.episodes)
        stats = ppo_update(self.agent, self.optimizer, batch.rollout, hp, generator)
        evaluation = evaluate_progress(self.evaluation_env, self.agent) if self.evaluation_env else []
        seconds = time.perf_counter() - started
        self._pending = (iteration, batch, evaluation)
        return self._iteration_row(iteration, batch, evaluation, stats, seconds)

    def _iteration_row(self, iteration: int, batch: EpisodeBatch, evaluation: list[dict], stats: UpdateStats,
                       seconds: float) -> dict[str, Any]:
        episodes = batch.episodes
        evaluation_progress = float(np.mean([e["progress"] for e in evaluation])) if evaluation else None
        return {
            "iteration": iteration,
            "episodes": self.episodes + len(episodes),
            "elapsed_seconds": round(self.elapsed_seconds + seconds, 3),
            "env_steps": self.env_steps + batch.env_steps,
            "mean_reward": float(np.mean([e["reward"] for e in episodes])),
            "mean_progress": float(np.mean([e["progress"] for e in episodes])),
            "laps_completed": sum(e["lap_complete"] for e in episodes),
            "evaluation_mean_progress": evaluation_progress,
            "evaluation_laps_completed": sum(e["lap_complete"] for e in evaluation) if evaluation else None,
            "policy_loss": stats.policy_loss,
            "value_loss": stats.value_loss,
            "entropy": stats.entropy,
            "approx_kl": stats.approx_kl,
            "clip_fraction": stats.clip_fraction,
            "steps_per_second": round(batch.env_steps / max(seconds, 1e-9), 1),
            "is_best": False,
        }

    def commit_iteration(self, row: dict[str, Any], log_stream: Any | None) -> None:
        """Persist the iteration: checkpoint, metrics, simtrace. Ctrl-C waits until this is done."""
        iteration, batch, evaluation = self._pending
        progress = row["evaluation_mean_progress"]
        if progress is None:
            progress = row["mean_progress"]
        if progress >= self.best_progress:  # ties go to the later (longer-trained) checkpoint
            self.best_iteration, self.best_progress = iteration, progress
            row["is_best"] = True
            for earlier in self.metrics.iterations:
                earlier["is_best"] = False
        self.iteration, self.episodes = iteration, row["episodes"]
        self.env_steps, self.elapsed_seconds = row["env_steps"], row["elapsed_seconds"]
        save_checkpoint(self.folder.root, iteration, self.agent.network, self.optimizer, self._state())
        self._prune_checkpoints()
        episode_rows = [self._episode_row(iteration, e, "training") for e in batch.episodes]
        episode_rows += [self._episode_row(iteration, e, "evaluation") for e in evaluation]
        self.metrics.add(row, episode_rows)
        self.metrics.write()
        if batch.simtrace:
            with SimTraceCsvWriter(self.folder.training_simtrace(iteration)) as writer:
                writer.write_many(batch.simtrace)
            if log_stream is not None:
                write_sim_trace_log(log_stream, batch.simtrace)
                log_stream.flush()

    @staticmethod
    def _episode_row(iteration: int, summary: dict[str, Any], phase: str) -> dict[str, Any]:
        return {
            "iteration": iteration,
            "episode": summary["episode"] if phase == "training" else summary["car"],
            "phase": phase,
            "reward": round(summary["reward"], 4),
            "progress": round(summary["progress"], 4),
            "steps": summary["steps"],
            "status": summary["status"],
            "lap_complete": summary["lap_complete"],
            "start_ndist": round(summary["start_ndist"], 4),
        }

    def _state(self) -> dict[str, Any]:
        return {"episodes": self.episodes, "env_steps": self.env_steps, "elapsed_seconds": self.elapsed_seconds,
                "best_iteration": self.best_iteration, "best_progress": self.best_progress}

    def _prune_checkpoints(self) -> None:
        keep = {self.iteration - k for k in range(KEEP_LAST_CHECKPOINTS)} | {self.best_iteration}
        root = self.folder.root / "checkpoints"
        for path in root.iterdir():
            complete = path.name.startswith("iteration-") and not path.name.endswith(".partial")
            if complete and int(path.name.split("-")[1]) not in keep:
                shutil.rmtree(path, ignore_errors=True)

    # --- the run ---

    def run(self, stop: StopConditions, progress: bool = True,
            on_iteration: Callable[[dict[str, Any]], None] | None = None) -> TrainingResult:
        """Train until a stop condition or Ctrl-C, then export. Always leaves a consistent folder."""
        started = time.monotonic()
        stopped_by = ""
        bar = _ProgressBar(stop, self.episodes, enabled=progress)
        with self._open_log() as log_stream:
            try:
                while not (stopped_by := self._stop_reason(stop, started)):
                    remaining = (stop.max_episodes - self.episodes) if stop.max_episodes else None
                    count = self.config.hyperparameters.episodes_between_training
                    row = self.train_iteration(min(count, remaining) if remaining else count)
                    with _deferred_interrupt():
                        self.commit_iteration(row, log_stream)
                    bar.update(row, time.monotonic() - started)
                    if on_iteration is not None:
                        on_iteration(row)
            except KeyboardInterrupt:
                stopped_by = "interrupted"  # the partial iteration is dropped; the last checkpoint stands
            finally:
                bar.close()
        with _deferred_interrupt():
            archive = self.finish()
        return TrainingResult(self.iteration, self.episodes, self.env_steps, self.best_iteration,
                              self.best_progress, stopped_by, archive)

    def _open_log(self) -> Any:
        if not self.config.record_simtrace:
            return contextlib.nullcontext()
        path = self.folder.new_training_log()
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("a", encoding="utf-8")

    def _stop_reason(self, stop: StopConditions, started: float) -> str:
        if stop.max_episodes is not None and self.episodes >= stop.max_episodes:
            return "max_episodes"
        if stop.max_minutes is not None and time.monotonic() - started >= stop.max_minutes * 60:
            return "max_minutes"
        return ""

    def finish(self) -> Path | None:
        """Reward graph and ``model.tar.gz`` (of the best or last checkpoint); None before any iteration."""
        if self.iteration == 0:
            return None
        draw_reward_graph(self.folder.reward_graph, self.metrics.iterations,
                          [e for e in self.metrics.episodes if e["phase"] == "training"], self.best_iteration,
                          title=f"Reward graph — {self.folder.root.name} on {self.track.title or self.track.name}")
        return export_model(self.folder, self.config.export)


def export_model(folder: ModelFolder, which: str = "best", path: Path | None = None) -> Path:
    """Write ``model.tar.gz`` from the best or last checkpoint of a model folder (SPEC §6)."""
    if which not in EXPORT_CHOICES:
        raise TrainingError(f"export must be 'best' or 'last', got {which!r}")
    config = load_config(folder)
    last = latest_checkpoint(folder.root)
    if last is None:
        raise TrainingError(f"{folder.root} has no checkpoint yet: train at least one iteration")
    chosen = last
    best = last.state.get("best_iteration")
    if which == "best" and best is not None and checkpoint_dir(folder.root, best).is_dir():
        chosen = read_checkpoint(checkpoint_dir(folder.root, best))
    metrics = TrainingMetrics.load(folder, last.iteration).files()
    if folder.reward_graph.is_file():
        metrics["reward_graph.png"] = folder.reward_graph.read_bytes()
    hyperparameters = dict(config.hyperparameters.to_deepracer_json(), exported_iteration=chosen.iteration)
    return write_model_archive(path or folder.archive, config.vehicle, load_weights(chosen.path),
                               reward_function_source=config.reward_function_source,
                               hyperparameters=hyperparameters, training_metrics=metrics)


# --------------------------------------------------------------------------------------------- set-up


def load_config(folder: ModelFolder) -> TrainingConfig:
    if not folder.exists():
        raise TrainingError(f"{folder.root} is not a model folder (no {folder.config.name})")
    return TrainingConfig.from_json(json.loads(folder.config.read_text()), folder.reward_function.read_text())


def start_training(model_dir: str | Path, config: TrainingConfig, clone_from: str | Path | None = None,
                   initial_weights: dict[str, torch.Tensor] | None = None, threads: int = 2) -> Trainer:
    """A new model folder (must not hold a model yet); ``clone_from`` a ``model.tar.gz`` to start from its
    weights (same sensors, network and action-space shape), or ``initial_weights`` (e.g. a warm start)."""
    folder = ModelFolder(Path(model_dir))
    if folder.exists():
        raise TrainingError(f"{folder.root} already holds a model: resume it, or choose a new folder")
    track = config.load_track()
    # As the console's "Validate": run it on synthetic cars of this track before any file is written.
    names, cars = synthetic_params(track)
    validate_reward_function(config.reward_function_source, cars, names=names)
    if clone_from is not None:
        initial_weights = clone_weights(clone_from, config.vehicle)
    folder.root.mkdir(parents=True, exist_ok=True)
    folder.reward_function.write_text(config.reward_function_source, encoding="utf-8")
    write_json(folder.model_metadata, config.vehicle.to_model_metadata())
    write_json(folder.hyperparameters, config.hyperparameters.to_deepracer_json())
    write_json(folder.config, dict(config.to_json(), cloned_from=str(clone_from) if clone_from else None))
    return Trainer(folder, config, initial_weights=initial_weights, threads=threads)


def resume_training(model_dir: str | Path, threads: int = 2) -> Trainer:
    """Continue a model folder from its latest checkpoint (iteration and episode counts carry on)."""
    folder = ModelFolder(Path(model_dir))
    config = load_config(folder)
    return Trainer(folder, config, checkpoint=latest_checkpoint(folder.root), threads=threads)


def clone_weights(archive: str | Path, vehicle: Vehicle) -> dict[str, torch.Tensor]:
    """The weights of a ``model.tar.gz`` for a new training of ``vehicle``; a clear error if they cannot fit."""
    source, weights = load_model(archive)
    differences = []
    if source.sensors != vehicle.sensors:
        differences.append(f"sensors {list(source.sensors)} vs {list(vehicle.sensors)}")
    if source.neural_network != vehicle.neural_network:
        differences.append(f"network {source.neural_network} vs {vehicle.neural_network}")
    if source.action_space_type != vehicle.action_space_type:
        differences.append(f"{source.action_space_type} vs {vehicle.action_space_type} action space")
    elif source.action_space.policy_output_size != vehicle.action_space.policy_output_size:
        differences.append(f"{source.action_space.policy_output_size} vs "
                           f"{vehicle.action_space.policy_output_size} actions")
    if differences:
        raise TrainingError(f"cannot clone {archive}: the model and the vehicle differ in " + "; ".join(differences)
                            + " (a clone keeps the sensors, network and action-space shape)")
    return weights


# --------------------------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C while files are written, then raise it: a checkpoint or archive is never cut in half."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[Any] = []
    previous = signal.signal(signal.SIGINT, lambda *args: received.append(args))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


class _ProgressBar:
    """tqdm bar over episodes: iteration, episodes, mean reward, mean progress, laps, time left."""

    def __init__(self, stop: StopConditions, episodes: int, enabled: bool) -> None:
        self.stop, self.enabled, self.first_episodes = stop, enabled, episodes
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=stop.max_episodes, initial=episodes, unit="ep", dynamic_ncols=True,
                            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} ep [{elapsed}{postfix}]"
                            if stop.max_episodes else "{n_fmt} ep [{elapsed}{postfix}]")

    def update(self, row: dict[str, Any], elapsed: float) -> None:
        if self.bar is None:
            return
        self.bar.update(row["episodes"] - self.bar.n)
        left = []
        if self.stop.max_minutes is not None:
            left.append(self.stop.max_minutes * 60 - elapsed)
        done = row["episodes"] - self.first_episodes
        if self.stop.max_episodes is not None and done > 0:
            left.append((self.stop.max_episodes - row["episodes"]) * elapsed / done)
        evaluation = row["evaluation_mean_progress"]
        self.bar.set_postfix_str(
            f"it {row['iteration']} | reward {row['mean_reward']:.1f} | progress {row['mean_progress']:.1f}%"
            + (f" (eval {evaluation:.1f}%)" if evaluation is not None else "")
            + f" | laps {row['laps_completed']} | left {_minutes(min(left)) if left else '?'}"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _minutes(seconds: float) -> str:
    seconds = max(0, math.ceil(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"
