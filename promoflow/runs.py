"""A run of the weekly flow: its id, folder, validated parameters and plan week.

Tasks pass this small dict between each other (paths and ids, never data frames).
"""

from __future__ import annotations

import logging
import re
from datetime import date, timedelta

from promoflow.settings import Settings, get_settings
from promoflow.warehouse import connect

log = logging.getLogger(__name__)


class RunConfigError(ValueError):
    """A run parameter or input location is wrong."""


def run_id_from(airflow_run_id: str) -> str:
    """A filesystem- and SQL-friendly id derived from the orchestrator's run id."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", airflow_run_id).strip("_")[:120]


def prepare_run(params: dict, airflow_run_id: str, settings: Settings | None = None) -> dict:
    """Check the parameters and the landing folder before any work starts."""
    s = settings or get_settings()
    source_dir = s.landing_dir / params["dataset"]
    if not source_dir.is_dir():
        raise RunConfigError(
            f"Landing folder {source_dir} does not exist; generate or import the dataset "
            f"'{params['dataset']}' first (see README) or pick another dataset."
        )
    plan_week = params.get("plan_week") or ""
    if plan_week:
        try:
            parsed = date.fromisoformat(plan_week)
        except ValueError:
            raise RunConfigError(f"plan_week '{plan_week}' is not a date; use YYYY-MM-DD.") from None
        if parsed.weekday() != 0:
            raise RunConfigError(f"plan_week {plan_week} is not a Monday; give the Monday that starts the week.")
    run_id = run_id_from(airflow_run_id)
    run = {
        "run_id": run_id,
        "run_dir": str(s.run_dir(run_id)),
        "source_dir": str(source_dir),
        "dataset": params["dataset"],
        "plan_week": plan_week,
        "budget": float(params["budget"]),
        "max_discount": float(params["max_discount"]),
        "margin_floor": float(params["margin_floor"]),
        "max_promos_per_category": int(params["max_promos_per_category"]),
        "audience_size": int(params["audience_size"]),
        "holdout_fraction": float(params["holdout_fraction"]),
        "epochs": int(params.get("epochs") or 0),
        "seed": int(params["seed"]),
    }
    log.info("Run %s on dataset %s prepared in %s", run_id, run["dataset"], run["run_dir"])
    return run


def resolve_plan_week(run: dict, settings: Settings | None = None) -> dict:
    """The requested plan week, or the week after the last week of sales in the marts."""
    if run["plan_week"]:
        return run
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select max(week_start) from marts.product_week_sales")
        (last_week,) = cur.fetchone()
    if last_week is None:
        raise RunConfigError("marts.product_week_sales is empty: the landing files hold no sales.")
    resolved = dict(run, plan_week=(last_week + timedelta(days=7)).isoformat())
    log.info("Plan week resolved to %s (the week after the data)", resolved["plan_week"])
    return resolved
