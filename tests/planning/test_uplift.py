"""The uplift learner: it finds who responds to a contact, not who buys anyway."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from planning.uplift import MIN_ROWS, PRIOR, fit, transformed_outcome

WEEKS = [dt.date(2026, 11, 2), dt.date(2026, 11, 9)]


def _history(n: int, seed: int = 3, holdout: float = 0.2) -> tuple[pd.DataFrame, np.ndarray]:
    """Targets whose true uplift grows with promo_share while the chance to buy anyway grows
    with frequency (the customers a propensity ranking would pick)."""
    rng = np.random.default_rng(seed)
    promo_share = rng.beta(2, 4, n)
    frequency = rng.poisson(np.exp(rng.normal(2.5, 0.8, n)))
    base = np.clip(0.02 + 0.004 * frequency, 0, 0.6)
    uplift = 0.12 * promo_share
    treated = rng.random(n) >= holdout
    bought = rng.random(n) < base + treated * uplift
    frame = pd.DataFrame({
        "plan_week": np.array(WEEKS)[rng.integers(0, 2, n)],
        "customer_id": np.arange(n),
        "assignment": np.where(treated, "treatment", "holdout"),
        "bought": bought,
        "promo_share": promo_share,
        "avg_discount_depth": 0.2 * promo_share + rng.normal(0, 0.01, n),
        "frequency_orders_52w": frequency,
        "monetary_value_52w": 30.0 * frequency,
        "recency_days": rng.integers(0, 200, n),
    })
    return frame, uplift


def test_the_transformed_outcome_averages_to_the_treated_minus_holdout_difference() -> None:
    history, _ = _history(4000)
    y = transformed_outcome(history)
    treated = history["assignment"] == "treatment"
    for week in WEEKS:
        in_week = (history["plan_week"] == week).to_numpy()
        difference = (history.loc[in_week & treated, "bought"].mean()
                      - history.loc[in_week & ~treated, "bought"].mean())
        assert abs(y[in_week].mean() - difference) < 1e-9


def test_uplift_ranks_responders_above_customers_who_buy_anyway() -> None:
    history, _ = _history(30_000)
    model = fit(history, seed=1)
    assert model.learned and model.rows == 30_000 and model.weeks == 2
    fresh, true_uplift = _history(5000, seed=11)
    predicted = model.predict(fresh)
    # the learned ranking follows the true uplift, and the propensity ranking does not
    assert np.corrcoef(predicted, true_uplift)[0, 1] > 0.6
    top = np.argsort(-predicted)[:1000]
    by_frequency = np.argsort(-fresh["frequency_orders_52w"].to_numpy())[:1000]
    assert true_uplift[top].mean() > 1.3 * true_uplift[by_frequency].mean()
    # the average predicted uplift is the measured average effect
    assert abs(model.intercept - 0.12 * history["promo_share"].mean()) < 0.02


def test_too_few_holdout_targets_learn_nothing_and_expect_no_extra_buyers() -> None:
    history, _ = _history(MIN_ROWS * 4, holdout=0.1)
    model = fit(history)
    assert model is PRIOR and not model.learned
    assert (model.expected(history) == 0).all()
    # the prior ranks by deal proneness
    assert np.array_equal(model.predict(history), history["promo_share"].to_numpy())


def test_the_fit_is_deterministic_for_a_seed() -> None:
    history, _ = _history(5000)
    assert fit(history, seed=4) == fit(history, seed=4)
