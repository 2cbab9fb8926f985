"""The scorer values plans on a hand-made ground truth: the oracle is the best plan there is
(checked by brute force), and the constraint checks catch plans that break them."""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from planning.optimize import candidate_table
from promoflow.run import Run, RunParams
from scoring.score import evaluate, score, true_curves
from sources.synthetic.market import HOLIDAY_BASE_LIFT

WEEK = date(2026, 3, 2)  # no holiday in this week


@pytest.fixture
def market(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    truth = pd.DataFrame({
        "product_id": [1, 2, 3, 4, 5, 6],
        "category": ["a", "a", "a", "b", "b", "b"],
        "base_weekly_units": [20.0, 12.0, 30.0, 8.0, 25.0, 15.0],
        "elasticity": [3.0, 4.5, 1.2, 5.0, 2.5, 3.5],
        "list_price": [10.0, 25.0, 8.0, 40.0, 12.0, 20.0],
        "unit_cost": [5.0, 12.0, 6.5, 18.0, 6.0, 9.0],
    })
    truth.to_csv(tmp_path / "products_truth.csv", index=False)
    pd.DataFrame([(c, w, 1.0) for c in "ab" for w in range(1, 54)],
                 columns=["category", "week_of_year", "multiplier"]).to_csv(
        tmp_path / "seasonality_truth.csv", index=False)
    pd.DataFrame([(c, h, 1.0) for c in "ab" for h in HOLIDAY_BASE_LIFT],
                 columns=["category", "holiday_name", "lift"]).to_csv(
        tmp_path / "holiday_lifts_truth.csv", index=False)
    products = truth[["product_id", "category", "list_price", "unit_cost"]].assign(
        on_hand_units=[500, 500, 40, 500, 500, 500])
    return tmp_path, products


def _run(**params) -> Run:
    defaults = {"plan_week": WEEK, "budget": 60.0, "max_discount": 0.3, "margin_floor": 0.1,
                "max_promos_per_category": 2}
    return Run("unit", RunParams(**{**defaults, **params}))


def test_oracle_is_the_best_plan_found_by_brute_force(market) -> None:
    truth_dir, products = market
    run = _run()
    curves = true_curves(truth_dir, products, run)
    scores = {s.policy: s for s in score(run, pd.DataFrame({"product_id": [], "discount_depth": []}),
                                         curves, products, truth_dir)}
    economics = candidate_table(curves, products, run.params)
    best = None
    for combo in itertools.product(run.params.discount_levels, repeat=len(products)):
        depths = pd.Series(combo, index=products["product_id"])
        profit, _, violations = evaluate(depths[depths > 0], economics, products, run)
        if not violations and (best is None or profit > best):
            best = profit
    assert scores["oracle"].true_net_profit == pytest.approx(best, abs=0.01)
    assert scores["oracle"].efficiency == 1.0 and not scores["oracle"].violations
    assert scores["no_promotion"].true_incremental_profit == 0
    assert scores["oracle"].true_incremental_profit > 0


def test_an_over_budget_plan_is_caught(market) -> None:
    truth_dir, products = market
    run = _run(budget=20.0)
    economics = candidate_table(true_curves(truth_dir, products, run), products, run.params)
    _, spend, violations = evaluate(pd.Series({1: 0.3, 5: 0.3}), economics, products, run)
    assert spend > 20.0
    assert any("over the budget" in v for v in violations)


def test_a_plan_below_the_margin_floor_is_caught(market) -> None:
    truth_dir, products = market
    run = _run(budget=1e6, margin_floor=0.2)
    economics = candidate_table(true_curves(truth_dir, products, run), products, run.params)
    # product 3: cost 6.5 of 8.0; at 20% off the price 6.40 is below cost
    _, _, violations = evaluate(pd.Series({3: 0.2}), economics, products, run)
    assert violations == ["1 prices below the margin floor"]
    _, _, fine = evaluate(pd.Series({1: 0.2}), economics, products, run)
    assert fine == []
