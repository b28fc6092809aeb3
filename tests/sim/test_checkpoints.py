"""Checkpoints restore training exactly and never unpickle."""

import torch
from torch import nn

from sim.learn.checkpoints import (
    checkpoint_at,
    latest_checkpoint,
    prune_checkpoints,
    restore_checkpoint,
    save_checkpoint,
)


def _model_and_optimizer():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def _train_step(model, optimizer):
    loss = model(torch.ones(3, 4)).pow(2).sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def test_restored_model_and_optimizer_continue_exactly_like_the_original(tmp_path):
    model, optimizer = _model_and_optimizer()
    _train_step(model, optimizer)
    save_checkpoint(tmp_path, 7, model, optimizer, {"episodes": 140, "start_index": 3})

    twin, twin_optimizer = _model_and_optimizer()
    checkpoint = latest_checkpoint(tmp_path)
    assert checkpoint.iteration == 7 and checkpoint.state == {"episodes": 140, "start_index": 3}
    restore_checkpoint(checkpoint, twin, twin_optimizer)

    _train_step(model, optimizer)
    _train_step(twin, twin_optimizer)
    for a, b in zip(model.state_dict().values(), twin.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_latest_checkpoint_ignores_half_written_folders(tmp_path):
    model, optimizer = _model_and_optimizer()
    save_checkpoint(tmp_path, 1, model, optimizer, {})
    (tmp_path / "checkpoints" / "iteration-00002.partial").mkdir()
    assert latest_checkpoint(tmp_path).iteration == 1
    assert latest_checkpoint(tmp_path / "nothing-here") is None


def test_pruning_keeps_the_chosen_iterations_and_half_written_folders(tmp_path):
    model, _ = _model_and_optimizer()
    for iteration in (1, 2, 3, 4):
        save_checkpoint(tmp_path, iteration, model, None, {"iteration": iteration})
    (tmp_path / "checkpoints" / "iteration-00005.partial").mkdir()
    prune_checkpoints(tmp_path, {1, 4, None})
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "iteration-00001", "iteration-00004", "iteration-00005.partial"]
    assert checkpoint_at(tmp_path, 4).state == {"iteration": 4}
    assert checkpoint_at(tmp_path, 2) is None
