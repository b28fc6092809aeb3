"""Exporting a trained model: ``model.tar.gz`` (SPEC §6) from the best or last checkpoint of a model folder."""

from __future__ import annotations

from pathlib import Path

from sim.io.archive import write_model_archive
from sim.io.model_folder import ModelFolder, TrainingMetrics
from sim.learn.checkpoints import checkpoint_at, latest_checkpoint, load_weights
from sim.learn.config import EXPORT_CHOICES, TrainingError, load_config


def export_model(folder: ModelFolder, which: str = "best", path: Path | None = None) -> Path:
    """Write ``model.tar.gz`` from the best or last checkpoint of a model folder (SPEC §6)."""
    if which not in EXPORT_CHOICES:
        raise TrainingError(f"export must be 'best' or 'last', got {which!r}")
    config = load_config(folder)
    last = latest_checkpoint(folder.root)
    if last is None:
        raise TrainingError(f"{folder.root} has no checkpoint yet: train at least one iteration")
    chosen = last
    best_iteration = last.state.get("best_iteration")
    best = checkpoint_at(folder.root, best_iteration) if which == "best" and best_iteration is not None else None
    if best is not None:
        chosen = best
    metrics = TrainingMetrics.load(folder, last.iteration).files()
    if folder.reward_graph.is_file():
        metrics["reward_graph.png"] = folder.reward_graph.read_bytes()
    hyperparameters = dict(config.hyperparameters.to_deepracer_json(), exported_iteration=chosen.iteration)
    return write_model_archive(path or folder.archive, config.vehicle, load_weights(chosen.path),
                               reward_function_source=config.reward_function_source,
                               hyperparameters=hyperparameters, training_metrics=metrics)
