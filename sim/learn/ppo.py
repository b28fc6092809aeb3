"""Clipped PPO (Schulman et al. 2017) as DeepRacer trains it: separate policy and value towers, GAE,
several epochs of minibatch updates over the experience of a fixed number of episodes.

The algorithm is independent of the simulator: it sees observations (an array or a dict of arrays with the
batch first), actions, rewards and done flags. ``sim.learn.rollouts`` collects rollouts and calls
``ppo_update``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from sim.learn.hyperparameters import Hyperparameters

Observation = np.ndarray | dict[str, np.ndarray]

# Gradient-norm clipping keeps a single bad minibatch (e.g. a crash with a large negative reward) from
# wrecking a policy that already drives; 0.5 is the CleanRL / SB3 default.
MAX_GRAD_NORM = 0.5


class ActorCriticModule(Protocol):
    """What PPO needs from a network: the action distribution and the values of a batch, in one call
    (``sim.learn.agent.Agent`` wraps ``sim.learn.networks.ActorCritic`` this way)."""

    def evaluate(self, observations: Any) -> tuple[torch.distributions.Distribution, torch.Tensor]: ...

    def parameters(self) -> Any: ...


@dataclass
class Rollout:
    """Transitions of ``num_steps`` steps of ``num_envs`` cars, time first: arrays are ``(T, N, ...)``.

    ``dones[t, i]`` says car ``i``'s episode ended with step ``t`` (the next observation belongs to a new
    episode), so no value is bootstrapped across it. ``last_values`` are the critic's values of the
    observations after the final step, used to bootstrap episodes still running when collection stopped.
    ``mask[t, i]`` (optional, all True by default) says the entry is a real transition to learn from: cars
    that finished their episode early wait with padding entries, which must follow a done.
    """

    observations: Observation
    actions: np.ndarray
    log_probs: np.ndarray
    values: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    last_values: np.ndarray
    mask: np.ndarray | None = None

    @property
    def num_steps(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def num_envs(self) -> int:
        return int(self.rewards.shape[1])


def compute_gae(
    rewards: np.ndarray,
    values: np.ndarray,
    dones: np.ndarray,
    last_values: np.ndarray,
    discount: float,
    gae_lambda: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimation over ``(T, N)`` arrays; returns (advantages, returns)."""
    num_steps = rewards.shape[0]
    advantages = np.zeros_like(rewards, dtype=np.float64)
    running = np.zeros(rewards.shape[1], dtype=np.float64)
    for t in reversed(range(num_steps)):
        next_values = last_values if t == num_steps - 1 else values[t + 1]
        not_done = 1.0 - dones[t].astype(np.float64)
        delta = rewards[t] + discount * next_values * not_done - values[t]
        running = delta + discount * gae_lambda * not_done * running
        advantages[t] = running
    returns = advantages + values
    return advantages.astype(np.float32), returns.astype(np.float32)


@dataclass(frozen=True)
class UpdateStats:
    policy_loss: float
    value_loss: float
    entropy: float
    approx_kl: float
    clip_fraction: float
    minibatches: int


def ppo_update(
    agent: ActorCriticModule,
    optimizer: torch.optim.Optimizer,
    rollout: Rollout,
    hyperparameters: Hyperparameters,
    generator: np.random.Generator,
    on_minibatch: Callable[[int, int], None] | None = None,
) -> UpdateStats:
    """Run ``num_epochs`` passes of clipped-PPO minibatch updates over one rollout.

    ``on_minibatch(done, total)`` is called after each minibatch step; it may raise to abandon the update (the
    network then holds a partial update: the caller discards it, see ``sim.learn.trainer``)."""
    hp = hyperparameters
    advantages, returns = compute_gae(
        rollout.rewards, rollout.values, rollout.dones, rollout.last_values, hp.discount_factor, hp.gae_lambda
    )
    size = rollout.num_steps * rollout.num_envs
    keep = np.arange(size) if rollout.mask is None else np.flatnonzero(rollout.mask.reshape(size))
    total = len(keep)
    observations = _select(_flatten(rollout.observations), keep)
    actions = torch.as_tensor(rollout.actions.reshape(size, *rollout.actions.shape[2:])[keep])
    old_log_probs = torch.as_tensor(rollout.log_probs.reshape(size)[keep], dtype=torch.float32)
    flat_advantages = torch.as_tensor(advantages.reshape(size)[keep])
    flat_returns = torch.as_tensor(returns.reshape(size)[keep])

    sums = np.zeros(5)
    minibatches = 0
    planned = hp.num_epochs * sum(1 for start in range(0, total, hp.batch_size) if total - start >= 2)
    for _ in range(hp.num_epochs):
        order = generator.permutation(total)
        for start in range(0, total, hp.batch_size):
            index = order[start : start + hp.batch_size]
            if len(index) < 2:  # advantage normalisation needs two samples
                continue
            stats = _minibatch_step(
                agent,
                optimizer,
                _select(observations, index),
                actions[index],
                old_log_probs[index],
                flat_advantages[index],
                flat_returns[index],
                hp,
            )
            sums += stats
            minibatches += 1
            if on_minibatch is not None:
                on_minibatch(minibatches, planned)
    means = sums / max(minibatches, 1)
    return UpdateStats(*map(float, means), minibatches=minibatches)


def _minibatch_step(
    agent: ActorCriticModule,
    optimizer: torch.optim.Optimizer,
    observations: Observation,
    actions: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    hp: Hyperparameters,
) -> np.ndarray:
    distribution, values = agent.evaluate(observations)
    log_probs = _log_prob(distribution, actions)
    entropy = _entropy(distribution).mean()
    log_ratio = log_probs - old_log_probs
    ratio = log_ratio.exp()
    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

    surrogate = torch.max(
        -advantages * ratio,
        -advantages * torch.clamp(ratio, 1.0 - hp.clip_epsilon, 1.0 + hp.clip_epsilon),
    )
    policy_loss = surrogate.mean()
    if hp.loss_type == "huber":
        value_loss = functional.smooth_l1_loss(values, returns)
    else:
        value_loss = functional.mse_loss(values, returns)
    # Policy and value towers share no weights, so summing the losses trains each with its own signal.
    loss = policy_loss - hp.entropy * entropy + value_loss

    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(list(agent.parameters()), MAX_GRAD_NORM)
    optimizer.step()

    with torch.no_grad():
        approx_kl = ((ratio - 1.0) - log_ratio).mean()
        clip_fraction = ((ratio - 1.0).abs() > hp.clip_epsilon).float().mean()
    return np.array(
        [policy_loss.item(), value_loss.item(), entropy.item(), approx_kl.item(), clip_fraction.item()]
    )


def _log_prob(distribution: torch.distributions.Distribution, actions: torch.Tensor) -> torch.Tensor:
    log_prob = distribution.log_prob(actions)
    return log_prob.sum(-1) if log_prob.dim() > 1 else log_prob


def _entropy(distribution: torch.distributions.Distribution) -> torch.Tensor:
    entropy = distribution.entropy()
    return entropy.sum(-1) if entropy.dim() > 1 else entropy


def _flatten(observations: Observation) -> Observation:
    """(T, N, ...) -> (T*N, ...) without copying where the memory layout allows."""
    if isinstance(observations, dict):
        return {key: _flatten(value) for key, value in observations.items()}
    return observations.reshape(-1, *observations.shape[2:])


def _select(observations: Observation, index: np.ndarray) -> Observation:
    if isinstance(observations, dict):
        return {key: value[index] for key, value in observations.items()}
    return observations[index]
