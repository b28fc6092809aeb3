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
# The console's ranges (SPEC §5), inclusive: the one place they are written (forms and the API read them here).
RANGES: dict[str, tuple[float, float]] = {
    "batch_size": (32, 512),
    "num_epochs": (3, 10),
    "learning_rate": (1e-8, 1e-3),
    "entropy": (0.0, 1.0),
    "discount_factor": (0.0, 1.0),
    "episodes_between_training": (5, 100),
    "clip_epsilon": (0.01, 0.5),
    "gae_lambda": (0.0, 1.0),
    "max_iteration_steps": (100, 100_000),
}
INTEGER_HYPERPARAMETERS = ("batch_size", "num_epochs", "episodes_between_training", "max_iteration_steps")
# Ours, not the console's, and off unless set (None): the console's iterations are episodes only.
OPTIONAL_HYPERPARAMETERS = ("max_iteration_steps",)


class HyperparameterError(ValueError):
    """A hyperparameter is missing, of the wrong type or outside the console's range; ``field`` names it."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


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
    # Also end an iteration after this many env steps (all cars together): once a model drives whole laps, 20
    # episodes are 20 laps and an iteration takes minutes. The episodes still running are cut and bootstrapped
    # (``sim.learn.rollouts.collect_episodes``).
    max_iteration_steps: int | None = None

    def __post_init__(self) -> None:
        for name, (low, high) in RANGES.items():
            if name in OPTIONAL_HYPERPARAMETERS and getattr(self, name) is None:
                continue
            check = _check_int if name in INTEGER_HYPERPARAMETERS else _check_float
            check(name, getattr(self, name), low, high)
        if self.loss_type not in LOSS_TYPES:
            raise HyperparameterError(
                f"loss_type must be one of {', '.join(repr(t) for t in LOSS_TYPES)}, got {self.loss_type!r}",
                "loss_type",
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Hyperparameters:
        """Build from our own field names; unknown keys are an error (a typo must not pass silently)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise HyperparameterError(f"unknown hyperparameter(s): {', '.join(unknown)}", unknown[0])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_deepracer_json(self) -> dict[str, Any]:
        """The keys of DeepRacer's ``hyperparameters.json`` (plus our clip and GAE settings, and the step bound
        of an iteration when it is set)."""
        step_bound = {} if self.max_iteration_steps is None else {"max_iteration_steps": self.max_iteration_steps}
        return step_bound | {
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
            "max_iteration_steps": "max_iteration_steps",
        }
        return cls(**{ours: values[theirs] for theirs, ours in mapping.items() if theirs in values})


def _check_int(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise HyperparameterError(f"{name} must be an integer, got {brief_repr(value)}", name)
    if not low <= value <= high:
        raise HyperparameterError(f"{name} must be between {low:g} and {high:g}, got {brief_repr(value)}", name)


def _check_float(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise HyperparameterError(f"{name} must be a number, got {brief_repr(value)}", name)
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range
        raise HyperparameterError(f"{name} is out of range, got {brief_repr(value)}", name) from None
    if not math.isfinite(number):  # "between 0 and 1, got nan" would hide what is wrong
        raise HyperparameterError(f"{name} must be a finite number, got {value!r}", name)
    if not low <= number <= high:
        raise HyperparameterError(f"{name} must be between {low:g} and {high:g}, got {number:g}", name)


