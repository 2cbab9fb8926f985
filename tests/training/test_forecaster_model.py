"""Unit tests of the forecaster network: monotone in discount, ordered quantiles, pinball loss."""

from __future__ import annotations

import pytest
import torch

from training.forecaster.model import QUANTILES, DemandForecaster, pinball_loss, to_units

DISCOUNTS = torch.tensor([0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.6, 0.9])


def _random_model(seed: int) -> DemandForecaster:
    """A model with every parameter drawn at random (much wilder than trained weights)."""
    torch.manual_seed(seed)
    model = DemandForecaster(n_features=7, n_products=11, n_categories=3, embedding_dim=4,
                             hidden_dim=16)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.5)
    return model.eval()


def _random_rows(seed: int, n: int = 64) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(n, 7, generator=generator) * 2
    product = torch.randint(0, 12, (n,), generator=generator)
    category = torch.randint(0, 4, (n,), generator=generator)
    return features, product, category


@pytest.mark.parametrize("seed", range(5))
def test_demand_is_non_decreasing_in_discount_depth(seed: int) -> None:
    model = _random_model(seed)
    features, product, category = _random_rows(seed)
    curves = []
    with torch.no_grad():
        for depth in DISCOUNTS:
            discount = torch.full((len(features),), float(depth))
            promoted = (discount >= 0.01).float()
            curves.append(model(features, product, category, discount, promoted))
    log_units = torch.stack(curves)  # [discount, row, quantile] on the log1p scale
    assert torch.isfinite(log_units).all()
    assert (log_units[1:] >= log_units[:-1]).all()
    units = to_units(log_units.double())
    assert (units[1:] >= units[:-1]).all()
    # and the discount really moves demand (the price term is not dead)
    assert (log_units[-1, :, 1] > log_units[0, :, 1]).all()


@pytest.mark.parametrize("seed", range(5))
def test_quantiles_are_ordered(seed: int) -> None:
    model = _random_model(seed)
    features, product, category = _random_rows(seed + 100)
    generator = torch.Generator().manual_seed(seed)
    discount = torch.rand(len(features), generator=generator) * 0.6
    with torch.no_grad():
        out = model(features, product, category, discount, (discount >= 0.01).float())
    assert out.shape == (len(features), 3)
    assert (out[:, 0] <= out[:, 1]).all() and (out[:, 1] <= out[:, 2]).all()
    units = to_units(out)
    assert (units >= 0).all()
    assert (units[:, 0] <= units[:, 1]).all() and (units[:, 1] <= units[:, 2]).all()


def test_pinball_loss_is_smallest_at_the_true_quantiles() -> None:
    generator = torch.Generator().manual_seed(0)
    target = torch.randn(20_000, generator=generator)
    true = torch.quantile(target, torch.tensor(QUANTILES))
    at_truth = pinball_loss(true.expand(len(target), 3), target)
    for shift in (-0.3, 0.3):
        assert pinball_loss((true + shift).expand(len(target), 3), target) > at_truth
