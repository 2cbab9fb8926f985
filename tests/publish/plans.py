"""Hand-made plans for the publish tests: a small solved one and a large one (many targets)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from planning.optimize import plan_discounts
from planning.targeting import target_customers
from promoflow.run import RunParams
from tests.planning.test_optimize import _market


def small_plan(run_id: str, week: date):
    """(plan, lines, targets, forecasts, metrics) of a 12-product market solved by the MIP."""
    products, forecasts = _market()
    forecasts["week_start"] = week
    params = RunParams(plan_week=week, budget=300.0)
    solution = plan_discounts(forecasts, products, params)
    chosen = solution.chosen
    chosen = chosen.merge(products[["product_id", "product_name"]], on="product_id")
    lines = chosen[chosen["discount_depth"] > 0].reset_index(drop=True)
    recs = pd.DataFrame([(p, c, 1.0 / r, r) for p in products["product_id"]
                         for r, c in enumerate(range(1000, 1040), start=1)],
                        columns=["product_id", "customer_id", "score", "rank"])
    customers = pd.DataFrame({"customer_id": range(1000, 1040), "preferred_channel": "email"})
    targets = target_customers(lines, recs, customers, week, 10, 0.2, 42)
    metrics = pd.DataFrame([{"model": "forecaster", "metric": "wape", "model_value": 0.3,
                             "baseline": "seasonal_naive", "baseline_value": 0.4}])
    plan = {"run_id": run_id, "plan_week": week.isoformat(), "dataset": "unit", "budget": 300.0,
            "max_discount": 0.3, "discount_step": 0.1, "margin_floor": 0.05,
            "max_promos_per_category": 5, "audience_size": 10, "holdout_fraction": 0.2, "seed": 42,
            "products_considered": int(chosen["product_id"].nunique()),
            "products_promoted": len(lines), "promotion_cost": float(lines["promotion_cost"].sum()),
            "expected_incremental_revenue": float(lines["incremental_revenue"].sum()),
            "expected_incremental_profit": float(lines["incremental_profit"].sum()),
            "solver_status": solution.status, "mip_gap": solution.mip_gap}
    return plan, lines, targets, forecasts, metrics


def big_plan(run_id: str, week: date, n_targets: int):
    """The small plan with about `n_targets` targets spread over its promoted products."""
    plan, lines, _, forecasts, metrics = small_plan(run_id, week)
    per_product = -(-n_targets // len(lines))
    customers = np.arange(100_000, 100_000 + per_product)
    targets = pd.DataFrame({
        "product_id": np.repeat(lines["product_id"].to_numpy(), per_product),
        "customer_id": np.tile(customers, len(lines)),
        "rank": np.tile(np.arange(1, per_product + 1), len(lines)),
    })
    targets["score"] = 1.0 / targets["rank"]
    targets["assignment"] = np.where(targets["customer_id"] % 10 == 0, "holdout", "treatment")
    targets["channel"] = "email"
    plan = dict(plan, audience_size=per_product)
    return plan, lines, targets, forecasts, metrics


def publish_big(run_id: str, week: str, n_targets: int) -> None:
    """Entry point of the publish subprocess in the kill test (settings from the environment)."""
    from publish.publish import publish_plan

    publish_plan(*big_plan(run_id, date.fromisoformat(week), n_targets))
