"""Training checkpoints in data-only formats: weights and optimizer state as safetensors, the rest as JSON.

A checkpoint is what resume needs: the network, the Adam moments and step counts, and the training state
(iteration, episodes, round-robin start, RNG seed). Nothing here unpickles, so a checkpoint folder from
someone else is as safe to load as a model archive.

This module owns the ``checkpoints/`` layout of a model folder (``iteration-NNNNN``, ``.partial`` while being
written): other modules find, read and prune checkpoints through it and never parse the folder names.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

WEIGHTS_FILE = "weights.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "state.json"
CHECKPOINTS_DIR = "checkpoints"
ITERATION_PREFIX = "iteration-"
PARTIAL_SUFFIX = ".partial"


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    iteration: int
    state: dict[str, Any]


def checkpoint_dir(model_dir: Path, iteration: int) -> Path:
    return Path(model_dir) / CHECKPOINTS_DIR / f"{ITERATION_PREFIX}{iteration:05d}"


def save_checkpoint(
    model_dir: Path,
    iteration: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    state: dict[str, Any],
) -> Path:
    """Write checkpoint ``iteration`` atomically (a half-written folder is never seen as complete)."""
    final = checkpoint_dir(model_dir, iteration)
    staging = final.with_name(final.name + PARTIAL_SUFFIX)
    staging.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, staging / WEIGHTS_FILE)
    optimizer_meta: dict[str, Any] | None = None
    if optimizer is not None:
        tensors, optimizer_meta = _flatten_optimizer_state(optimizer)
        save_file(tensors, staging / OPTIMIZER_FILE)
    payload = {"iteration": iteration, "state": state, "optimizer": optimizer_meta}
    (staging / STATE_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True))
    if final.exists():
        _remove_tree(final)
    os.replace(staging, final)
    return final


def latest_checkpoint(model_dir: Path) -> Checkpoint | None:
    """The newest complete checkpoint of a model folder, or None."""
    root = Path(model_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return None
    complete = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.endswith(PARTIAL_SUFFIX))
    if not complete:
        return None
    return read_checkpoint(complete[-1])


def checkpoint_at(model_dir: Path, iteration: int) -> Checkpoint | None:
    """Checkpoint ``iteration`` of a model folder, or None if it is not there (e.g. pruned)."""
    path = checkpoint_dir(model_dir, iteration)
    return read_checkpoint(path) if path.is_dir() else None


def prune_checkpoints(model_dir: Path, keep: Collection[int | None]) -> None:
    """Delete every complete checkpoint whose iteration is not in ``keep`` (half-written ones are left alone)."""
    root = Path(model_dir) / CHECKPOINTS_DIR
    for path in root.iterdir():
        complete = path.name.startswith(ITERATION_PREFIX) and not path.name.endswith(PARTIAL_SUFFIX)
        if complete and int(path.name.removeprefix(ITERATION_PREFIX)) not in keep:
            shutil.rmtree(path, ignore_errors=True)


def read_checkpoint(path: Path) -> Checkpoint:
    payload = json.loads((Path(path) / STATE_FILE).read_text())
    return Checkpoint(path=Path(path), iteration=int(payload["iteration"]), state=payload["state"])


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(Path(path) / WEIGHTS_FILE)


def restore_checkpoint(
    checkpoint: Checkpoint, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None
) -> None:
    """Load weights (strictly: names and shapes must match) and, if given, the optimizer state."""
    model.load_state_dict(load_weights(checkpoint.path), strict=True)
    if optimizer is None:
        return
    payload = json.loads((checkpoint.path / STATE_FILE).read_text())
    meta = payload.get("optimizer")
    if meta is None:
        return
    tensors = load_file(checkpoint.path / OPTIMIZER_FILE)
    optimizer.load_state_dict(_unflatten_optimizer_state(tensors, meta))


def _flatten_optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into named tensors and JSON-able metadata."""
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for param_id, param_state in state_dict["state"].items():
        for name, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{param_id}.{name}"] = value.detach().contiguous().cpu()
            else:
                scalars.setdefault(str(param_id), {})[name] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _unflatten_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, tensor in tensors.items():
        param_id, name = key.split(".", 1)
        state.setdefault(int(param_id), {})[name] = tensor
    for param_id, values in meta.get("scalars", {}).items():
        state.setdefault(int(param_id), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def _remove_tree(path: Path) -> None:
    for child in path.iterdir():
        child.unlink()
    path.rmdir()
