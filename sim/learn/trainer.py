"""The training loop: clipped PPO on the simulator, DeepRacer style, writing a model folder.

One iteration = ``episodes_between_training`` episodes collected in parallel (``sim.learn.rollouts``), then
``num_epochs`` of PPO over that experience, then a few deterministic evaluation episodes whose mean progress
tracks the best checkpoint. ``train_iteration`` returns an ``IterationResult``; ``commit_iteration`` saves it
(checkpoint, metrics, simtrace). Iterations count from 1 (checkpoints, metrics rows, a resumed run carries on);
the iteration's training simtrace is DeepRacer's file ``iteration - 1`` (``ModelFolder.training_simtrace``).
The end of the run (stop condition, Ctrl-C) writes the reward graph and the ``model.tar.gz`` (see
``sim.io.model_folder`` for the layout). Starting, resuming and cloning a training is ``sim.learn.training``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sim.io.model_folder import ModelFolder, TrainingMetrics
from sim.io.simtrace import SimTraceCsvWriter, write_sim_trace_log
from sim.learn.agent import Agent, use_cores_for_torch
from sim.learn.checkpoints import Checkpoint, prune_checkpoints, restore_checkpoint, save_checkpoint
from sim.learn.config import TrainingConfig, TrainingError
from sim.learn.export import export_model
from sim.learn.networks import build_actor_critic
from sim.learn.ppo import UpdateStats, ppo_update
from sim.learn.progress import ProgressBar, deferred_interrupt
from sim.learn.reward_graph import draw_reward_graph
from sim.learn.rollouts import EpisodeBatch, collect_episodes, evaluate_progress
from sim.race.env import VectorRaceEnv
from sim.world.reward_function import RewardFunction

KEEP_LAST_CHECKPOINTS = 2  # plus the best one: a SHALLOW checkpoint with Adam state is ~140 MB


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


@dataclass(frozen=True)
class IterationResult:
    """One trained iteration, not yet saved: its metrics row, experience and evaluation episodes.

    ``metrics`` is the row of ``sim.io.model_folder.ITERATION_FIELDS``; its ``is_best`` is decided when the
    iteration is committed (``Trainer.commit_iteration`` returns the saved row).
    """

    iteration: int
    metrics: dict[str, Any]
    batch: EpisodeBatch
    evaluation: list[dict[str, Any]]

    @property
    def progress(self) -> float:
        """What ranks checkpoints: the evaluation episodes' mean progress, else the training episodes'."""
        evaluation = self.metrics["evaluation_mean_progress"]
        return self.metrics["mean_progress"] if evaluation is None else evaluation


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
        folder.renumber_legacy_training_simtraces()  # a folder from before DeepRacer's numbering, resumed
        self.env = VectorRaceEnv(self.track, hp.episodes_between_training, config.vehicle, self.reward_function,
                                 seed=config.seed, record_simtrace=config.record_simtrace,
                                 max_episode_steps=config.max_episode_steps)
        self.evaluation_env = (
            VectorRaceEnv(self.track, config.evaluation_episodes, config.vehicle, None, seed=config.seed,
                          max_episode_steps=config.max_episode_steps)
            if config.evaluation_episodes else None
        )

    # --- one iteration ---

    def train_iteration(self, episode_count: int | None = None) -> IterationResult:
        """Collect, update, evaluate: the iteration's result (nothing is saved and the trainer is unchanged
        until ``commit_iteration``)."""
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
        metrics = self._metrics_row(iteration, batch, evaluation, stats, seconds)
        return IterationResult(iteration, metrics, batch, evaluation)

    def _metrics_row(self, iteration: int, batch: EpisodeBatch, evaluation: list[dict], stats: UpdateStats,
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

    def commit_iteration(self, result: IterationResult, log_stream: Any | None) -> dict[str, Any]:
        """Persist the iteration: checkpoint, metrics, simtrace; returns its saved metrics row. Ctrl-C waits
        until this is done (``run``)."""
        iteration, batch, row = result.iteration, result.batch, dict(result.metrics)
        if result.progress >= self.best_progress:  # ties go to the later (longer-trained) checkpoint
            self.best_iteration, self.best_progress = iteration, result.progress
            row["is_best"] = True
            for earlier in self.metrics.iterations:
                earlier["is_best"] = False
        self.iteration, self.episodes = iteration, row["episodes"]
        self.env_steps, self.elapsed_seconds = row["env_steps"], row["elapsed_seconds"]
        save_checkpoint(self.folder.root, iteration, self.agent.network, self.optimizer, self._state())
        prune_checkpoints(self.folder.root, {self.iteration - k for k in range(KEEP_LAST_CHECKPOINTS)}
                          | {self.best_iteration})
        episode_rows = [self._episode_row(iteration, e, "training") for e in batch.episodes]
        episode_rows += [self._episode_row(iteration, e, "evaluation") for e in result.evaluation]
        self.metrics.add(row, episode_rows)
        self.metrics.write()
        if batch.simtrace:
            with SimTraceCsvWriter(self.folder.training_simtrace(iteration)) as writer:
                writer.write_many(batch.simtrace)
            if log_stream is not None:
                write_sim_trace_log(log_stream, batch.simtrace)
                log_stream.flush()
        return row

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
            "start_time": summary["start_time"],
            "metric_time": summary["metric_time"],
        }

    def _state(self) -> dict[str, Any]:
        return {"episodes": self.episodes, "env_steps": self.env_steps, "elapsed_seconds": self.elapsed_seconds,
                "best_iteration": self.best_iteration, "best_progress": self.best_progress}

    # --- the run ---

    def run(self, stop: StopConditions, progress: bool = True,
            on_iteration: Callable[[dict[str, Any]], None] | None = None) -> TrainingResult:
        """Train until a stop condition or Ctrl-C, then export. Always leaves a consistent folder.

        ``on_iteration`` gets each saved iteration's metrics row.
        """
        started = time.monotonic()
        stopped_by = ""
        bar = ProgressBar(stop, self.episodes, enabled=progress)
        with self._open_log() as log_stream:
            try:
                while not (stopped_by := self._stop_reason(stop, started)):
                    remaining = (stop.max_episodes - self.episodes) if stop.max_episodes else None
                    count = self.config.hyperparameters.episodes_between_training
                    result = self.train_iteration(min(count, remaining) if remaining else count)
                    with deferred_interrupt():
                        row = self.commit_iteration(result, log_stream)
                    bar.update(row, time.monotonic() - started)
                    if on_iteration is not None:
                        on_iteration(row)
            except KeyboardInterrupt:
                stopped_by = "interrupted"  # the partial iteration is dropped; the last checkpoint stands
            finally:
                bar.close()
        with deferred_interrupt():
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
