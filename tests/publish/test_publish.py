"""Publishing into the real warehouse: one plan per week, replaced atomically on rerun."""

from datetime import date

import pandas as pd
import pytest

from planning.optimize import plan_discounts
from planning.params import PlanParams
from planning.targeting import target_customers
from promoflow.warehouse import connect
from publish.publish import publish_plan
from tests.planning.test_optimize import _market


def _plan(run_id: str, week: date):
    products, forecasts = _market()
    forecasts["week_start"] = week
    params = PlanParams(plan_week=week, budget=300.0)
    chosen = plan_discounts(forecasts, products, params)
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
            "max_discount": 0.3, "margin_floor": 0.05, "max_promos_per_category": 5,
            "audience_size": 10, "holdout_fraction": 0.2,
            "products_considered": int(chosen["product_id"].nunique()),
            "products_promoted": len(lines), "promotion_cost": float(lines["promotion_cost"].sum()),
            "expected_incremental_revenue": float(lines["incremental_revenue"].sum()),
            "expected_incremental_profit": float(lines["incremental_profit"].sum()),
            "solver_status": "Optimal"}
    return plan, lines, targets, forecasts, metrics


def _snapshot(settings, week: date) -> dict[str, list]:
    out = {}
    with connect(settings) as conn, conn.cursor() as cur:
        for table, key in (("plan_lines", "product_id"), ("plan_targets", "product_id, customer_id"),
                           ("forecasts", "product_id, discount_depth")):
            cur.execute(f"select * from published.{table} where plan_week = %s order by {key}", (week,))
            out[table] = [row[1:] for row in cur.fetchall()]  # without run_id
        cur.execute("select count(*) from published.plans where plan_week = %s", (week,))
        out["plans"] = cur.fetchone()
    return out


@pytest.mark.integration
def test_rerun_of_a_week_replaces_it_without_duplicates(settings):
    week = date(2026, 11, 16)
    publish_plan(*_plan("run-a", week), settings=settings)
    first = _snapshot(settings, week)
    publish_plan(*_plan("run-b", week), settings=settings)
    second = _snapshot(settings, week)
    assert first == second
    assert second["plans"] == (1,)
    assert len(second["plan_lines"]) > 0
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select run_id from published.current_plan")
        assert cur.fetchall() == [("run-b",)]
        cur.execute("select count(*) from published.plan_lines where run_id = 'run-a'")
        assert cur.fetchone() == (0,)


@pytest.mark.integration
def test_a_failing_publish_leaves_the_previous_plan(settings):
    week = date(2026, 11, 23)
    publish_plan(*_plan("run-c", week), settings=settings)
    before = _snapshot(settings, week)
    plan, lines, targets, forecasts, metrics = _plan("run-d", week)
    targets.loc[0, "assignment"] = "neither"  # violates a check constraint mid-transaction
    with pytest.raises(Exception, match="assignment"):
        publish_plan(plan, lines, targets, forecasts, metrics, settings=settings)
    assert _snapshot(settings, week) == before
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select run_id from published.plans where plan_week = %s", (week,))
        assert cur.fetchall() == [("run-c",)]
