"""Pitlane simulator: a plain library (no Django) of tracks, car, sensors, race rules,
environments, networks, model archives and training, faithful to AWS DeepRacer.

Sub-packages by concern: ``sim.world`` (geometry, tracks, car, objects, race rules, params, vehicles, reward
functions), ``sim.sensors``, ``sim.race`` (environments, evaluation, head-to-head, scoring, drivers, ideal lap),
``sim.learn`` (networks, PPO, training, checkpoints, imitation, reward graph) and ``sim.io`` (model archives,
simtrace logs, model folders, pictures). The names the README uses are importable from ``sim`` itself; they
load on first use, so ``import sim.io.archive`` does not pull in the environments or torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "Track": "sim.world.track",
    "get_track": "sim.world.track_catalog",
    "available_tracks": "sim.world.track_catalog",
    "Vehicle": "sim.world.vehicle",
    "get_vehicle": "sim.world.vehicle",
    "RewardFunction": "sim.world.reward_function",
    "EXAMPLES": "sim.world.reward_examples",
    "RaceRules": "sim.world.rules",
    "RaceEnv": "sim.race.env",
    "VectorRaceEnv": "sim.race.env",
    "run_race": "sim.race.evaluation",
    "score_run": "sim.race.scoring",
    "RankingMethod": "sim.race.scoring",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'sim' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
