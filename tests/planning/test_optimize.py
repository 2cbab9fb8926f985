"""The discount MIP and the targeting rules on small hand-made inputs."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from planning.optimize import candidate_table, plan_discounts
from planning.targeting import target_customers
from promoflow.run import RunConfigError, RunParams

WEEK = date(2026, 11, 16)


def _market(n_products: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    products = pd.DataFrame({
        "product_id": np.arange(1, n_products + 1),
        "product_name": [f"p{i}" for i in range(n_products)],
        "category": [f"c{i % 3}" for i in range(n_products)],
        "list_price": rng.uniform(10, 50, n_products).round(2),
        "unit_cost": 0.0,
        "on_hand_units": rng.integers(50, 500, n_products),
    })
    products["unit_cost"] = (products["list_price"] * rng.uniform(0.4, 0.7, n_products)).round(2)
    rows = []
    for p in products.itertuples():
        base, elasticity = rng.uniform(10, 60), rng.uniform(1, 5)
        for d in (0.0, 0.1, 0.2, 0.3, 0.4):
            u = base * (1 - d) ** (-elasticity)
            rows.append((p.product_id, WEEK, d, 0.7 * u, u, 1.3 * u))
    forecasts = pd.DataFrame(rows, columns=["product_id", "week_start", "discount_depth",
                                            "units_p10", "units_p50", "units_p90"])
    return products, forecasts


def test_plan_respects_budget_margin_and_category_limit():
    products, forecasts = _market()
    params = RunParams(plan_week=WEEK, budget=300.0, max_discount=0.3, margin_floor=0.1,
                        max_promos_per_category=2)
    chosen = plan_discounts(forecasts, products, params).chosen
    assert len(chosen) == len(products)
    promoted = chosen[chosen["discount_depth"] > 0]
    assert not promoted.empty
    assert promoted["promotion_cost"].sum() <= 300.0 + 1e-6
    margin = (promoted["promo_price"] - promoted["unit_cost"]) / promoted["promo_price"]
    assert (margin >= 0.1 - 1e-9).all()
    assert promoted["discount_depth"].max() <= 0.3 + 1e-9
    assert promoted.groupby("category").size().max() <= 2
    assert (promoted["incremental_profit"] > 0).all()


def test_mip_beats_or_matches_greedy_by_profit_per_cost():
    products, forecasts = _market(n_products=30, seed=3)
    params = RunParams(plan_week=WEEK, budget=500.0, max_promos_per_category=30, margin_floor=0.0)
    cand = candidate_table(forecasts, products, params)
    solution = plan_discounts(forecasts, products, params)
    chosen = solution.chosen
    # the budget holds at 90% confidence: the solver's budget row is tighter than the budget
    assert solution.spend <= solution.budget_row + 1e-6 < 500.0
    assert solution.spend_at_confidence <= 500.0 + 1e-6
    # greedy: best ratio first, one level per product, in the same budget row
    promo = cand[(cand["discount_depth"] > 0) & (cand["incremental_profit"] > 0)].copy()
    promo["ratio"] = promo["incremental_profit"] / promo["promotion_cost"]
    spent, profit, used = 0.0, 0.0, set()
    for row in promo.sort_values("ratio", ascending=False).itertuples():
        if row.product_id not in used and spent + row.promotion_cost <= solution.budget_row:
            used.add(row.product_id)
            spent += row.promotion_cost
            profit += row.incremental_profit
    assert chosen["incremental_profit"].sum() >= profit - 1e-6


def test_zero_budget_promotes_nothing():
    products, forecasts = _market()
    chosen = plan_discounts(forecasts, products, RunParams(plan_week=WEEK, budget=0.0)).chosen
    assert (chosen["discount_depth"] == 0).all()


def test_stock_caps_expected_units():
    products, forecasts = _market()
    products["on_hand_units"] = 5
    cand = candidate_table(forecasts, products, RunParams(plan_week=WEEK))
    assert (cand["expected_units"] <= 5).all()
    # with every level capped at the same units, a discount only loses money
    chosen = plan_discounts(forecasts, products, RunParams(plan_week=WEEK, budget=1e6)).chosen
    assert (chosen["discount_depth"] == 0).all()


@pytest.mark.parametrize("kwargs, message", [
    ({"budget": -1.0}, "budget"),
    ({"max_discount": 1.5}, "max_discount"),
    ({"holdout_fraction": 1.0}, "holdout_fraction"),
    ({"plan_week": date(2026, 11, 17)}, "Monday"),
])
def test_bad_params_are_refused(kwargs, message):
    with pytest.raises(RunConfigError, match=message):
        RunParams(**{"plan_week": WEEK, **kwargs})


def test_targeting_holdout_is_disjoint_and_deterministic():
    lines = pd.DataFrame({"product_id": [1, 2], "discount_depth": [0.2, 0.1]})
    recs = pd.DataFrame([(p, c, 1.0 / (r + 1), r + 1) for p in (1, 2, 3)
                         for r, c in enumerate(range(100, 400))],
                        columns=["product_id", "customer_id", "score", "rank"])
    customers = pd.DataFrame({"customer_id": range(100, 400), "preferred_channel": "sms"})
    a = target_customers(lines, recs, customers, WEEK, 50, 0.2, seed=7)
    b = target_customers(lines, recs, customers, WEEK, 50, 0.2, seed=7)
    pd.testing.assert_frame_equal(a, b)
    assert set(a["product_id"]) == {1, 2}
    assert a.groupby("product_id").size().max() == 50
    treated = set(a.loc[a["assignment"] == "treatment", "customer_id"])
    held = set(a.loc[a["assignment"] == "holdout", "customer_id"])
    assert held and treated and not (held & treated)
    assert 0.05 < len(held) / len(treated | held) < 0.4


def test_solver_reports_its_status_and_gap():
    products, forecasts = _market(n_products=30, seed=5)
    solution = plan_discounts(forecasts, products, RunParams(plan_week=WEEK, budget=400.0))
    assert solution.status == "Optimal"
    assert 0 <= solution.mip_gap < 1e-3
    promoted = solution.chosen[solution.chosen["discount_depth"] > 0]
    assert solution.objective == pytest.approx(promoted["incremental_profit"].sum(), abs=1e-6)


def test_a_time_limit_keeps_a_feasible_plan_at_least_the_greedy_one():
    from planning.optimize import solve

    products, forecasts = _market(n_products=200, seed=2)
    params = RunParams(plan_week=WEEK, budget=2000.0, max_promos_per_category=3)
    candidates = candidate_table(forecasts, products, params)
    hurried = solve(candidates, params, time_limit_s=1e-6)  # no time to branch: the start
    assert hurried.status == "Time limit reached"
    promoted = hurried.chosen[hurried.chosen["discount_depth"] > 0]
    assert len(promoted) > 0 and hurried.objective > 0  # the greedy plan, not an empty one
    assert promoted["promotion_cost"].sum() <= params.budget + 1e-6
    assert promoted.groupby("category").size().max() <= params.max_promos_per_category
    assert hurried.chosen["product_id"].is_unique
    solved = solve(candidates, params)
    assert solved.status == "Optimal" and solved.objective >= hurried.objective - 1e-6


def _one_category(dip: dict, cannibalized: dict, on_hand: int = 1000):
    """Two products of one category; units 10 at list price, +6 per 10% off (P10 = P90 = P50)."""
    products = pd.DataFrame({"product_id": [1, 2], "product_name": ["a", "b"],
                             "category": ["c", "c"], "list_price": [10.0, 10.0],
                             "unit_cost": [4.0, 4.0], "on_hand_units": [on_hand, on_hand]})
    rows = []
    for p in (1, 2):
        for d in (0.0, 0.1, 0.2, 0.3):
            u = 10.0 + 60.0 * d
            rows.append((p, WEEK, d, u, u, u, dip.get((p, d), 0.0),
                         cannibalized.get((p, d), 0.0)))
    return products, pd.DataFrame(rows, columns=[
        "product_id", "week_start", "discount_depth", "units_p10", "units_p50", "units_p90",
        "dip_units", "cannibalized_units"])


def _levels(solution) -> dict:
    return solution.chosen.set_index("product_id")["discount_depth"].to_dict()


def test_the_dip_moves_the_choice_to_a_shallower_level():
    params = RunParams(plan_week=WEEK, budget=1e6, max_discount=0.3, discount_step=0.1,
                       margin_floor=0.0, max_promos_per_category=2)
    # vs 60.0 at list price: 10% off 16 x 5 = +20, 20% off 22 x 4 = +28, 30% off 28 x 3 = +24
    products, forecasts = _one_category({}, {})
    assert _levels(plan_discounts(forecasts, products, params)) == {1: 0.2, 2: 0.2}
    # stockpiling: 20% off takes 2 units (12.0 of list margin) from product 1's next weeks
    products, forecasts = _one_category({(1, 0.1): 0.5, (1, 0.2): 2.0, (1, 0.3): 3.0}, {})
    solution = plan_discounts(forecasts, products, params)
    assert _levels(solution) == {1: 0.1, 2: 0.2}
    line = solution.chosen.set_index("product_id").loc[1]
    assert line["dip_cost"] == pytest.approx(3.0) and line["incremental_profit"] == \
        pytest.approx(17.0)


def test_cannibalization_is_a_term_of_the_program_with_its_cap():
    params = RunParams(plan_week=WEEK, budget=1e6, max_discount=0.3, discount_step=0.1,
                       margin_floor=0.0, max_promos_per_category=2)
    # each takes units from its sibling (valued at the category's list margin, 6 a unit)
    steal = {(p, d): u for p in (1, 2) for d, u in ((0.1, 0.5), (0.2, 2.5), (0.3, 3.5))}
    products, forecasts = _one_category({}, steal)
    solution = plan_discounts(forecasts, products, params, cannibalization_cap=1.0)
    # uncapped: 10% off 20 - 3 = 17, 20% off 28 - 15 = 13, 30% off 24 - 21 = 3
    assert _levels(solution) == {1: 0.1, 2: 0.1}
    assert solution.objective == pytest.approx(2 * 17.0, abs=1e-6)
    # the siblings can lose at most 5% of the category's 20 baseline units (1 unit, 6.0)
    capped = plan_discounts(forecasts, products, params, cannibalization_cap=0.05)
    assert _levels(capped) == {1: 0.2, 2: 0.2}
    assert capped.objective == pytest.approx(2 * 28.0 - 6.0, abs=1e-6)


def test_binding_constraints_are_named():
    products, forecasts = _one_category({}, {})
    params = RunParams(plan_week=WEEK, budget=1e6, max_discount=0.3, discount_step=0.1,
                       margin_floor=0.0, max_promos_per_category=1)
    reasons = plan_discounts(forecasts, products, params).chosen["binding_constraint"]
    assert sorted(reasons) == ["category limit (1)", "most profitable level"]
    tight = RunParams(plan_week=WEEK, budget=20.0, max_discount=0.3, discount_step=0.1,
                      margin_floor=0.0, max_promos_per_category=2)
    solution = plan_discounts(forecasts, products, tight)
    assert solution.spend <= 20.0 + 1e-6
    assert "budget" in set(solution.chosen["binding_constraint"])


def test_budget_margin_that_does_not_settle_is_bisected(monkeypatch):
    from planning import optimize

    products, forecasts = _market(n_products=30, seed=3)
    params = RunParams(plan_week=WEEK, budget=500.0, max_promos_per_category=30, margin_floor=0.0)
    settled = plan_discounts(forecasts, products, params)
    # one round of tightening is not enough here: the bisection must still give a plan that fits
    monkeypatch.setattr(optimize, "BUDGET_ROUNDS", 1)
    first = optimize.solve(candidate_table(forecasts, products, params), params)
    assert first.spend_at_confidence > 500.0
    bisected = plan_discounts(forecasts, products, params)
    assert bisected.spend_at_confidence <= 500.0 + 1e-6
    assert (bisected.chosen["discount_depth"] > 0).any()
    assert bisected.objective >= 0.95 * settled.objective
