"""Training hyperparameters: defaults, console ranges and the DeepRacer ``hyperparameters.json`` mapping.

The names of the dataclass fields are ours; ``to_deepracer_json`` / ``from_deepracer_json`` translate to the
keys the DeepRacer console and DRfC write (``batch_size``, ``beta_entropy``, ``lr``, ...), so an exported
model's provenance file reads like one from AWS.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from sim.world.quoting import brief_repr

LOSS_TYPES = ("huber", "mean squared error")


class HyperparameterError(ValueError):
    """A hyperparameter is missing, of the wrong type or outside the console's range."""


@dataclass(frozen=True)
class Hyperparameters:
    """Clipped-PPO settings with the DeepRacer console defaults (SPEC §5)."""

    batch_size: int = 64
    num_epochs: int = 10
    learning_rate: float = 3e-4
    entropy: float = 0.01
    discount_factor: float = 0.999
    loss_type: str = "huber"
    episodes_between_training: int = 20
    clip_epsilon: float = 0.2
    gae_lambda: float = 0.95

    def __post_init__(self) -> None:
        _check_int("batch_size", self.batch_size, 32, 512)
        _check_int("num_epochs", self.num_epochs, 3, 10)
        _check_float("learning_rate", self.learning_rate, 1e-8, 1e-3)
        _check_float("entropy", self.entropy, 0.0, 1.0)
        _check_float("discount_factor", self.discount_factor, 0.0, 1.0)
        _check_int("episodes_between_training", self.episodes_between_training, 5, 100)
        _check_float("clip_epsilon", self.clip_epsilon, 0.01, 0.5)
        _check_float("gae_lambda", self.gae_lambda, 0.0, 1.0)
        if self.loss_type not in LOSS_TYPES:
            raise HyperparameterError(
                f"loss_type must be one of {', '.join(repr(t) for t in LOSS_TYPES)}, got {self.loss_type!r}"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Hyperparameters:
        """Build from our own field names; unknown keys are an error (a typo must not pass silently)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise HyperparameterError(f"unknown hyperparameter(s): {', '.join(unknown)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_deepracer_json(self) -> dict[str, Any]:
        """The keys of DeepRacer's ``hyperparameters.json`` (plus our clip and GAE settings)."""
        return {
            "batch_size": self.batch_size,
            "beta_entropy": self.entropy,
            "discount_factor": self.discount_factor,
            "e_greedy_value": 0.05,
            "epsilon_steps": 10000,
            "exploration_type": "categorical",
            "loss_type": self.loss_type,
            "lr": self.learning_rate,
            "num_episodes_between_training": self.episodes_between_training,
            "num_epochs": self.num_epochs,
            "stack_size": 1,
            "clip_epsilon": self.clip_epsilon,
            "gae_lambda": self.gae_lambda,
        }

    @classmethod
    def from_deepracer_json(cls, values: dict[str, Any]) -> Hyperparameters:
        """Read a DeepRacer ``hyperparameters.json``; keys we do not use (exploration, stack) are ignored."""
        mapping = {
            "batch_size": "batch_size",
            "beta_entropy": "entropy",
            "discount_factor": "discount_factor",
            "loss_type": "loss_type",
            "lr": "learning_rate",
            "num_episodes_between_training": "episodes_between_training",
            "num_epochs": "num_epochs",
            "clip_epsilon": "clip_epsilon",
            "gae_lambda": "gae_lambda",
        }
        return cls(**{ours: values[theirs] for theirs, ours in mapping.items() if theirs in values})


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise HyperparameterError(f"{name} must be an integer, got {brief_repr(value)}")
    if not low <= value <= high:
        raise HyperparameterError(f"{name} must be between {low} and {high}, got {brief_repr(value)}")


def _check_float(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise HyperparameterError(f"{name} must be a number, got {brief_repr(value)}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range
        raise HyperparameterError(f"{name} is out of range, got {brief_repr(value)}") from None
    if not math.isfinite(number):  # "between 0 and 1, got nan" would hide what is wrong
        raise HyperparameterError(f"{name} must be a finite number, got {value!r}")
    if not low <= number <= high:
        raise HyperparameterError(f"{name} must be between {low:g} and {high:g}, got {number:g}")


