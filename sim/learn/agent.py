"""The trainer's view of a network: fast mixed-precision CPU compute over ``sim.learn.networks.ActorCritic``.

Convolutions run in channels-last layout, under bfloat16 autocast where the CPU computes bfloat16 natively
(AVX512-BF16 or AMX: about 3x faster than fp32); elsewhere (e.g. AVX2-only CPUs) bfloat16 is emulated and about
15x SLOWER than fp32, so the default follows the CPU. Master weights, optimizer state and every loss stay fp32;
policy outputs are cast to fp32 before a distribution is built, so log-probabilities and PPO ratios are
computed in full precision.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch.distributions import Categorical, Distribution, Normal

from sim.learn.networks import ActorCritic


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True where the CPU has bfloat16 instructions (Linux ``/proc/cpuinfo`` flags avx512_bf16 / amx_bf16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return re.search(r"\b(avx512_bf16|amx_bf16)\b", flags) is not None


def use_cores_for_torch(threads: int) -> int:
    """Give torch ``threads`` cores (at most ``OMP_NUM_THREADS`` where that is set) and keep numpy's OpenBLAS on
    one thread, for the rest of the process; returns the threads torch got.

    The simulator's camera is one large matmul per step: with its own thread pool OpenBLAS then spins on the
    cores torch's OpenMP threads need next, and every policy forward between two env steps ran about 2x
    slower (collection of a training iteration: 7.3 s -> 1.6 s on 2 cores with this).
    ``OMP_NUM_THREADS`` is how a machine's owner says how many cores OpenMP programs may take: a parallel region
    waits for its slowest thread, so with another program busy on one of 2 cores, 2 threads trained ~5x slower
    than 1 (an iteration on the oval: over 100 s against 22 s; 12 s with 2 threads on a quiet machine).
    """
    threadpool_limits(limits=1, user_api="blas")  # torch's own MKL is linked in and not affected
    threads = min(threads, _omp_thread_limit() or threads)
    torch.set_num_threads(threads)
    return threads


def _omp_thread_limit() -> int | None:
    """``OMP_NUM_THREADS`` as a positive number of threads, or None where it is unset or not a number."""
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()  # OpenMP allows a list per nesting level
    return int(value) if value.isdigit() and int(value) > 0 else None


def mixed_precision_autocast(enabled: bool | None = None) -> torch.autocast:
    """bfloat16 autocast for training compute; ``None`` = on exactly where the CPU makes it faster."""
    if enabled is None:
        enabled = cpu_has_native_bf16()
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled)


class Sample(NamedTuple):
    actions: np.ndarray  # (N,) int64 indices or (N, 2) float32 raw Gaussian outputs
    log_probs: np.ndarray  # (N,) float32
    values: np.ndarray  # (N,) float32


class Agent:
    """Wraps an ``ActorCritic`` for training: ``evaluate`` for PPO, ``sample`` for rollouts, ``predict`` to race."""

    def __init__(self, network: ActorCritic, mixed_precision: bool | None = None) -> None:
        self.network = network.to(memory_format=torch.channels_last)
        self.mixed_precision = mixed_precision

    @property
    def is_discrete(self) -> bool:
        return self.network.vehicle.is_discrete

    def parameters(self) -> Any:
        return self.network.parameters()

    def _autocast(self) -> torch.autocast:
        return mixed_precision_autocast(self.mixed_precision)

    def distribution(self, outputs: torch.Tensor) -> Distribution:
        outputs = outputs.float()
        if self.is_discrete:
            return Categorical(logits=outputs)
        return Normal(outputs, self.network.policy_net.head.std().expand_as(outputs))

    def evaluate(self, observations: Any) -> tuple[Distribution, torch.Tensor]:
        """(action distribution, values) with gradients: the ``sim.learn.ppo.ActorCriticModule`` protocol."""
        with self._autocast():
            outputs, values = self.network(observations)
        return self.distribution(outputs), values.float()

    @torch.inference_mode()
    def sample(self, observations: Any) -> Sample:
        """Stochastic actions for training rollouts, with their log-probabilities and the critic's values."""
        distribution, values = self.evaluate(observations)
        actions = distribution.sample()
        log_probs = distribution.log_prob(actions)
        if log_probs.dim() > 1:
            log_probs = log_probs.sum(-1)
        return Sample(actions.numpy(), log_probs.numpy().astype(np.float32), values.numpy().astype(np.float32))

    @torch.inference_mode()
    def predict(self, observations: Any) -> np.ndarray:
        """Race-mode actions (argmax / mean), policy tower only."""
        with self._autocast():
            actions = self.network.predict(observations)
        return actions.numpy() if self.is_discrete else actions.float().numpy()


def race_policy(network: ActorCritic, precision: str = "auto") -> Callable[[Any], np.ndarray]:
    """The greedy policy races are run with (as the league's evaluator runs it): ``precision="fp32"`` is the trained
    network exactly; the default plan is faster and drives the same laps within the tolerance of
    ``sim.learn.inference`` (int8 weights for the large dense layer, bfloat16 convolutions where native)."""
    from sim.learn.inference import race_predictor  # it imports this module (cpu_has_native_bf16)

    return race_predictor(network, precision)
