"""Two published runs of the dataset "report_unit" (no other test publishes it) for the report
and BI tests: one whose plan week
has measured results (rows written as the measurement flow writes them) and a later one that
has none yet."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from local.roles import ensure_roles
from measurement.measure import ensure_schema as ensure_measurement_schema
from promoflow.warehouse import connect
from publish.publish import publish_plan
from tests.publish.plans import small_plan

DATASET = "report_unit"
MEASURED_RUN, MEASURED_WEEK = "report_measured", date(2026, 11, 30)
PLAIN_RUN, PLAIN_WEEK = "report_plain", date(2026, 12, 7)


def backtest() -> pd.DataFrame:
    weeks = ["2026-10-19", "2026-10-26", "2026-11-02", "overall"]
    rows = [{"week_start": week, "model": model, "rows": 12, "wape": wape + 0.01 * i,
             "bias": bias, "mase": 0.8, "quantile_loss": 0.1, "p10_p90_coverage": 0.8}
            for i, week in enumerate(weeks)
            for model, wape, bias in (("model", 0.3, -0.05), ("seasonal_naive", 0.5, 0.1))]
    return pd.DataFrame(rows)


def measured_rows(lines: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Results of the measured week: each line sold its forecast plus one unit per product id
    modulo 3; the treated bought 4 points more often than the holdout."""
    actual = lines["units_p50"] + lines["product_id"] % 3
    results = pd.DataFrame({
        "product_id": lines["product_id"], "discount_depth": lines["discount_depth"],
        "forecast_units": lines["units_p50"], "baseline_units": lines["baseline_units_p50"],
        "actual_units": actual, "forecast_error_units": lines["units_p50"] - actual,
        "realized_incremental_units": actual - lines["baseline_units_p50"],
        "realized_incremental_revenue": 10.0 * (actual - lines["baseline_units_p50"]),
        "realized_incremental_profit": lines["incremental_profit"] + 1.5,
        "planned_incremental_profit": lines["incremental_profit"],
        "promotion_cost": lines["promotion_cost"],
        "roi": (lines["incremental_profit"] + 1.5) / lines["promotion_cost"],
        "following_weeks": 0})
    effect = {"metric": "purchase_rate", "test": "two-proportion z", "treated_n": 80,
              "control_n": 20, "treated_value": 0.14, "control_value": 0.10,
              "difference": 0.04, "ci_low": -0.01, "ci_high": 0.09, "p_value": 0.12,
              "mde": 0.07, "variance_reduction": 0.0}
    effects = pd.DataFrame([{"scope": "overall", "product_id": None, **effect}]
                           + [{"scope": "product", "product_id": int(p), **effect}
                              for p in lines["product_id"]])
    accuracy = pd.DataFrame([{"products": 12, "actual_units": float(actual.sum()),
                              "forecast_units": float(lines["units_p50"].sum()), "wape": 0.21,
                              "bias": -0.04, "p10_p90_coverage": 0.75}])
    return {"plan_results": results, "experiment_results": effects,
            "forecast_accuracy": accuracy}


def _insert(cur, table: str, frame: pd.DataFrame, prefix: dict) -> None:
    frame = frame.assign(**prefix)
    columns = list(frame.columns)
    for row in frame.itertuples(index=False):
        values = [None if pd.isna(v) else (v.item() if hasattr(v, "item") else v) for v in row]
        cur.execute(f"insert into published.{table} ({', '.join(columns)}) values "
                    f"({', '.join(['%s'] * len(columns))})", values)


@pytest.fixture(scope="module")
def published(settings, roles):
    """(measured plan, its lines, plain plan): both published, the first one measured."""
    plan, lines, targets, forecasts, metrics = small_plan(MEASURED_RUN, MEASURED_WEEK)
    plan["dataset"] = DATASET
    publish_plan(plan, lines, targets, forecasts, metrics, settings, backtest=backtest())
    ensure_measurement_schema(settings)
    with connect(settings) as conn, conn.cursor() as cur:
        for table, frame in measured_rows(lines).items():
            cur.execute(f"delete from published.{table} where dataset = %s and plan_week = %s",
                        (plan["dataset"], MEASURED_WEEK))
            _insert(cur, table, frame, {"run_id": MEASURED_RUN, "dataset": plan["dataset"],
                                        "plan_week": MEASURED_WEEK})
    plain = small_plan(PLAIN_RUN, PLAIN_WEEK)
    plain[0]["dataset"] = DATASET
    publish_plan(*plain, settings, backtest=backtest())
    ensure_roles(settings)  # the measurement tables readable by the BI role
    return plan, lines, plain[0]
