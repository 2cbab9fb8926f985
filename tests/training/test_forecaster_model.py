"""Unit tests of the forecaster network: monotone in discount, ordered quantiles, the signs of
the promotion terms, the (censored) pinball loss."""

from __future__ import annotations

import pytest
import torch

from training.forecaster.model import (
    QUANTILES,
    DemandForecaster,
    pinball_loss,
    pinball_terms,
    price_basis,
    to_units,
)

DISCOUNTS = torch.tensor([0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.6, 0.9])


def _random_model(seed: int) -> DemandForecaster:
    """A model with every parameter drawn at random (much wilder than trained weights)."""
    torch.manual_seed(seed)
    model = DemandForecaster(n_features=7, n_products=11, n_categories=3, embedding_dim=4,
                             hidden_dim=16)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name != "contact_rate_logit":  # left at its start (r = 0.05)
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
            curves.append(model(features, product, category, discount))
    log_units = torch.stack(curves)  # [discount, row, quantile] on the log1p scale
    assert torch.isfinite(log_units).all()
    assert (log_units[1:] >= log_units[:-1]).all()
    units = to_units(log_units.double())
    assert (units[1:] >= units[:-1]).all()
    # and the discount really moves the demand of every product that sells (the price term
    # is not dead; it multiplies the units, so a product expected to sell 0 stays at 0)
    selling = log_units[0, :, 1] > 0
    assert selling.sum() >= 4
    assert (log_units[-1, selling, 1] > log_units[0, selling, 1]).all()


@pytest.mark.parametrize("seed", range(5))
def test_quantiles_are_ordered(seed: int) -> None:
    model = _random_model(seed)
    features, product, category = _random_rows(seed + 100)
    generator = torch.Generator().manual_seed(seed)
    discount = torch.rand(len(features), generator=generator) * 0.6
    with torch.no_grad():
        out = model(features, product, category, discount)
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


def _promotion_inputs(seed: int, n: int) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    promo_type = (torch.rand(n, 3, generator=generator) < 0.3).float()
    lag_depth = torch.rand(n, 3, generator=generator) * 0.5
    pressure = torch.rand(n, generator=generator) * 0.4
    return promo_type, lag_depth, pressure


@pytest.mark.parametrize("seed", range(3))
def test_monotone_in_depth_whatever_the_other_promotion_inputs(seed: int) -> None:
    model = _random_model(seed)
    features, product, category = _random_rows(seed)
    others = _promotion_inputs(seed, len(features))
    with torch.no_grad():
        curves = torch.stack([
            model(features, product, category, torch.full((len(features),), float(d)), *others)
            for d in DISCOUNTS
        ])
    assert (curves[1:] >= curves[:-1]).all()


def test_price_response_is_concave_and_saturates() -> None:
    """The lift of a price cut grows ever more slowly with depth (no constant elasticity)."""
    model = _random_model(0)
    product, category = torch.arange(12), torch.arange(12) % 4
    depths = torch.linspace(0.05, 0.9, 18)
    with torch.no_grad():
        lift = torch.stack([model.own_lift(product, category, torch.full((12,), float(d)))
                            for d in depths])
    steps = lift[1:] - lift[:-1]
    assert (steps >= 0).all()
    assert (steps[1:] <= steps[:-1] + 1e-6).all()
    assert torch.equal(price_basis(torch.zeros(3)), torch.zeros(3, 4))


def test_dip_pressure_and_types_move_demand_the_right_way() -> None:
    """Earlier promotions and promoted siblings only lower demand; promotion types only raise
    it; the terms are live (they move every row)."""
    model = _random_model(1)
    features, product, category = _random_rows(1)
    n = len(features)
    discount = torch.full((n,), 0.2)
    zeros3, zero = torch.zeros(n, 3), torch.zeros(n)
    with torch.no_grad():
        base = model(features, product, category, discount, zeros3, zeros3, zero)
        dipped = model(features, product, category, discount, zeros3, torch.full((n, 3), 0.3),
                       zero)
        pressed = model(features, product, category, discount, zeros3, zeros3,
                        torch.full((n,), 0.3))
        bumped = model(features, product, category, discount, torch.ones(n, 3), zeros3, zero)
    selling = base[:, 1] > 0  # the terms multiply the units: 0 stays 0
    assert selling.sum() >= 4
    assert (pressed[selling, 1] < base[selling, 1]).all()
    assert (bumped[selling, 1] > base[selling, 1]).all()
    # this model does not deflate its level inputs
    assert (dipped[selling, 1] < base[selling, 1]).all()
    assert (torch.maximum(pressed, dipped)[:, 1] <= base[:, 1]).all()
    assert (bumped[:, 1] >= base[:, 1]).all()
    past = model.past_lift(product, category, torch.full((n, 3), 0.3))
    assert (model.dip_effect(category, past) > 0).all()
    assert (model.dip_effect(category, torch.zeros(n, 3)) == 0).all()


def test_censored_pinball_ignores_over_prediction_on_censored_rows() -> None:
    target = torch.tensor([2.0, 2.0, 2.0, 2.0])
    censored = torch.tensor([1.0, 1.0, 0.0, 0.0])
    predicted = torch.tensor([[2.5, 3.0, 3.5],   # censored, above the record: free
                              [0.5, 1.0, 1.5],   # censored, below: costs as usual
                              [2.5, 3.0, 3.5],   # not censored, above: costs
                              [0.5, 1.0, 1.5]], requires_grad=True)
    terms = pinball_terms(predicted, target, censored)
    plain = pinball_terms(predicted, target)
    assert torch.equal(terms[0], torch.zeros(3))
    assert torch.equal(terms[1:], plain[1:])
    assert (plain[0] > 0).all()
    pinball_loss(predicted, target, censored).backward()
    assert torch.equal(predicted.grad[0], torch.zeros(3))  # no pull down from a lower bound
    assert (predicted.grad[1] < 0).all()  # pushed up towards (above) the record
    assert pinball_loss(predicted, target, censored) < pinball_loss(predicted, target)


def test_level_inputs_are_deflated_by_the_lift_of_past_promotions() -> None:
    """Last week's promotion inflated last week's units: the body sees them without its lift."""
    torch.manual_seed(0)
    model = DemandForecaster(n_features=3, n_products=2, n_categories=1, embedding_dim=2,
                             hidden_dim=4, level_index=[0, 2], level_scale=[2.0, 1.0],
                             level_window=[[1.0, 0.0, 0.0], [0.25, 0.25, 0.25]]).eval()
    seen = []
    model.body.register_forward_pre_hook(lambda module, args: seen.append(args[0][:, :3]))
    features = torch.zeros(2, 3)
    product, category = torch.tensor([1, 2]), torch.tensor([1, 1])
    lag_depth = torch.tensor([[0.0, 0.0, 0.0], [0.3, 0.0, 0.0]])
    with torch.no_grad():
        model(features, product, category, torch.zeros(2), None, lag_depth)
        lift = model.own_lift(product[1:], category[1:], torch.tensor([0.3]))
    inputs = seen[0]
    assert torch.equal(inputs[0], torch.zeros(3))  # no promotion before: untouched
    assert inputs[1, 0] == pytest.approx(-2.0 * float(lift), rel=1e-5)
    assert inputs[1, 1] == 0.0  # not a level input
    assert inputs[1, 2] == pytest.approx(-float(torch.log1p(torch.expm1(lift) / 4)), rel=1e-5)


def test_a_promotion_multiplies_units_and_starts_without_a_step() -> None:
    """The lift multiplies the units (the same share for a slow and a fast seller, not units +
    1), and it grows from 0 with the depth: a 0.1% cut adds next to nothing (no promotion step)."""
    model = _random_model(2)
    features, product, category = _random_rows(2)
    n = len(features)
    with torch.no_grad():
        at = {d: to_units(model(features, product, category, torch.full((n,), d)))[:, 1]
              for d in (0.0, 0.001, 0.05)}
        lift = model.own_lift(product, category, torch.full((n,), 0.05))
    selling = at[0.0] > 0
    assert selling.sum() >= 4
    ratio = at[0.05][selling] / at[0.0][selling]
    assert torch.allclose(ratio, torch.exp(lift[selling]), rtol=1e-4)
    assert (at[0.001][selling] / at[0.0][selling] < 1.02).all()


def test_contacts_add_units_at_the_learned_rate_and_can_be_forgotten() -> None:
    model = _random_model(4)
    features, product, category = _random_rows(4)
    discount = torch.full((len(features),), 0.2)
    others = _promotion_inputs(4, len(features))
    contacts = torch.linspace(0.0, 150.0, len(features))
    with torch.no_grad():
        without = model(features, product, category, discount, *others)
        with_contacts = model(features, product, category, discount, *others, contacts)
        rate = float(model.contact_rate())
        # where the level is not negative: units (P50) grow by exactly r per contacted customer
        added = to_units(with_contacts[:, 1]) - to_units(without[:, 1])
        level_positive = without[:, 1] >= 0
        assert level_positive.sum() > 10
        torch.testing.assert_close(added[level_positive],
                                   rate * contacts[level_positive], rtol=1e-2, atol=2e-2)
        assert (with_contacts >= without - 1e-6).all()
        model.forget_contacts()
        forgotten = model(features, product, category, discount, *others, contacts)
    assert rate > 0 and float(model.contact_rate().detach()) < 1e-12
    torch.testing.assert_close(forgotten, without)
