"""The recommenders' sampled softmax for large catalogues and the training budget."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from training.common.distributed import DistContext
from training.recommender.model import NegativeSampler, TwoTower, two_tower_loss
from training.recommender.sequence import SequenceRecommender, sequence_loss
from training.recommender.train import (
    RecommenderConfig,
    epochs_within_budget,
    max_rows_per_step,
    negative_sampler,
)

CPU = DistContext(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"), backend=None)


def _tables(n_customers: int, n_products: int) -> tuple:
    generator = torch.Generator().manual_seed(0)
    return (torch.randn(n_customers, 3, generator=generator),
            torch.zeros(n_customers, dtype=torch.long),
            torch.randn(n_products, 3, generator=generator),
            torch.zeros(n_products, dtype=torch.long), 1)


def test_the_loss_is_the_logq_corrected_softmax_with_the_target_s_draws_masked() -> None:
    sampler = NegativeSampler(torch.tensor([3.0, 0.0, 8.0, 1.0]), negatives=3)
    q = sampler.q.double()
    assert q.sum().item() == pytest.approx(1.0) and (q > 0).all()  # unbought products drawn too
    assert q[2] > q[0] > q[3] > q[1]
    hidden = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    vectors = torch.tensor([[0.5, 0.1], [0.2, -0.3], [1.0, 1.0], [-0.4, 0.6]])
    bias = torch.tensor([0.1, 0.0, -0.2, 0.3])
    targets, negatives = torch.tensor([0, 2]), torch.tensor([2, 3, 0])
    loss = sampler.loss(hidden, targets, negatives, vectors[targets], bias[targets],
                        vectors[negatives], bias[negatives])
    def corrected(row: int, product: int) -> float:
        return float(hidden[row] @ vectors[product] + bias[product] - math.log(3 * q[product]))

    expected = []
    for row, target in enumerate(targets.tolist()):
        others = [corrected(row, p) for p in negatives.tolist() if p != target]
        expected.append(-corrected(row, target) + math.log(
            math.exp(corrected(row, target)) + sum(math.exp(o) for o in others)))
    assert loss.item() == pytest.approx(sum(expected) / 2, rel=1e-5)


def _train(model, loss_fn, batch: tuple, steps: int, lr: float) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = loss_fn(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def _accuracy(model, customers: torch.Tensor, wanted: torch.Tensor) -> float:
    with torch.no_grad():
        vectors, bias = model.product_vectors()
        top = (model.customer_vectors(customers) @ vectors.T + bias).argmax(dim=1)
    return (top == wanted).float().mean().item()


def test_two_tower_learns_each_customer_s_product_from_sampled_negatives() -> None:
    torch.manual_seed(0)
    n_customers, n_products = 48, 300
    favourite = (torch.arange(n_customers) * 7) % n_products
    counts = torch.bincount(favourite, minlength=n_products)
    model = TwoTower(*_tables(n_customers, n_products), dim=16, hidden=16,
                     sampler=NegativeSampler(counts, negatives=32))
    customers = torch.arange(n_customers)
    _train(model, two_tower_loss, (customers, favourite), steps=150, lr=0.05)
    assert _accuracy(model.eval(), customers, favourite) >= 0.9


def test_the_sequence_model_learns_the_next_purchase_from_sampled_negatives() -> None:
    torch.manual_seed(0)
    n_customers, n_products, length = 32, 200, 4
    # customer c buys c, c + 1, ..., c + length (mod products): the next is always one more
    windows = (torch.arange(n_customers)[:, None] + torch.arange(length + 1)) % n_products
    model = SequenceRecommender(*_tables(n_customers, n_products), windows[:, :-1],
                                torch.full((n_customers,), length), dim=16, heads=2, layers=1,
                                sampler=NegativeSampler(torch.ones(n_products), negatives=32))
    customers = torch.arange(n_customers)
    _train(model, sequence_loss, (customers, windows), steps=200, lr=0.005)
    # after its purchases c .. c + length - 1 the next is c + length
    assert _accuracy(model.eval(), customers, windows[:, -1]) >= 0.9


def test_the_sampler_is_used_above_the_full_softmax_limit_only() -> None:
    cfg = RecommenderConfig()
    interactions = pd.DataFrame({"product_idx": [0, 0, 3]})
    limit = cfg.optim.full_softmax_max_products
    assert negative_sampler(cfg, limit, interactions) is None
    sampler = negative_sampler(cfg, limit + 1, interactions)
    assert sampler is not None and len(sampler.q) == limit + 1
    assert sampler.negatives == cfg.optim.sampled_negatives
    # a step's logits: the catalogue's below the limit, the draws' above it
    assert max_rows_per_step("two_tower", cfg, CPU, 500) == cfg.optim.max_logit_cells // 500
    assert (max_rows_per_step("two_tower", cfg, CPU, 50_000)
            == cfg.optim.max_logit_cells // (cfg.optim.sampled_negatives + 1))


def test_epochs_are_cut_to_the_sample_budget() -> None:
    assert epochs_within_budget(10, 840_000, 12_000_000) == 10
    assert epochs_within_budget(10, 2_000_000, 12_000_000) == 6
    assert epochs_within_budget(10, 9_000_000, 12_000_000) == 1
    assert epochs_within_budget(4, 50_000_000, 12_000_000) == 1  # at least one
