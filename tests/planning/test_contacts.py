"""The measured contact effect in the plan: pooling the measured weeks, the treated targets
per product, the contact units on the promoted levels and what they change in the plan."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from planning.contacts import (
    NO_EFFECT,
    Z95,
    ContactEffect,
    expected_buyers,
    pool_effects,
    treated_counts,
    with_contact_units,
)
from planning.optimize import plan_discounts
from planning.targeting import target_customers
from promoflow.run import RunParams

WEEK = date(2026, 11, 16)


def _measured(differences: list[float], std_errors: list[float]) -> pd.DataFrame:
    d, se = np.array(differences), np.array(std_errors)
    return pd.DataFrame({"difference": d, "ci_low": d - Z95 * se, "ci_high": d + Z95 * se})


def test_weeks_are_pooled_by_inverse_variance() -> None:
    pooled = pool_effects(_measured([0.04, 0.01], [0.01, 0.02]))
    # weights 1/0.01^2 = 10000 and 1/0.02^2 = 2500: (0.04 * 10000 + 0.01 * 2500) / 12500
    assert pooled.effect == pytest.approx(0.034)
    assert pooled.std_error == pytest.approx(np.sqrt(1 / 12500))
    assert pooled.weeks == 2


def test_a_negative_pooled_effect_counts_nothing_and_flat_weeks_are_left_out() -> None:
    assert pool_effects(_measured([-0.02, -0.01], [0.01, 0.01])).effect == 0.0
    assert pool_effects(_measured([0.05], [0.0])) == NO_EFFECT
    flat = pool_effects(_measured([0.05, 0.02], [0.0, 0.01]))
    assert (flat.effect, flat.weeks) == (pytest.approx(0.02), 1)


def _recommendations(n_products: int = 4, n_customers: int = 50) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = [(p, c, float(rng.random())) for p in range(1, n_products + 1)
            for c in range(1, n_customers + 1) if rng.random() < 0.8]
    recs = pd.DataFrame(rows, columns=["product_id", "customer_id", "score"])
    recs["rank"] = recs.groupby("product_id")["score"].rank(ascending=False, method="first")
    return recs.astype({"rank": int})


def test_treated_counts_are_the_treatment_groups_of_the_targeting() -> None:
    recs = _recommendations()
    customers = pd.DataFrame({"customer_id": range(1, 51), "preferred_channel": "email"})
    counts = treated_counts(pd.Series([1, 2, 3, 4, 9]), recs, customers, WEEK, 20, 0.25, 7)
    lines = pd.DataFrame({"product_id": [1, 2, 3, 4], "discount_depth": 0.1})
    targets = target_customers(lines, recs, customers, WEEK, 20, 0.25, 7)
    expected = targets[targets["assignment"] == "treatment"].groupby("product_id").size()
    assert counts.loc[[1, 2, 3, 4]].tolist() == expected.loc[[1, 2, 3, 4]].astype(float).tolist()
    assert counts.loc[9] == 0.0  # nobody recommended: nobody contacted
    assert (counts.loc[[1, 2, 3, 4]] < 20).all() and (counts.loc[[1, 2, 3, 4]] > 5).all()


def test_treated_counts_leave_out_customers_without_consent() -> None:
    """The counts follow the targeting's consent rule: a customer whose only consent was
    withdrawn before the week is never counted, and nobody is counted when nobody consented."""
    recs = _recommendations()
    customers = pd.DataFrame({"customer_id": range(1, 51), "preferred_channel": "email"})
    consents = pd.DataFrame({
        "customer_id": range(1, 26), "channel": "email",
        "consented_from": pd.Timestamp("2025-01-01 09:00"),
        "withdrawn_at": pd.Timestamp("2026-11-01 09:00"),
    })  # customers 1-25 withdrew their email consent; 26-50 have the preferred channel's
    counts = treated_counts(pd.Series([1, 2, 3, 4]), recs, customers, WEEK, 20, 0.25, 7,
                            consents)
    lines = pd.DataFrame({"product_id": [1, 2, 3, 4], "discount_depth": 0.1})
    targets = target_customers(lines, recs, customers, WEEK, 20, 0.25, 7, consents)
    assert (targets["customer_id"] > 25).all()
    expected = targets[targets["assignment"] == "treatment"].groupby("product_id").size()
    assert counts.tolist() == expected.loc[[1, 2, 3, 4]].astype(float).tolist()
    nobody = customers.assign(preferred_channel="")
    none = treated_counts(pd.Series([1, 2, 3, 4]), recs, nobody, WEEK, 20, 0.25, 7,
                          consents.iloc[:0])
    assert none.tolist() == [0.0] * 4


def test_contact_units_go_to_the_promoted_levels_only() -> None:
    forecasts = pd.DataFrame({"product_id": [1, 1, 2, 2], "discount_depth": [0.0, 0.2] * 2,
                              "units_p10": [5.0, 8.0, 1.0, 2.0], "units_p50": [10.0, 14.0, 2.0, 3.0],
                              "units_p90": [15.0, 20.0, 3.0, 5.0]})
    treated = pd.DataFrame({"product_id": [1] * 100 + [2] * 40, "customer_id": range(140)})
    buyers = expected_buyers(treated, pd.Series([1, 2]), ContactEffect(0.05, 0.01, 2))
    out = with_contact_units(forecasts, buyers)
    assert out["contact_units"].tolist() == [0.0, 5.0, 0.0, 2.0]
    assert out["units_p50"].tolist() == [10.0, 19.0, 2.0, 5.0]
    assert out["units_p10"].tolist() == [5.0, 13.0, 1.0, 4.0]
    unchanged = with_contact_units(forecasts,
                                   expected_buyers(treated, pd.Series([1, 2]), NO_EFFECT))
    assert unchanged["units_p50"].tolist() == forecasts["units_p50"].tolist()


def test_a_measured_contact_effect_can_make_a_promotion_pay() -> None:
    """A price cut that loses money alone pays once its campaign's measured buyers count; the
    plan then counts their units in its spend and stock."""
    products = pd.DataFrame({"product_id": [1], "product_name": ["p"], "category": ["c"],
                             "list_price": [20.0], "unit_cost": [12.0], "on_hand_units": [500]})
    # elasticity about 1: 10% off sells 10% more, which does not pay at a 40% margin
    forecasts = pd.DataFrame({"product_id": 1, "week_start": WEEK, "discount_depth": [0.0, 0.1],
                              "units_p10": [40.0, 44.0], "units_p50": [50.0, 55.0],
                              "units_p90": [60.0, 66.0]})
    params = RunParams(plan_week=WEEK, budget=1000.0, max_discount=0.1, discount_step=0.1,
                       margin_floor=0.0)
    alone = plan_discounts(forecasts, products, params).chosen
    assert alone["discount_depth"].iloc[0] == 0.0
    with_contacts = with_contact_units(forecasts, pd.Series({1: 15.0}))  # 15 more units
    chosen = plan_discounts(with_contacts, products, params).chosen
    line = chosen.iloc[0]
    assert line["discount_depth"] == pytest.approx(0.1)
    assert line["contact_units"] == pytest.approx(15.0)
    assert line["expected_units"] == pytest.approx(70.0)
    # 70 units at 18 - 12 minus 50 at 20 - 12
    assert line["week_incremental_profit"] == pytest.approx(70 * 6.0 - 50 * 8.0)
    assert line["promotion_cost"] == pytest.approx(70 * 2.0)


def test_learned_uplift_sums_over_the_treated_targets_and_never_goes_below_zero() -> None:
    treated = pd.DataFrame({"product_id": [1, 1, 1, 2, 2], "customer_id": [10, 11, 12, 10, 13]})
    uplift = pd.Series({10: 0.10, 11: 0.05, 12: 0.02, 13: -0.2})
    buyers = expected_buyers(treated, pd.Series([1, 2, 3]), ContactEffect(0.04, 0.01, 2), uplift)
    assert buyers.to_dict() == pytest.approx({1: 0.17, 2: 0.0, 3: 0.0})
