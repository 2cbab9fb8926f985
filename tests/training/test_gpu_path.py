"""The GPU path on the CPU: both models train under bfloat16 autocast (run here with the CPU's
autocast, the same op lists decide the dtypes), and the loaders pin memory only for CUDA."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.utils.data import TensorDataset

from training.common.distributed import DistContext
from training.common.loop import make_loader
from training.forecaster.model import DemandForecaster, pinball_terms
from training.recommender.model import TwoTower, two_tower_loss
from training.recommender.sequence import SequenceRecommender, sequence_loss

CPU = DistContext(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"), backend=None)


def _tables(n_customers: int = 30, n_products: int = 12) -> tuple:
    generator = torch.Generator().manual_seed(0)
    return (torch.randn(n_customers, 4, generator=generator),
            torch.randint(0, 3, (n_customers,), generator=generator),
            torch.randn(n_products, 5, generator=generator),
            torch.randint(1, 3, (n_products,), generator=generator), 2)


def _check_backward(model: torch.nn.Module, loss: torch.Tensor) -> None:
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)


@pytest.fixture
def bf16():
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        yield


def test_two_tower_trains_under_bf16_autocast(bf16) -> None:
    torch.manual_seed(0)
    model = TwoTower(*_tables(), dim=8, hidden=16)
    batch = (torch.arange(16) % 30, torch.arange(16) % 12)
    assert model.customer_tower.mlp(torch.randn(2, 12)).dtype == torch.bfloat16  # autocast on
    _check_backward(model, two_tower_loss(model, batch))


def test_sequence_model_trains_under_bf16_autocast(bf16) -> None:
    torch.manual_seed(0)
    histories = torch.randint(0, 13, (30, 6))
    model = SequenceRecommender(*_tables(), histories, torch.full((30,), 6), dim=8, heads=2,
                                layers=1)
    windows = torch.randint(0, 12, (8, 7))
    windows[0, 4:] = 12  # a short window: pads after its purchases
    _check_backward(model, sequence_loss(model, (torch.arange(8), windows)))


def test_forecaster_trains_under_bf16_autocast(bf16) -> None:
    torch.manual_seed(0)
    model = DemandForecaster(n_features=6, n_products=10, n_categories=3, embedding_dim=4,
                             hidden_dim=16, initial_level=1.0)
    n = 32
    out = model(torch.randn(n, 6), torch.randint(0, 11, (n,)), torch.randint(0, 4, (n,)),
                torch.rand(n) * 0.5, torch.zeros(n, 3), torch.rand(n, 3) * 0.3, torch.rand(n))
    assert out.dtype == torch.float32  # the quantiles stay float32 for the exp/log arithmetic
    _check_backward(model, pinball_terms(out, torch.rand(n) * 3, torch.zeros(n)).mean())


def test_loaders_pin_memory_only_for_cuda() -> None:
    data = TensorDataset(torch.arange(10))
    cuda = dataclasses.replace(CPU, device=torch.device("cuda", 0))
    assert not make_loader(data, CPU, 4, seed=0).pin_memory
    assert make_loader(data, cuda, 4, seed=0).pin_memory
