"""The training loop: clipped PPO on the simulator, DeepRacer style, writing a model folder.

One iteration = ``episodes_between_training`` episodes collected in parallel (``sim.learn.rollouts``), then
``num_epochs`` of PPO over that experience, then a few deterministic evaluation episodes whose mean progress
tracks the best checkpoint. ``train_iteration`` returns an ``IterationResult``; ``commit_iteration`` saves it
(checkpoint, metrics, reward graph, simtrace). Iterations count from 1 (checkpoints, metrics rows, a resumed run
carries on); checkpoint 0 holds the starting weights (random, cloned or warm-started) so that a run stopped before
its first iteration still exports a model. The iteration's training simtrace is DeepRacer's file
``iteration - 1`` (``ModelFolder.training_simtrace``). ``run`` honours ``sim.learn.budget`` (hard clock, Ctrl-C)
and always ends with ``model.tar.gz`` (see ``sim.io.model_folder`` for the layout). Starting, resuming and cloning
a training is ``sim.learn.training``.
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

from sim.io.camera_film import FilmRecorder
from sim.io.model_folder import ModelFolder, TrainingMetrics
from sim.io.simtrace import SimTraceCsvWriter, write_sim_trace_log
from sim.learn.agent import Agent, use_cores_for_torch
from sim.learn.budget import RunBudget, RunStopped, StopConditions
from sim.learn.checkpoints import (
    Checkpoint,
    latest_checkpoint,
    prune_checkpoints,
    restore_checkpoint,
    save_checkpoint,
)
from sim.learn.config import TrainingConfig, TrainingError
from sim.learn.export import export_model
from sim.learn.imitation import racing_line_driver, train_imitation_model
from sim.learn.networks import build_actor_critic
from sim.learn.ppo import UpdateStats, ppo_update
from sim.learn.progress import SILENT_MONITOR, IterationMonitor, RunMonitor
from sim.learn.reward_graph import draw_reward_graph
from sim.learn.rollouts import EpisodeBatch, collect_episodes, evaluate_progress
from sim.race.env import VectorRaceEnv
from sim.world.reward_function import RewardFunction
from sim.world.vehicle import Vehicle

KEEP_LAST_CHECKPOINTS = 2  # plus the best one: a SHALLOW checkpoint with Adam state is ~140 MB
# Racing-line imitation of a 21-action 3 m/s car on reInvent2019: 4,000 frames x 4 epochs lapped with off-tracks;
# 8,000 x 6 drove 3 clean laps at 1.016x the ideal lap (pitlane_technical: 1.017x already with 4,000 x 4).
WARM_START_FRAMES, WARM_START_EPOCHS = 8000, 6

# StopConditions: sim.learn.budget's, offered here too
__all__ = ["IterationResult", "StopConditions", "Trainer", "TrainingResult", "training_disk_bytes"]


def check_warm_start(vehicle: Vehicle) -> None:
    """A warm start imitates the driver's discrete actions: ``TrainingError`` for a vehicle that has none."""
    if not vehicle.is_discrete:
        raise TrainingError("the warm start imitates a driver's discrete actions: it needs a discrete action space")


def training_disk_bytes(vehicle: Vehicle) -> int:
    """The most disk a training of this car fills at once: the checkpoints kept (the last ``KEEP_LAST_CHECKPOINTS``
    and the best) and the one being written, each the weights and Adam's two moments in float32, the exported
    model, and 64 MiB for metrics, simtraces and logs. A service that caps a training's disk checks this first."""
    with torch.device("meta"):  # counts the parameters without allocating them (a large network is ~0.5 GB)
        parameters = sum(p.numel() for p in build_actor_critic(vehicle).parameters())
    weights = parameters * 4
    return (KEEP_LAST_CHECKPOINTS + 2) * 3 * weights + weights + 64 * 1024**2


def _go_on() -> None:
    """The check of an iteration run without a budget: never stops it."""


@dataclass(frozen=True)
class TrainingResult:
    """How a run ended. ``iterations``/``episodes``/``env_steps`` are the model's totals (a resumed run counts
    the earlier ones); ``best_progress`` is None until an iteration has been committed."""

    iterations_this_run: int
    iterations: int
    episodes: int
    env_steps: int
    best_iteration: int | None
    best_progress: float | None  # the best checkpoint's score: evaluation progress %, or mean reward (``best_by``)
    stopped_by: str  # "max_minutes" | "max_episodes" | "interrupted"
    archive: Path
    best_by: str = "progress"


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
        """The evaluation episodes' mean progress, else the training episodes'."""
        evaluation = self.metrics["evaluation_mean_progress"]
        return self.metrics["mean_progress"] if evaluation is None else evaluation

    def score(self, best_by: str) -> float:
        """What ranks checkpoints (``TrainingConfig.best_by``): evaluation progress, or mean training reward."""
        return self.metrics["mean_reward"] if best_by == "reward" else self.progress

    @property
    def evaluation_lap_steps(self) -> float | None:
        """The mean steps of the evaluation episodes that completed their lap (the lap time in steps), if any."""
        return _lap_steps(self.evaluation)


def _lap_steps(evaluation: list[dict[str, Any]]) -> float | None:
    laps = [episode["steps"] for episode in evaluation if episode["lap_complete"]]
    return float(np.mean(laps)) if laps else None


class Trainer:
    """A model folder being trained. Build with ``start_training`` or ``resume_training``, then ``run``."""

    def __init__(self, folder: ModelFolder, config: TrainingConfig, checkpoint: Checkpoint | None = None,
                 initial_weights: dict[str, torch.Tensor] | None = None, threads: int = 2) -> None:
        self.folder, self.config = folder, config
        use_cores_for_torch(threads)
        self.tracks = config.load_tracks()
        self.track = self.tracks[0]  # the main track: warm start, racing line, the reward graph's title
        self.reward_function = RewardFunction.from_source(config.reward_function_source)
        hp = config.hyperparameters
        network = build_actor_critic(config.vehicle, seed=config.seed)
        if initial_weights is not None:
            network.load_state_dict(initial_weights, strict=True)
        # A clone (or a warm start) begins with weights worth keeping: they are ranked as "iteration 0" (``run``).
        self.starts_from_weights = initial_weights is not None and checkpoint is None
        self.agent = Agent(network, mixed_precision=config.mixed_precision)
        # eps 1e-5 as in CleanRL/SB3 PPO (Adam's 1e-8 lets tiny second moments blow steps up); fused: one
        # kernel over the 12 M parameters instead of a Python loop of per-tensor ops.
        self.optimizer = torch.optim.Adam(network.parameters(), lr=hp.learning_rate, eps=1e-5, fused=True)
        self.iteration = self.episodes = self.env_steps = 0
        self.elapsed_seconds = 0.0
        self.best_iteration: int | None = None
        self.best_progress = -1.0
        self.best_lap_steps: float | None = None  # the best checkpoint's evaluation lap time, in steps
        if checkpoint is not None:
            restore_checkpoint(checkpoint, network, self.optimizer)
            state = checkpoint.state
            self.iteration, self.episodes = checkpoint.iteration, int(state["episodes"])
            self.env_steps, self.elapsed_seconds = int(state["env_steps"]), float(state["elapsed_seconds"])
            self.best_iteration, self.best_progress = state["best_iteration"], float(state["best_progress"])
            self.best_lap_steps = state.get("best_lap_steps")  # absent in checkpoints from before the tie-break
        self.metrics = TrainingMetrics.load(folder, self.iteration)
        folder.renumber_legacy_training_simtraces()  # a folder from before DeepRacer's numbering, resumed
        self.training_envs = [
            VectorRaceEnv(track, hp.episodes_between_training, config.vehicle, self.reward_function,
                          seed=config.seed, record_simtrace=config.record_simtrace, objects=self._objects(track),
                          max_episode_steps=config.max_episode_steps)
            for track in self.tracks
        ]
        # Every evaluation drives every track (cars shared out, at least one each): checkpoints of a multi-track
        # run are ranked on all of them, not on whichever track the iteration happened to train on.
        cars_per_track = -(-config.evaluation_episodes // len(self.tracks))
        self.evaluation_envs = [
            VectorRaceEnv(track, cars_per_track, config.vehicle, None, seed=config.seed,
                          objects=self._objects(track), max_episode_steps=config.max_episode_steps)
            for track in self.tracks
        ] if config.evaluation_episodes else []
        # Set to record what the first evaluation car sees on the main track (the web console shows it).
        self.film: FilmRecorder | None = None

    def _objects(self, track: Any) -> Any:
        from sim.world.objects import objects_from_spec

        return objects_from_spec(track, self.config.objects)

    @property
    def env(self) -> VectorRaceEnv:
        """The main track's training env."""
        return self.training_envs[0]

    def training_env(self, iteration: int) -> VectorRaceEnv:
        """The env an iteration trains on: iterations rotate through the tracks, the main one first."""
        return self.training_envs[(iteration - 1) % len(self.training_envs)]

    def evaluate(self, check: Callable[[], None] = _go_on) -> list[dict[str, Any]]:
        """Deterministic evaluation episodes on every training track (their summaries, tracks in order)."""
        episodes: list[dict[str, Any]] = []
        if self.film is not None:
            self.film.reset()
        for index, env in enumerate(self.evaluation_envs):
            episodes += evaluate_progress(env, self.agent, on_step=lambda *_: check(),
                                          film=self.film if index == 0 else None)
        return episodes

    # --- one iteration ---

    def train_iteration(self, episode_count: int | None = None, budget: RunBudget | None = None,
                        monitor: IterationMonitor | None = None) -> IterationResult:
        """Collect, update, evaluate: the iteration's result (nothing is saved and the trainer is unchanged
        until ``commit_iteration``). With a ``budget``, raises ``RunStopped`` at the first safe point after it
        runs out; ``monitor`` is told every env step, finished episode and minibatch."""
        hp, config = self.config.hyperparameters, self.config
        iteration = self.iteration + 1
        count = episode_count or hp.episodes_between_training
        monitor = monitor or SILENT_MONITOR
        check = budget.check if budget is not None else _go_on
        torch.manual_seed(config.seed * 1_000_003 + iteration)  # sampling is reproducible and resumable
        generator = np.random.default_rng([config.seed, iteration])
        started = time.perf_counter()
        monitor.iteration_started(iteration, count)

        def on_step(live_cars: int, finished: list[dict[str, Any]]) -> None:
            monitor.env_steps(live_cars, finished)
            check()

        def on_minibatch(done: int, total: int) -> None:
            monitor.minibatches(done, total)
            check()

        batch = collect_episodes(self.training_env(iteration), self.agent, count, self.episodes, on_step=on_step,
                                 max_steps=hp.max_iteration_steps)
        monitor.phase("updating")
        stats = ppo_update(self.agent, self.optimizer, batch.rollout, hp, generator, on_minibatch=on_minibatch)
        monitor.phase("evaluating")
        evaluation = self.evaluate(check)
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
        score = result.score(self.config.best_by)
        lap_steps = result.evaluation_lap_steps if self.config.best_by == "progress" else None
        if self._beats_best(score, lap_steps):
            self.best_iteration, self.best_progress, self.best_lap_steps = iteration, score, lap_steps
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
        self._draw_reward_graph()  # every iteration, so the graph can be watched as the run goes
        if batch.simtrace:
            with SimTraceCsvWriter(self.folder.training_simtrace(iteration)) as writer:
                writer.write_many(batch.simtrace)
            if log_stream is not None:
                write_sim_trace_log(log_stream, batch.simtrace)
                log_stream.flush()
        return row

    def _beats_best(self, score: float, lap_steps: float | None) -> bool:
        """The higher score wins. At an equal score (most often: every evaluation lap complete, 100 %), the faster
        evaluation laps win, so a run that keeps lapping exports its fastest checkpoint, not merely its last; a
        full tie goes to the later checkpoint."""
        if self.best_iteration is None or score > self.best_progress:
            return True
        if score < self.best_progress:
            return False
        return lap_steps is None or self.best_lap_steps is None or lap_steps <= self.best_lap_steps

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
                "best_iteration": self.best_iteration, "best_progress": self.best_progress,
                "best_lap_steps": self.best_lap_steps}

    # --- the run ---

    def run(self, stop: StopConditions, progress: bool = True,
            on_iteration: Callable[[dict[str, Any]], None] | None = None, warm_start: bool = False,
            started: float | None = None, on_start_evaluated: Callable[[], None] | None = None) -> TrainingResult:
        """Train until a stop condition or Ctrl-C, then export: a usable ``model.tar.gz`` always comes out.

        ``warm_start``: first imitate the scripted driver (a new model only). ``started``: the command's start
        (``time.monotonic()``), so the wall-clock budget counts everything the command did before. A stop inside
        an iteration drops that iteration: PPO needs whole episodes, and the update (most of an iteration's time)
        would overrun the budget; the last committed checkpoint (iteration 0 = the starting weights) stands.
        ``on_iteration`` gets each saved iteration's metrics row; ``on_start_evaluated`` is called once the starting
        weights (warm start or clone) have driven their evaluation episodes, which ``evaluation_envs`` then hold.
        """
        budget = RunBudget(stop, started if started is not None else time.monotonic())
        if warm_start and self.iteration > 0:
            raise TrainingError("a warm start is for a new model; this one has trained iterations already")
        if warm_start:
            check_warm_start(self.config.vehicle)
        monitor = RunMonitor(budget, self.folder, self.iteration, self.episodes, console=progress)
        first_iteration = self.iteration
        stopped_by = ""
        with budget.interrupts_requested_stop(), monitor, self._open_log() as log_stream:
            try:
                if warm_start:
                    self.warm_start(budget, monitor)
                if (warm_start or self.starts_from_weights) and self.iteration == 0:
                    evaluated = self._rank_starting_weights(budget, monitor,
                                                            "Warm start" if warm_start else "Cloned model")
                    if evaluated and on_start_evaluated is not None:
                        on_start_evaluated()
                if latest_checkpoint(self.folder.root) is None:  # the starting weights are a usable model too
                    save_checkpoint(self.folder.root, 0, self.agent.network, None, self._state())
                while not (stopped_by := budget.stop_reason(self.episodes)):
                    remaining = (stop.max_episodes - self.episodes) if stop.max_episodes else None
                    count = self.config.hyperparameters.episodes_between_training
                    result = self.train_iteration(min(count, remaining) if remaining else count, budget, monitor)
                    monitor.phase("saving")
                    row = self.commit_iteration(result, log_stream)
                    monitor.iteration_done(row)
                    if on_iteration is not None:
                        on_iteration(row)
            except RunStopped as stopped:
                stopped_by = stopped.reason
            monitor.stopping(stopped_by)
            archive = self.finish()
        monitor.finished_run(stopped_by, archive)
        best = None if self.best_iteration is None else self.best_progress
        return TrainingResult(self.iteration - first_iteration, self.iteration, self.episodes, self.env_steps,
                              self.best_iteration, best, stopped_by, archive, self.config.best_by)

    def warm_start(self, budget: RunBudget | None = None, monitor: RunMonitor | None = None) -> None:
        """Imitate the racing-line driver into the network, in place, until done or (with a ``budget``) the run
        must stop: then ``RunStopped`` is raised and the network keeps what it learned. ``run`` calls this with
        ``warm_start=True``; a benchmark may call it directly."""
        if monitor is not None:
            monitor.phase("warm start")
        try:
            result = train_imitation_model(self.track, self.config.vehicle, seed=self.config.seed,
                                           frames=WARM_START_FRAMES, epochs=WARM_START_EPOCHS,
                                           network=self.agent.network,
                                           check=budget.check if budget is not None else _go_on,
                                           on_progress=monitor.warm_start_progress if monitor else lambda _: None,
                                           driver=racing_line_driver(self.track, self.config.vehicle))
            if monitor is not None:
                monitor.note(f"Warm start: the network imitates the driver on {result.accuracy:.0%} of "
                             f"{result.frames} frames")
        except RunStopped:
            if monitor is not None:
                monitor.note("Warm start cut short: the model keeps the weights learned so far")
            raise

    def _rank_starting_weights(self, budget: RunBudget, monitor: RunMonitor, what: str) -> bool:
        """Evaluate the warm start (or the cloned model) like an iteration, so it stays the exported model
        ("iteration 0") until PPO does at least as well: the first updates, with an untrained critic, can make a
        good imitation or a good parent worse."""
        if not self.evaluation_envs or self.config.best_by != "progress":  # no training reward to rank it by
            return False
        monitor.phase("evaluating")
        evaluation = self.evaluate(budget.check)
        self.best_iteration = 0
        self.best_progress = float(np.mean([episode["progress"] for episode in evaluation]))
        self.best_lap_steps = _lap_steps(evaluation)
        monitor.note(f"{what} evaluation: progress {self.best_progress:.1f}%")
        return True

    def _open_log(self) -> Any:
        if not self.config.record_simtrace:
            return contextlib.nullcontext()
        path = self.folder.new_training_log()
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("a", encoding="utf-8")

    def finish(self) -> Path:
        """``model.tar.gz`` of the best (or last) checkpoint: iteration 0, the starting weights, if none other."""
        if latest_checkpoint(self.folder.root) is None:
            save_checkpoint(self.folder.root, 0, self.agent.network, None, self._state())
        return export_model(self.folder, self.config.export)

    def _draw_reward_graph(self) -> None:
        draw_reward_graph(self.folder.reward_graph, self.metrics.iterations,
                          [e for e in self.metrics.episodes if e["phase"] == "training"], self.best_iteration,
                          title=f"Reward graph — {self.folder.root.name} on "
                                + " + ".join(track.title or track.name for track in self.tracks))
