"""The layout of a training model folder and its metrics writers.

One folder per model, readable by deepracer-utils (``DeepRacerLog(model_folder=...)``)::

    training.json                      the run's settings (track, vehicle, hyperparameters, seed, ...)
    reward_function.py                 the reward function trained with
    model/model_metadata.json          DeepRacer metadata (deepracer-utils reads the action space here)
    ip/hyperparameters.json            DeepRacer hyperparameter keys
    checkpoints/iteration-NNNNN/       weights + Adam state (safetensors) + state.json (sim.learn.checkpoints)
    metrics/iterations.json|csv        one row per iteration (training and evaluation figures)
    metrics/episodes.json|csv          one row per training and evaluation episode
    training-simtrace/N-iteration.csv  per-step trace of iteration N (SPEC §7)
    logs/training/training-<stamp>-robomaker.log   SIM_TRACE_LOG lines
    reward_graph.png                   the console-style reward graph
    model.tar.gz                       the exported model (SPEC §6)
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sim.io.simtrace import hyperparameters_path, model_metadata_path, training_simtrace_path

ITERATION_FIELDS = (
    "iteration", "episodes", "elapsed_seconds", "env_steps", "mean_reward", "mean_progress", "laps_completed",
    "evaluation_mean_progress", "evaluation_laps_completed", "policy_loss", "value_loss", "entropy",
    "approx_kl", "clip_fraction", "steps_per_second", "is_best",
)
EPISODE_FIELDS = (
    "iteration", "episode", "phase", "reward", "progress", "steps", "status", "lap_complete", "start_ndist",
)


@dataclass(frozen=True)
class ModelFolder:
    """Paths of a model folder; creating the object touches nothing on disk."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def config(self) -> Path:
        return self.root / "training.json"

    @property
    def reward_function(self) -> Path:
        return self.root / "reward_function.py"

    @property
    def model_metadata(self) -> Path:
        return model_metadata_path(self.root)

    @property
    def hyperparameters(self) -> Path:
        return hyperparameters_path(self.root)

    @property
    def metrics(self) -> Path:
        return self.root / "metrics"

    @property
    def reward_graph(self) -> Path:
        return self.root / "reward_graph.png"

    @property
    def archive(self) -> Path:
        return self.root / "model.tar.gz"

    def training_simtrace(self, iteration: int) -> Path:
        return training_simtrace_path(self.root, iteration)

    def new_training_log(self, started: datetime | None = None) -> Path:
        stamp = (started or datetime.now()).strftime("%Y%m%d%H%M%S")
        return self.root / "logs" / "training" / f"training-{stamp}-robomaker.log"

    def exists(self) -> bool:
        return self.config.is_file()


def write_json(path: Path, document: Any) -> None:
    """Write atomically, so an interrupted run never leaves half a JSON file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def csv_text(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row.get(key) is None else row.get(key) for key in columns})
    return buffer.getvalue()


class TrainingMetrics:
    """Per-iteration and per-episode rows, kept in memory and rewritten (JSON + CSV) after each iteration."""

    def __init__(self, folder: ModelFolder) -> None:
        self.folder = folder
        self.iterations: list[dict[str, Any]] = []
        self.episodes: list[dict[str, Any]] = []

    @classmethod
    def load(cls, folder: ModelFolder, up_to_iteration: int) -> TrainingMetrics:
        """The rows written so far, trimmed to a checkpoint's iteration (a resumed run continues from there)."""
        metrics = cls(folder)
        for name, rows in (("iterations", metrics.iterations), ("episodes", metrics.episodes)):
            path = folder.metrics / f"{name}.json"
            if path.is_file():
                rows.extend(r for r in json.loads(path.read_text())[name] if r["iteration"] <= up_to_iteration)
        return metrics

    def add(self, iteration: Mapping[str, Any], episodes: Iterable[Mapping[str, Any]]) -> None:
        self.iterations.append(dict(iteration))
        self.episodes.extend(dict(e) for e in episodes)

    def files(self) -> dict[str, str]:
        """File name -> content of the four metrics files (also what goes into the archive's metrics/)."""
        return {
            "iterations.json": json.dumps({"iterations": self.iterations}, indent=1) + "\n",
            "iterations.csv": csv_text(self.iterations, ITERATION_FIELDS),
            "episodes.json": json.dumps({"episodes": self.episodes}, indent=1) + "\n",
            "episodes.csv": csv_text(self.episodes, EPISODE_FIELDS),
        }

    def write(self) -> None:
        self.folder.metrics.mkdir(parents=True, exist_ok=True)
        for name, content in self.files().items():
            path = self.folder.metrics / name
            temporary = path.with_name(f".{name}.partial")
            temporary.write_text(content, encoding="utf-8")
            os.replace(temporary, path)

