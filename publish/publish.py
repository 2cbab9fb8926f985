"""Write one run's plan to the `published` schema in a single transaction.

A rerun of the same plan week replaces that week's plan (its rows are deleted and the new ones
inserted in the same transaction), so BI readers see either the old plan or the new one, never
a mix, and never duplicates.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pandas as pd

from promoflow.settings import Settings
from promoflow.warehouse import connect

log = logging.getLogger(__name__)

SCHEMA_SQL = Path(__file__).with_name("published_schema.sql")

PLAN_LINE_COLUMNS = [
    "run_id", "plan_week", "product_id", "product_name", "category", "list_price", "unit_cost",
    "discount_depth", "promo_price", "on_hand_units", "baseline_units_p50", "units_p10",
    "units_p50", "units_p90", "expected_units", "promotion_cost", "incremental_revenue",
    "incremental_profit", "binding_constraint",
]
TARGET_COLUMNS = ["run_id", "plan_week", "product_id", "customer_id", "score", "rank",
                  "assignment", "channel"]
FORECAST_COLUMNS = ["run_id", "plan_week", "product_id", "discount_depth", "units_p10",
                    "units_p50", "units_p90"]
METRIC_COLUMNS = ["run_id", "model", "metric", "model_value", "baseline", "baseline_value"]


def ensure_schema(settings: Settings | None = None) -> None:
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute(SCHEMA_SQL.read_text())


def _copy(cur, table: str, frame: pd.DataFrame, columns: list[str], target_columns: list[str]) -> None:
    buffer = io.StringIO()
    frame[columns].to_csv(buffer, index=False, header=False, na_rep="\\N")
    buffer.seek(0)
    cur.copy_expert(
        f"copy {table} ({', '.join(target_columns)}) from stdin with (format csv, null '\\N')", buffer
    )


def publish_plan(plan: dict, plan_lines: pd.DataFrame, targets: pd.DataFrame,
                 forecasts: pd.DataFrame, metrics: pd.DataFrame,
                 settings: Settings | None = None) -> None:
    """Replace the plan of `plan['plan_week']` with this run's rows, all or nothing."""
    ensure_schema(settings)
    run_id, plan_week = plan["run_id"], plan["plan_week"]
    frames = {"plan_lines": plan_lines, "plan_targets": targets, "forecasts": forecasts,
              "model_metrics": metrics}
    for name, frame in frames.items():
        frame["run_id"] = run_id
        if name != "model_metrics":
            frame["plan_week"] = plan_week
    columns = list(plan)
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("lock table published.plans in share row exclusive mode")
        cur.execute("delete from published.plans where plan_week = %s or run_id = %s",
                    (plan_week, run_id))
        cur.execute(
            f"insert into published.plans ({', '.join(columns)}) values ({', '.join(['%s'] * len(columns))})",
            [plan[c] for c in columns],
        )
        line_targets = [c.replace("incremental_", "expected_incremental_") for c in PLAN_LINE_COLUMNS]
        _copy(cur, "published.plan_lines", plan_lines, PLAN_LINE_COLUMNS, line_targets)
        _copy(cur, "published.plan_targets", targets, TARGET_COLUMNS, TARGET_COLUMNS)
        _copy(cur, "published.forecasts", forecasts, FORECAST_COLUMNS, FORECAST_COLUMNS)
        _copy(cur, "published.model_metrics", metrics, METRIC_COLUMNS, METRIC_COLUMNS)
    log.info("Published plan %s for week %s: %d lines, %d targets, %d forecasts",
             run_id, plan_week, len(plan_lines), len(targets), len(forecasts))


def metrics_frame(run_dir: Path) -> pd.DataFrame:
    """Model metrics against their baselines, from the training runs' JSON files."""
    import json

    rows = []
    for model, baseline in (("forecaster", "seasonal_naive"), ("recommender", "popularity")):
        path = run_dir / f"{model}_metrics.json"
        if not path.exists():
            continue
        metrics = json.loads(path.read_text())
        for metric, value in metrics.get("model", {}).items():
            rows.append({"model": model, "metric": metric, "model_value": value,
                         "baseline": baseline,
                         "baseline_value": metrics.get("baseline", {}).get(metric)})
    return pd.DataFrame(rows, columns=["model", "metric", "model_value", "baseline", "baseline_value"])


def publish_run(run_dir: Path, settings: Settings | None = None) -> dict:
    """Publish the plan files that planning wrote into `run_dir`."""
    import json

    plan = json.loads((run_dir / "plan.json").read_text())
    publish_plan(
        plan,
        plan_lines=pd.read_parquet(run_dir / "plan_lines.parquet"),
        targets=pd.read_parquet(run_dir / "plan_targets.parquet"),
        forecasts=pd.read_parquet(run_dir / "forecasts.parquet"),
        metrics=metrics_frame(run_dir),
        settings=settings,
    )
    return plan
