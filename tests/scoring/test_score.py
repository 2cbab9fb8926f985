"""The scorer values plans on a hand-made ground truth: the oracle is the best plan there is
(checked by brute force), and the constraint checks catch plans that break them."""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from planning.optimize import CANNIBALIZATION_CAP
from promoflow.run import Run, RunParams
from scoring.score import evaluate, score, true_curves, what_if
from sources.synthetic.market import HOLIDAY_BASE_LIFT

WEEK = date(2026, 3, 2)  # no holiday in this week


def _write_market(folder: Path, dip_share: float, rate: float) -> pd.DataFrame:
    truth = pd.DataFrame({
        "product_id": [1, 2, 3, 4, 5, 6],
        "category": ["a", "a", "a", "b", "b", "b"],
        "base_weekly_units": [20.0, 12.0, 30.0, 8.0, 25.0, 15.0],
        "elasticity": [3.0, 4.5, 1.2, 5.0, 2.5, 3.5],
        "dip_share": dip_share,
        "list_price": [10.0, 25.0, 8.0, 40.0, 12.0, 20.0],
        "unit_cost": [5.0, 12.0, 6.5, 18.0, 6.0, 9.0],
    })
    folder.mkdir(parents=True, exist_ok=True)
    truth.to_csv(folder / "products_truth.csv", index=False)
    pd.DataFrame({"category": ["a", "b"], "saturation": [0.4, 0.3], "visibility": [0.5, 1.0],
                  "cannibalization_rate": rate, "cannibalization_cap": [0.3, 0.05]}).to_csv(
        folder / "categories_truth.csv", index=False)
    pd.DataFrame({"product_id": [1, 4], "week_start": [WEEK, WEEK],
                  "dip_units": [4.0, 1.0]}).to_csv(folder / "carryover_truth.csv", index=False)
    pd.DataFrame([(c, w, 1.0) for c in "ab" for w in range(1, 54)],
                 columns=["category", "week_of_year", "multiplier"]).to_csv(
        folder / "seasonality_truth.csv", index=False)
    pd.DataFrame([(c, h, 1.0) for c in "ab" for h in HOLIDAY_BASE_LIFT],
                 columns=["category", "holiday_name", "lift"]).to_csv(
        folder / "holiday_lifts_truth.csv", index=False)
    return truth[["product_id", "category", "list_price", "unit_cost"]].assign(
        on_hand_units=[500, 500, 40, 500, 500, 500])


@pytest.fixture
def market(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    return tmp_path, _write_market(tmp_path, dip_share=0.3, rate=0.4)


def _run(**params) -> Run:
    defaults = {"plan_week": WEEK, "budget": 60.0, "max_discount": 0.3, "discount_step": 0.1,
                "margin_floor": 0.1, "max_promos_per_category": 2}
    return Run("unit", RunParams(**{**defaults, **params}))


def _brute_force(truth_dir: Path, products: pd.DataFrame, run: Run) -> float:
    best = None
    for combo in itertools.product(run.params.discount_levels, repeat=len(products)):
        depths = pd.Series(combo, index=products["product_id"])
        value = evaluate(depths, products, run, truth_dir)
        if not value.violations and (best is None or value.net_profit > best):
            best = value.net_profit
    return best


def _scores(truth_dir: Path, products: pd.DataFrame, run: Run) -> dict:
    curves = true_curves(truth_dir, products, run)
    plan = pd.DataFrame({"product_id": [], "discount_depth": []})
    return {s.policy: s for s in score(run, plan, curves, products, truth_dir)}


def test_oracle_is_the_best_plan_found_by_brute_force(tmp_path: Path) -> None:
    # without dip and cannibalization the oracle's program is the truth: exactly the best plan
    products = _write_market(tmp_path, dip_share=0.0, rate=0.0)
    run = _run(max_discount=0.2)
    scores = _scores(tmp_path, products, run)
    assert scores["oracle"].true_net_profit == pytest.approx(
        _brute_force(tmp_path, products, run), abs=0.01)
    assert scores["oracle"].efficiency == 1.0 and not scores["oracle"].violations
    assert scores["no_promotion"].true_incremental_profit == 0
    assert scores["oracle"].true_incremental_profit > 0


def test_oracle_with_dip_and_cannibalization_is_within_a_hair_of_brute_force(market) -> None:
    truth_dir, products = market
    run = _run(max_discount=0.2)
    scores = _scores(truth_dir, products, run)
    best = _brute_force(truth_dir, products, run)
    none = scores["no_promotion"].true_net_profit
    assert scores["oracle"].true_net_profit <= best + 0.01
    assert scores["oracle"].true_net_profit - none >= 0.99 * (best - none) > 0
    assert scores["oracle"].true_dip_cost > 0 and scores["oracle"].true_cannibalization_cost > 0


def test_dip_and_cannibalization_lower_the_true_profit(tmp_path: Path) -> None:
    plain = _write_market(tmp_path / "plain", dip_share=0.0, rate=0.0)
    _write_market(tmp_path / "hard", dip_share=0.4, rate=0.5)
    run = _run(budget=1e6)
    depths = pd.Series({1: 0.3, 2: 0.3, 5: 0.2})
    easy = evaluate(depths, plain, run, tmp_path / "plain")
    hard = evaluate(depths, plain, run, tmp_path / "hard")
    assert hard.dip_cost > 0 and hard.cannibalization_cost > 0
    assert hard.net_profit < easy.net_profit - hard.dip_cost + 1e-6


def test_an_over_budget_plan_is_caught(market) -> None:
    truth_dir, products = market
    run = _run(budget=20.0)
    value = evaluate(pd.Series({1: 0.3, 5: 0.3}), products, run, truth_dir)
    assert value.spend > 20.0
    assert any("over the budget" in v for v in value.violations)


def test_a_plan_below_the_margin_floor_is_caught(market) -> None:
    truth_dir, products = market
    run = _run(budget=1e6, margin_floor=0.2)
    # product 3: cost 6.5 of 8.0; at 20% off the price 6.40 is below cost
    assert evaluate(pd.Series({3: 0.2}), products, run, truth_dir).violations == [
        "1 prices below the margin floor"]
    assert evaluate(pd.Series({1: 0.2}), products, run, truth_dir).violations == []
    assert evaluate(pd.Series({1: 0.25}), products, run, truth_dir).violations[0].startswith(
        "1 discounts off the grid")


def test_what_if_swaps_in_the_truth_for_the_part_the_forecast_got_wrong(market) -> None:
    truth_dir, products = market
    categories = pd.read_csv(truth_dir / "categories_truth.csv")
    # the planner's own cap assumption, so that only the forecast's parts differ from the truth
    categories.assign(cannibalization_cap=CANNIBALIZATION_CAP).to_csv(
        truth_dir / "categories_truth.csv", index=False)
    run = _run(budget=200.0)
    curves = true_curves(truth_dir, products, run)
    exact = what_if(run, curves, products, truth_dir)
    # the true curves as the forecast: every swap of a true part keeps the oracle's plan
    ceiling = exact.pop("truth, one dip share")
    assert all(value == pytest.approx(1.0, abs=0.01) for value in exact.values())
    # one dip share for all (the products' own shares differ): at most the oracle
    assert ceiling <= 1.0 + 0.01
    # a forecast blind to the dip: only the swaps that put the true dip back recover the oracle
    blind = what_if(run, curves.assign(dip_units=0.0), products, truth_dir)
    assert blind["true units"] < 0.99
    assert blind["true dip"] == pytest.approx(1.0, abs=0.01)
    assert blind["true units and dip"] == pytest.approx(1.0, abs=0.01)
