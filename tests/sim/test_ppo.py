"""Clipped PPO: advantage estimation and the update rule, on problems with known answers."""

import numpy as np
import pytest
import torch
from torch import nn

from sim.learn.hyperparameters import HyperparameterError, Hyperparameters
from sim.learn.ppo import Rollout, compute_gae, ppo_update


def test_gae_with_lambda_one_is_the_discounted_return_minus_value():
    rewards = np.array([[1.0], [1.0], [1.0]])
    values = np.array([[0.5], [0.25], [0.0]])
    dones = np.array([[False], [False], [True]])
    advantages, returns = compute_gae(rewards, values, dones, np.array([99.0]), discount=0.9, gae_lambda=1.0)
    expected_returns = np.array([1 + 0.9 + 0.81, 1 + 0.9, 1.0])
    np.testing.assert_allclose(returns[:, 0], expected_returns, rtol=1e-6)
    np.testing.assert_allclose(advantages[:, 0], expected_returns - values[:, 0], rtol=1e-6)


def test_gae_bootstraps_unfinished_episodes_but_not_across_episode_ends():
    rewards = np.zeros((2, 2))
    values = np.zeros((2, 2))
    dones = np.array([[False, True], [False, False]])
    last_values = np.array([10.0, 10.0])
    _, returns = compute_gae(rewards, values, dones, last_values, discount=0.5, gae_lambda=1.0)
    # Car 0 never finished: both steps see the bootstrapped value; car 1's first step ended an episode.
    np.testing.assert_allclose(returns[:, 0], [2.5, 5.0])
    np.testing.assert_allclose(returns[:, 1], [0.0, 5.0])


class _BanditAgent(nn.Module):
    """Tiny actor-critic over a one-hot context; the right arm is the context's index."""

    def __init__(self, arms: int) -> None:
        super().__init__()
        self.policy_head = nn.Linear(arms, arms)
        self.value_head = nn.Linear(arms, 1)

    def distribution(self, observations):
        return torch.distributions.Categorical(logits=self.policy_head(torch.as_tensor(observations)))

    def value(self, observations):
        return self.value_head(torch.as_tensor(observations)).squeeze(-1)

    def evaluate(self, observations):
        return self.distribution(observations), self.value(observations)


def test_ppo_learns_a_contextual_bandit():
    arms, steps, envs = 3, 16, 16
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    agent = _BanditAgent(arms)
    optimizer = torch.optim.Adam(agent.parameters(), lr=1e-2, eps=1e-5)
    hp = Hyperparameters(batch_size=64, num_epochs=4, learning_rate=1e-3, entropy=0.0, discount_factor=0.0)

    def accuracy() -> float:
        contexts = np.eye(arms, dtype=np.float32)
        with torch.no_grad():
            return float((agent.distribution(contexts).probs.argmax(-1).numpy() == np.arange(arms)).mean())

    for _ in range(30):
        context = rng.integers(0, arms, size=(steps, envs))
        observations = np.eye(arms, dtype=np.float32)[context]
        with torch.no_grad():
            distribution = agent.distribution(observations.reshape(-1, arms))
            actions = distribution.sample()
            log_probs = distribution.log_prob(actions).reshape(steps, envs).numpy()
            values = agent.value(observations.reshape(-1, arms)).reshape(steps, envs).numpy()
        actions = actions.reshape(steps, envs).numpy()
        rollout = Rollout(
            observations=observations,
            actions=actions,
            log_probs=log_probs,
            values=values,
            rewards=(actions == context).astype(np.float32),
            dones=np.ones((steps, envs), dtype=bool),
            last_values=np.zeros(envs, dtype=np.float32),
        )
        stats = ppo_update(agent, optimizer, rollout, hp, rng)
    assert accuracy() == 1.0
    assert stats.minibatches == 4 * (steps * envs // 64)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("batch_size", 16, "batch_size must be between 32 and 512"),
        ("num_epochs", 11, "num_epochs must be between 3 and 10"),
        ("loss_type", "l1", "loss_type must be one of"),
        ("episodes_between_training", 4, "episodes_between_training must be between 5 and 100"),
        ("learning_rate", "fast", "learning_rate must be a number"),
    ],
)
def test_hyperparameters_outside_the_console_ranges_are_refused(field, value, message):
    with pytest.raises(HyperparameterError, match=message):
        Hyperparameters.from_dict({field: value})


def test_hyperparameters_round_trip_through_the_deepracer_json_keys():
    hp = Hyperparameters(batch_size=128, loss_type="mean squared error", discount_factor=0.99)
    data = hp.to_deepracer_json()
    assert data["lr"] == hp.learning_rate and data["beta_entropy"] == hp.entropy
    assert Hyperparameters.from_deepracer_json(data) == hp
