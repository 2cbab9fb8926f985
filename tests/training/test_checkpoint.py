"""Checkpoints: atomic save by rank 0, restore of model and optimizer, automatic resume."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import TensorDataset

from training.common import load_checkpoint, save_checkpoint, setup_distributed
from training.common.distributed import seed_everything
from training.common.loop import fit


def _toy(seed: int = 0) -> tuple[nn.Module, torch.optim.Optimizer, TensorDataset]:
    seed_everything(seed)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(96, 3, generator=generator)
    return model, optimizer, TensorDataset(x, x.sum(dim=1, keepdim=True) ** 2)


def _loss(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    return nn.functional.mse_loss(model(batch[0]), batch[1])


def _fit(model, optimizer, data, epochs: int, path: Path) -> nn.Module:
    return fit(setup_distributed(), model, optimizer, data, _loss, epochs=epochs, batch_size=16,
               seed=3, checkpoint_path=path, run_key="toy", name="toy")


def test_save_and_load_roundtrip(tmp_path: Path) -> None:
    ctx = setup_distributed()
    assert ctx.world_size == 1 and ctx.is_main and ctx.backend is None
    model, optimizer, data = _toy()
    _fit(model, optimizer, data, 1, tmp_path / "unused.pt")
    path = tmp_path / "models" / "toy" / "checkpoint.pt"
    save_checkpoint(path, ctx, model, optimizer, epoch=4, step=40, run_key="k1", extra={"a": 1})
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.pt"]  # no temporary left

    fresh, fresh_optimizer, _ = _toy(seed=99)
    state = load_checkpoint(path, ctx, fresh, fresh_optimizer, run_key="k1")
    assert state is not None and state["epoch"] == 4 and state["step"] == 40
    assert state["extra"] == {"a": 1}
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    steps = [o.state_dict()["state"][0]["step"] for o in (optimizer, fresh_optimizer)]
    assert steps[0] == steps[1] > 0
    assert load_checkpoint(path, ctx, fresh, fresh_optimizer, run_key="other") is None
    assert load_checkpoint(tmp_path / "missing.pt", ctx, fresh, None, run_key="k1") is None


def test_interrupted_training_resumes_to_the_same_model(tmp_path: Path) -> None:
    model, optimizer, data = _toy()
    straight = _fit(model, optimizer, data, 3, tmp_path / "straight.pt")

    model, optimizer, data = _toy()
    _fit(model, optimizer, data, 2, tmp_path / "resumed.pt")  # "crash" after two epochs
    model, optimizer, data = _toy()  # a restarted process starts from scratch...
    resumed = _fit(model, optimizer, data, 3, tmp_path / "resumed.pt")  # ...and resumes

    state = torch.load(tmp_path / "resumed.pt", weights_only=False)
    assert state["epoch"] == 2 and state["step"] == 3 * 6
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
