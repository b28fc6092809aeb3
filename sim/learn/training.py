"""Starting a training: a new model folder (optionally cloned from a model or warm-started), or resuming one.

Both return a ``sim.learn.trainer.Trainer``; the folder's layout is ``sim.io.model_folder``'s, its checkpoints
``sim.learn.checkpoints``', the configuration ``sim.learn.config``'s and the export ``sim.learn.export``'s.
"""

from __future__ import annotations

from pathlib import Path

import torch

from sim.io.archive import load_model
from sim.io.model_folder import ModelFolder, write_json
from sim.learn.checkpoints import latest_checkpoint
from sim.learn.config import TrainingConfig, TrainingError, load_config
from sim.learn.trainer import Trainer
from sim.world.params import synthetic_params
from sim.world.reward_function import validate_reward_function
from sim.world.vehicle import Vehicle


def start_training(model_dir: str | Path, config: TrainingConfig, clone_from: str | Path | None = None,
                   initial_weights: dict[str, torch.Tensor] | None = None, threads: int = 2) -> Trainer:
    """A new model folder (must not hold a model yet); ``clone_from`` a ``model.tar.gz`` to start from its
    weights (same sensors, network and action-space shape), or ``initial_weights`` (e.g. a warm start)."""
    folder = ModelFolder(Path(model_dir))
    if folder.exists():
        raise TrainingError(f"{folder.root} already holds a model: resume it, or choose a new folder")
    # As the console's "Validate": run it on synthetic cars of every training track before any file is written.
    for track in config.load_tracks():
        names, cars = synthetic_params(track)
        validate_reward_function(config.reward_function_source, cars, names=names)
    if clone_from is not None:
        initial_weights = clone_weights(clone_from, config.vehicle)
    folder.root.mkdir(parents=True, exist_ok=True)
    folder.reward_function.write_text(config.reward_function_source, encoding="utf-8")
    write_json(folder.model_metadata, config.vehicle.to_model_metadata())
    write_json(folder.hyperparameters, config.hyperparameters.to_deepracer_json())
    write_json(folder.config, dict(config.to_json(), cloned_from=str(clone_from) if clone_from else None))
    return Trainer(folder, config, initial_weights=initial_weights, threads=threads)


def resume_training(model_dir: str | Path, threads: int = 2) -> Trainer:
    """Continue a model folder from its latest checkpoint (iteration and episode counts carry on)."""
    folder = ModelFolder(Path(model_dir))
    config = load_config(folder)
    return Trainer(folder, config, checkpoint=latest_checkpoint(folder.root), threads=threads)


def clone_weights(archive: str | Path, vehicle: Vehicle) -> dict[str, torch.Tensor]:
    """The weights of a ``model.tar.gz`` for a new training of ``vehicle``; a clear error if they cannot fit."""
    source, weights = load_model(archive)
    differences = []
    if source.sensors != vehicle.sensors:
        differences.append(f"sensors {list(source.sensors)} vs {list(vehicle.sensors)}")
    if source.neural_network != vehicle.neural_network:
        differences.append(f"network {source.neural_network} vs {vehicle.neural_network}")
    if source.action_space_type != vehicle.action_space_type:
        differences.append(f"{source.action_space_type} vs {vehicle.action_space_type} action space")
    elif source.action_space.policy_output_size != vehicle.action_space.policy_output_size:
        differences.append(f"{source.action_space.policy_output_size} vs "
                           f"{vehicle.action_space.policy_output_size} actions")
    if differences:
        raise TrainingError(f"cannot clone {archive}: the model and the vehicle differ in " + "; ".join(differences)
                            + " (a clone keeps the sensors, network and action-space shape)")
    return weights
