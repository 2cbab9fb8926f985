"""The planning step of a run: forecasts + recommendations + marts -> plan files in the run folder."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from planning.optimize import plan_discounts
from planning.params import PlanParams
from planning.targeting import target_customers
from promoflow.settings import Settings
from promoflow.warehouse import engine

log = logging.getLogger(__name__)


def load_products(settings: Settings | None = None) -> pd.DataFrame:
    return pd.read_sql(
        "select product_id, product_name, category, list_price, unit_cost, on_hand_units "
        "from marts.products", engine(settings))


def load_customers(settings: Settings | None = None) -> pd.DataFrame:
    return pd.read_sql("select customer_id, preferred_channel from marts.customers", engine(settings))


def make_plan(run_dir: Path, run_id: str, dataset: str, params: PlanParams,
              settings: Settings | None = None) -> dict:
    """Optimize discounts, target customers, write plan.json, plan_lines and plan_targets."""
    forecasts = pd.read_parquet(run_dir / "forecasts.parquet")
    recommendations = pd.read_parquet(run_dir / "recommendations.parquet")
    products = load_products(settings)
    chosen = plan_discounts(forecasts, products, params)
    chosen = chosen.merge(products[["product_id", "product_name"]], on="product_id", how="left")
    lines = chosen[chosen["discount_depth"] > 0].sort_values("product_id").reset_index(drop=True)
    targets = target_customers(lines, recommendations, load_customers(settings), params.plan_week,
                               params.audience_size, params.holdout_fraction, params.seed)
    plan = {
        "run_id": run_id,
        "plan_week": params.plan_week.isoformat(),
        "dataset": dataset,
        "budget": params.budget,
        "max_discount": params.max_discount,
        "margin_floor": params.margin_floor,
        "max_promos_per_category": params.max_promos_per_category,
        "audience_size": params.audience_size,
        "holdout_fraction": params.holdout_fraction,
        "products_considered": int(chosen["product_id"].nunique()),
        "products_promoted": len(lines),
        "promotion_cost": round(float(lines["promotion_cost"].sum()), 2),
        "expected_incremental_revenue": round(float(lines["incremental_revenue"].sum()), 2),
        "expected_incremental_profit": round(float(lines["incremental_profit"].sum()), 2),
        "solver_status": chosen.attrs.get("solver_status", "unknown"),
    }
    lines.to_parquet(run_dir / "plan_lines.parquet", index=False)
    targets.to_parquet(run_dir / "plan_targets.parquet", index=False)
    (run_dir / "plan.json").write_text(json.dumps(plan, indent=2))
    log.info("Plan for %s: %d products promoted, cost %.2f of budget %.2f, expected incremental "
             "profit %.2f, %d customers targeted", plan["plan_week"], plan["products_promoted"],
             plan["promotion_cost"], params.budget, plan["expected_incremental_profit"], len(targets))
    return plan


def plan_run(run: dict, settings: Settings | None = None) -> dict:
    """The DAG's planning task: a run dict (see promoflow.runs) in, the plan summary out."""
    return make_plan(Path(run["run_dir"]), run["run_id"], run["dataset"],
                     PlanParams.from_run(run), settings)
