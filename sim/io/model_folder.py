"""The layout of a training model folder and its metrics writers.

One folder per model, readable by deepracer-utils (``DeepRacerLog(model_folder=...)``)::

    training.json                      the run's settings (track, vehicle, hyperparameters, seed, ...)
    reward_function.py                 the reward function trained with
    model/model_metadata.json          DeepRacer metadata (deepracer-utils reads the action space here)
    ip/hyperparameters.json            DeepRacer hyperparameter keys
    checkpoints/iteration-NNNNN/       weights + Adam state (safetensors) + state.json (sim.learn.checkpoints)
    metrics/iterations.json|csv        one row per iteration (training and evaluation figures)
    metrics/episodes.json|csv          one row per training and evaluation episode
    metrics/TrainingMetrics.json       the same episodes in the console's format (deepracer-utils' TrainingMetrics)
    metrics/live.json                  the run right now (phase, iteration, steps, episodes, time left), ~1/s
    training-simtrace/N-iteration.csv  per-step trace of iteration N + 1 (SPEC §7)
    logs/training/training-<stamp>-robomaker.log   SIM_TRACE_LOG lines
    reward_graph.png                   the console-style reward graph
    model.tar.gz                       the exported model (SPEC §6)

Every file is replaced atomically as the run goes (metrics and the reward graph after each iteration), so
another process can follow a run live. Iterations count from 1 in checkpoints, metrics rows and ``--resume``
(iteration 1 is the first trained one; checkpoint 0 holds the starting weights); training simtrace files are
numbered like DeepRacer's, from 0, because deepracer-utils derives its episode numbering from iteration 0's file:
iteration ``i`` writes ``training-simtrace/{i - 1}-iteration.csv``.
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
from sim.world.car import STEPS_PER_SECOND
from sim.world.rules import EpisodeStatus

ITERATION_FIELDS = (
    "iteration", "episodes", "elapsed_seconds", "env_steps", "mean_reward", "mean_progress", "laps_completed",
    "evaluation_mean_progress", "evaluation_laps_completed", "policy_loss", "value_loss", "entropy",
    "approx_kl", "clip_fraction", "steps_per_second", "is_best",
)
EPISODE_FIELDS = (
    "iteration", "episode", "phase", "reward", "progress", "steps", "status", "lap_complete", "start_ndist",
    "start_time", "metric_time",
)
CONSOLE_METRICS_FILE = "TrainingMetrics.json"
# The simapp writes these two keys beside "metrics" (metrics/s3_metrics.py, TrainingMetrics.upload_episode_metrics);
# best_model_metric is how our trainer ranks checkpoints too (evaluation progress).
CONSOLE_METRICS_VERSION = 2.0
CONSOLE_BEST_MODEL_METRIC = "progress"


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
    def live_status(self) -> Path:
        return self.metrics / "live.json"

    @property
    def reward_graph(self) -> Path:
        return self.root / "reward_graph.png"

    @property
    def archive(self) -> Path:
        return self.root / "model.tar.gz"

    def training_simtrace(self, iteration: int) -> Path:
        """The simtrace CSV of training iteration ``iteration`` (from 1): DeepRacer's file ``iteration - 1``."""
        if iteration < 1:
            raise ValueError(f"training iterations count from 1, got {iteration}")
        return training_simtrace_path(self.root, iteration - 1)

    def renumber_legacy_training_simtraces(self) -> int:
        """Rename the training simtraces of a folder written before they were numbered from 0 (its files start at
        ``1-iteration.csv``): each ``N`` becomes ``N - 1``, so a resumed run neither overwrites nor skips one.
        Returns how many files were renamed (0 for a folder already numbered from 0, or without simtraces)."""
        numbered = {}
        for path in (self.root / "training-simtrace").glob("*-iteration.csv"):
            number = path.name.removesuffix("-iteration.csv")
            if number.isdigit():
                numbered[int(number)] = path
        if not numbered or min(numbered) == 0:
            return 0
        for number in sorted(numbered):  # ascending: N - 1 is always free by then
            os.replace(numbered[number], training_simtrace_path(self.root, number - 1))
        return len(numbered)

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
        """File name -> content of the five metrics files (also what goes into the archive's metrics/)."""
        return {
            "iterations.json": json.dumps({"iterations": self.iterations}, indent=1) + "\n",
            "iterations.csv": csv_text(self.iterations, ITERATION_FIELDS),
            "episodes.json": json.dumps({"episodes": self.episodes}, indent=1) + "\n",
            "episodes.csv": csv_text(self.episodes, EPISODE_FIELDS),
            CONSOLE_METRICS_FILE: json.dumps(console_training_metrics(self.episodes), indent=1) + "\n",
        }

    def write(self) -> None:
        self.folder.metrics.mkdir(parents=True, exist_ok=True)
        for name, content in self.files().items():
            path = self.folder.metrics / name
            temporary = path.with_name(f".{name}.partial")
            temporary.write_text(content, encoding="utf-8")
            os.replace(temporary, path)



def console_training_metrics(episodes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``metrics/TrainingMetrics.json`` as the console's simapp writes it, from our episode rows (``EPISODE_FIELDS``).

    One object per training and per evaluation episode, in the simapp's order and numbering
    (``TrainingMetrics.append_episode_metrics``): a training episode counts ``episode`` from 1 across the run and
    ``trial`` from 1 within its iteration; an evaluation episode repeats the ``episode`` and ``trial`` of its
    iteration's last training episode (the simapp advances neither while evaluating). deepracer-utils'
    ``TrainingMetrics`` relies on this: its iteration is ``(episode - 1) // max(trial)``. ``reward_score`` and
    ``completion_percentage`` are integers as there; ``elapsed_time_in_milliseconds`` is the episode's simulated
    time (steps, prepare step included, at 15 per second); ``start_time``/``metric_time`` are wall-clock ms since
    the epoch (0 in rows written before they were recorded).
    """
    by_iteration: dict[int, list[Mapping[str, Any]]] = {}
    for row in episodes:
        by_iteration.setdefault(int(row["iteration"]), []).append(row)
    metrics = []
    episodes_before = 0
    for iteration in sorted(by_iteration):
        rows = by_iteration[iteration]
        training = sorted((r for r in rows if r["phase"] == "training"), key=lambda r: r["episode"])
        for trial, row in enumerate(training, start=1):
            metrics.append(_console_row(row, episodes_before + trial, trial))
        episodes_before += len(training)
        for row in (r for r in rows if r["phase"] == "evaluation"):
            metrics.append(_console_row(row, episodes_before, len(training)))
    return {"metrics": metrics, "version": CONSOLE_METRICS_VERSION, "best_model_metric": CONSOLE_BEST_MODEL_METRIC}


def _console_row(row: Mapping[str, Any], episode: int, trial: int) -> dict[str, Any]:
    return {
        "reward_score": round(float(row["reward"])),
        "metric_time": int(row.get("metric_time") or 0),
        "start_time": int(row.get("start_time") or 0),
        "elapsed_time_in_milliseconds": round(int(row["steps"]) * 1000 / STEPS_PER_SECOND),
        "episode": episode,
        "trial": trial,
        "phase": row["phase"],
        "completion_percentage": int(float(row["progress"])),
        "episode_status": EpisodeStatus[str(row["status"]).upper()].label,
    }
