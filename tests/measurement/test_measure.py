"""The week's measurement on frames: outcomes per target by hand, the effect rows, and the
95% interval's calibration against the synthetic market's true contact effect."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from measurement.measure import (
    MeasureError,
    experiment_results,
    target_outcomes,
    with_following_weeks,
)
from sources.synthetic.generate import generate
from sources.synthetic.simulate import simulate_week

WEEK = dt.date(2026, 11, 16)


def test_target_outcomes_by_hand():
    targets = pd.DataFrame({"product_id": [1, 1, 2], "customer_id": [10, 11, 10],
                            "assignment": ["treatment", "holdout", "treatment"]})
    lines = pd.DataFrame({
        "customer_id": [10, 10, 10, 11, 11, 12],
        "product_id": [1, 1, 1, 1, 2, 1],
        "week_start": ["2026-11-16", "2026-11-16", "2026-11-09", "2026-09-14", "2026-11-16",
                       "2026-11-16"],
        "quantity": [1, 2, 1, 1, 1, 1],
        "revenue": [5.0, 10.0, 6.0, 7.0, 3.0, 5.0],
    })
    out = target_outcomes(targets, lines, WEEK, pre_weeks=8).set_index(["product_id", "customer_id"])
    assert out.loc[(1, 10)].tolist() == ["treatment", 15.0, 6.0, True]
    # customer 11 bought product 1 nine weeks before (outside the pre-period) and product 2 only
    assert out.loc[(1, 11)].tolist() == ["holdout", 0.0, 0.0, False]
    assert out.loc[(2, 10)].tolist() == ["treatment", 0.0, 0.0, False]


def test_experiment_rows_overall_and_per_product():
    rng = np.random.default_rng(3)
    n = 400
    outcomes = pd.DataFrame({
        "product_id": np.repeat([1, 2], n // 2),
        "customer_id": np.arange(n),
        "assignment": np.where(rng.random(n) < 0.3, "holdout", "treatment"),
    })
    outcomes["bought"] = rng.random(n) < np.where(outcomes["assignment"] == "treatment", 0.3, 0.1)
    outcomes["pre_spend"] = rng.gamma(2.0, 5.0, n)
    outcomes["spend"] = outcomes["bought"] * 8.0 + 0.5 * outcomes["pre_spend"]
    rows = experiment_results(outcomes)
    assert list(zip(rows["scope"], rows["product_id"].astype(object).where(rows["product_id"].notna(), None),
                    rows["metric"])) == [
        ("overall", None, "purchase_rate"), ("overall", None, "spend_per_customer"),
        ("product", 1, "purchase_rate"), ("product", 1, "spend_per_customer"),
        ("product", 2, "purchase_rate"), ("product", 2, "spend_per_customer")]
    overall = rows.iloc[0]
    treated = outcomes[outcomes["assignment"] == "treatment"]
    held = outcomes[outcomes["assignment"] == "holdout"]
    assert overall["difference"] == pytest.approx(treated["bought"].mean() - held["bought"].mean())
    assert overall["ci_low"] < overall["difference"] < overall["ci_high"]
    # the pre-period spend explains part of the spend: CUPED removes that variance
    assert rows.iloc[1]["variance_reduction"] > 0.2


def test_no_holdout_is_no_experiment():
    outcomes = pd.DataFrame({"product_id": [1, 1], "customer_id": [1, 2],
                             "assignment": ["treatment", "treatment"], "bought": [True, False],
                             "spend": [1.0, 0.0], "pre_spend": [0.0, 0.0]})
    with pytest.raises(MeasureError, match="no treatment or no holdout"):
        experiment_results(outcomes)


def test_dip_of_the_following_weeks():
    results = pd.DataFrame({"product_id": [1, 2]})
    lines = pd.DataFrame({"product_id": [1, 2], "baseline_units_p50": [10.0, 4.0]})
    none_yet = with_following_weeks(results, pd.DataFrame(
        {"product_id": [1], "week_start": [WEEK], "units": [30.0]}), WEEK, lines)
    assert none_yet["following_weeks"].tolist() == [0, 0]
    assert none_yet["dip_units"].isna().all()
    weekly = pd.DataFrame({"product_id": [1, 1, 2, 1],
                           "week_start": [WEEK + dt.timedelta(weeks=k) for k in (0, 1, 1, 2)],
                           "units": [30.0, 6.0, 4.0, 8.0]})
    out = with_following_weeks(results, weekly, WEEK, lines)
    assert out["following_weeks"].tolist() == [2, 2]
    assert out["dip_units"].tolist() == [10 * 2 - 14.0, 4 * 2 - 4.0]


def _landing_lines(landing: Path) -> pd.DataFrame:
    orders = pd.read_csv(landing / "orders.csv", parse_dates=["ordered_at"])
    lines = pd.read_csv(landing / "order_lines.csv").merge(orders, on="order_id")
    day = lines["ordered_at"].dt.normalize()
    return pd.DataFrame({"customer_id": lines["customer_id"], "product_id": lines["product_id"],
                         "week_start": day - pd.to_timedelta(day.dt.weekday, unit="D"),
                         "quantity": lines["quantity"],
                         "revenue": lines["quantity"] * lines["unit_paid_price"]})


def _week_of_seed(base: Path, seed: int) -> tuple[float, pd.Series]:
    """(true contact effect, overall purchase-rate effect row) of one simulated tiny week: 12
    products promoted, 150 targets each, 20% of the customers held out."""
    landing, truth_dir = base / f"landing_{seed}", base / f"truth_{seed}"
    generate("tiny", landing, truth_dir, seed=seed)
    rng = np.random.default_rng(seed)
    products = pd.read_csv(landing / "products.csv")["product_id"].to_numpy()
    customers = pd.read_csv(landing / "customers.csv")["customer_id"].to_numpy()
    promoted = rng.choice(products, 12, replace=False)
    plan = pd.DataFrame({"product_id": promoted, "discount_depth": rng.choice([0.1, 0.2, 0.3], 12)})
    held = dict(zip(customers, rng.random(len(customers)) < 0.2))
    targets = pd.DataFrame([(p, c, "holdout" if held[c] else "treatment") for p in promoted
                            for c in rng.choice(customers, 150, replace=False)],
                           columns=["product_id", "customer_id", "assignment"])
    summary = simulate_week(landing, truth_dir, WEEK, plan, targets, seed=seed)
    rows = experiment_results(target_outcomes(targets, _landing_lines(landing), WEEK))
    return summary["true_contact_effect"], rows.iloc[0]


def test_interval_covers_the_true_contact_effect_across_seeds(tmp_path):
    covered = []
    for seed in range(10):
        true_effect, overall = _week_of_seed(tmp_path, seed)
        assert overall["metric"] == "purchase_rate" and overall["scope"] == "overall"
        covered.append(overall["ci_low"] <= true_effect <= overall["ci_high"])
    assert 0.85 <= np.mean(covered) <= 1.0, covered
