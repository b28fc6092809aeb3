"""Collecting experience for PPO: one iteration's training episodes, and the deterministic evaluation episodes.

Episodes run in parallel as the cars of one ``VectorRaceEnv`` (training mode): each car drives one episode
from its round-robin start, then is parked (the env restarted it at once; it waits for the next iteration)
and is skipped for inference. Only the env's public operations are used: ``reset`` with the cars and their
starts, ``step``, ``park``, ``running`` and ``take_record``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.io.camera_film import FilmRecorder
from sim.io.simtrace import SimTraceRow
from sim.learn.agent import Agent
from sim.learn.ppo import Rollout
from sim.race.env import VectorRaceEnv
from sim.world.rules import ROUND_ROBIN_ADVANCE, EpisodeStatus


@dataclass
class EpisodeBatch:
    """The experience of one iteration: a padded rollout plus one summary per finished episode."""

    rollout: Rollout
    episodes: list[dict[str, Any]]
    simtrace: list[SimTraceRow]
    env_steps: int


def round_robin_starts(first_episode: int, count: int) -> np.ndarray:
    """Start positions (fraction of the lap) of episodes ``first_episode .. first_episode + count - 1``."""
    return ((first_episode + np.arange(count)) * ROUND_ROBIN_ADVANCE) % 1.0


StepCallback = Callable[[int, list[dict[str, Any]]], None]
"""Called after every env step with the number of cars that stepped and the episodes that just finished; it may
raise (``sim.learn.budget.RunStopped``) to abandon the collection."""


def collect_episodes(env: VectorRaceEnv, agent: Agent, count: int, first_episode: int,
                     on_step: StepCallback | None = None, max_steps: int | None = None) -> EpisodeBatch:
    """Run ``count`` training episodes in parallel (one per car) from their round-robin starts.

    The first (prepare) step of each episode is kept out of the rollout: the car is held, so its action
    changes nothing and would only add noise to the policy gradient. Each summary gets the wall-clock
    ``start_time`` (the episodes start together) and ``metric_time`` (when it ended), in ms since the epoch, for
    the console's metrics file.

    ``max_steps`` bounds the iteration's env steps (all cars together), for cars that drive long laps: once it is
    spent, the episodes still running end as ``time_up`` (``VectorRaceEnv.truncate``), are reported like the
    others, and their returns are bootstrapped from the critic's value of where they stopped, because the lap
    went on; an episode that ends by itself, ``max_episode_steps`` included, is final as before.
    """
    if not 1 <= count <= env.num_envs:
        raise ValueError(f"count must be between 1 and {env.num_envs}, got {count}")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}")
    n = env.num_envs
    starting = np.arange(n) < count
    observation, _ = env.reset(options={"start_ndist": round_robin_starts(first_episode, count),
                                        "reset_mask": starting})
    env.park(~starting)  # the cars this iteration does not need
    waiting = ~env.running
    steps: dict[str, list] = {k: [] for k in ("observations", "actions", "log_probs", "values", "rewards", "dones",
                                              "mask")}
    episodes: list[dict[str, Any]] = []
    simtrace: list[SimTraceRow] = []
    env_steps = 0
    last_values = np.zeros(n, np.float32)  # 0: an episode that ended by itself is worth nothing more
    placeholder = _placeholder_actions(env)
    started_ms = _now_ms()
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
        steps["mask"].append(~waiting & (info["status"] != EpisodeStatus.PREPARE))
        ended = [summary for summary in info["episodes"] if not waiting[summary["car"]]]
        if max_steps is not None and env_steps >= max_steps:
            cut = np.flatnonzero(~waiting & ~done)  # still driving: their lap goes on past the bound
            if len(cut):
                last_values[cut] = agent.sample(_take(observation, cut)).values
                ended += env.truncate(cut)
        finished = []
        for summary in ended:
            car = summary["car"]
            summary = dict(summary, episode=first_episode + car, start_time=started_ms, metric_time=_now_ms())
            finished.append(summary)
            record = env.take_record(car)
            if env.record_simtrace:
                simtrace.extend(row._replace(episode=first_episode + car) for row in record.simtrace)
            waiting[car] = True
            env.park([car])  # the env restarted it: park it until the next iteration
        episodes.extend(finished)
        if on_step is not None:
            on_step(len(live), finished)
    episodes.sort(key=lambda e: e["episode"])
    rollout = Rollout(
        observations=_stack(steps["observations"]),
        actions=np.stack(steps["actions"]),
        log_probs=np.stack(steps["log_probs"]),
        values=np.stack(steps["values"]),
        rewards=np.stack(steps["rewards"]),
        dones=np.stack(steps["dones"]),
        last_values=last_values,
        mask=np.stack(steps["mask"]),
    )
    simtrace.sort(key=lambda row: (row.episode, row.steps))
    return EpisodeBatch(rollout, episodes, simtrace, env_steps)


def evaluate_progress(env: VectorRaceEnv, agent: Agent, on_step: StepCallback | None = None,
                      film: FilmRecorder | None = None) -> list[dict[str, Any]]:
    """Deterministic training-rule episodes from evenly spaced starts (one per car): their summaries (with the
    wall-clock ``start_time`` and ``metric_time`` as ``collect_episodes``'). ``film`` records what its car's camera
    sees until that car's episode ends."""
    n = env.num_envs
    observation, _ = env.reset(options={"start_ndist": np.arange(n) / n})
    waiting = np.zeros(n, dtype=bool)
    summaries: list[dict[str, Any]] = []
    placeholder = _placeholder_actions(env)
    started_ms = _now_ms()
    while not waiting.all():
        live = np.flatnonzero(~waiting)
        if film is not None and not waiting[film.car]:
            film.observe(observation)
        actions = placeholder.copy()
        actions[live] = agent.predict(_take(observation, live))
        observation, _, _, _, info = env.step(actions)
        finished = [dict(s, start_time=started_ms, metric_time=_now_ms()) for s in info["episodes"]
                    if not waiting[s["car"]]]
        for summary in finished:
            waiting[summary["car"]] = True
            env.park([summary["car"]])
        summaries.extend(finished)
        if on_step is not None:
            on_step(len(live), finished)
    return sorted(summaries, key=lambda s: s["car"])


def _now_ms() -> int:
    return round(time.time() * 1000)


def _placeholder_actions(env: VectorRaceEnv) -> np.ndarray:
    """Actions of a whole batch, for the cars that wait (a parked car's action is ignored)."""
    n = env.num_envs
    return np.zeros(n, dtype=np.int64) if env.vehicle.is_discrete else np.zeros((n, 2), dtype=np.float32)


def _take(observation: Any, index: np.ndarray) -> Any:
    if isinstance(observation, dict):
        return {key: value[index] for key, value in observation.items()}
    return observation[index]


def _stack(observations: list[Any]) -> Any:
    if isinstance(observations[0], dict):
        return {key: np.stack([o[key] for o in observations]) for key in observations[0]}
    return np.stack(observations)
