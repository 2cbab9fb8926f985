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


DATASET_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+$")


def validate_params(params: dict, settings: Settings | None = None) -> dict:
    """The run parameters checked and typed, or a one-line RunConfigError saying what to fix.

    Runs before any work: the Airflow task prepare_run and the local runner call it.
    """
    from planning.params import BOUNDS, PlanParamError, PlanParams, check_value

    s = settings or get_settings()
    unknown = sorted(set(params) - set(BOUNDS) - {"dataset", "plan_week", "epochs"})
    if unknown:
        raise RunConfigError(f"Unknown parameter(s) {', '.join(unknown)}; see the DAG's form.")
    dataset = str(params.get("dataset") or "")
    if not DATASET_PATTERN.match(dataset) or dataset in (".", ".."):
        raise RunConfigError(
            f"dataset {dataset!r} is not a folder name (letters, digits, _ . - only)."
        )
    source_dir = s.landing_dir / dataset
    if not source_dir.is_dir():
        raise RunConfigError(
            f"Landing folder {source_dir} does not exist; create it first (make data "
            f"PRESET=tiny|demo|completejourney, see README) or pick another dataset."
        )
    plan_week = str(params.get("plan_week") or "")
    monday = date(2000, 1, 3)
    if plan_week:
        try:
            monday = date.fromisoformat(plan_week)
        except ValueError:
            raise RunConfigError(f"plan_week {plan_week!r} is not a date; use YYYY-MM-DD.") from None
    try:
        values = {name: check_value(name, params[name]) for name in BOUNDS if name in params}
        PlanParams(plan_week=monday, **values)
        epochs = int(params.get("epochs") or 0)
    except (PlanParamError, ValueError, TypeError) as error:
        raise RunConfigError(str(error)) from None
    if not 0 <= epochs <= 1000:
        raise RunConfigError(f"epochs {epochs} is outside [0, 1000]; 0 keeps each model's default.")
    return {"dataset": dataset, "source_dir": str(source_dir), "plan_week": plan_week,
            **values, "epochs": epochs}


def prepare_run(params: dict, airflow_run_id: str, settings: Settings | None = None) -> dict:
    """Check the parameters and the landing folder before any work starts."""
    from planning.params import PlanParams

    s = settings or get_settings()
    checked = validate_params(params, s)
    defaults = PlanParams(plan_week=date(2000, 1, 3))
    run_id = run_id_from(airflow_run_id)
    run = {
        "run_id": run_id,
        "run_dir": str(s.run_dir(run_id)),
        "source_dir": checked["source_dir"],
        "dataset": checked["dataset"],
        "plan_week": checked["plan_week"],
        "budget": checked.get("budget", defaults.budget),
        "max_discount": checked.get("max_discount", defaults.max_discount),
        "margin_floor": checked.get("margin_floor", defaults.margin_floor),
        "max_promos_per_category": checked.get("max_promos_per_category",
                                               defaults.max_promos_per_category),
        "audience_size": checked.get("audience_size", defaults.audience_size),
        "holdout_fraction": checked.get("holdout_fraction", defaults.holdout_fraction),
        "epochs": checked["epochs"],
        "seed": checked.get("seed", defaults.seed),
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
