"""Measure what a published plan week really did, once its sales are in the warehouse.

    python -m measurement.measure --dataset demo [--plan-week YYYY-MM-DD]   (DAG promo_measure)

For a published plan (dataset, plan week), from the marts and the week's current plan version
(`published.current_plans`) only:

- `published.plan_results`: per promoted line, the week's actual units against the forecast at
  the chosen discount and against the no-promotion baseline: the no-promotion forecast times
  the week's level in the line's category, measured on the products the plan left unpromoted
  (measurement/results.py);
  and the units below the no-promotion forecast in the following weeks (the dip) as far as
  they are in.
- `published.experiment_results`: treatment minus holdout among the targeted customers, per
  targeted product and over all targets (customer-product pairs): whether the customer bought
  the product in the week (two-proportion z-test) and what they spent on it (Welch t-test,
  CUPED with their spend on it in the PRE_WEEKS weeks before), each with its 95% interval,
  p-value and minimum detectable effect (measurement/experiment.py).
- `published.forecast_accuracy`: WAPE, bias and P10-P90 coverage of the week's forecast at the
  plan's levels.

The three are replaced for the week in one transaction: a week measured again (when its
following weeks arrive, or by hand) keeps one set of rows. A week whose sales are not in the
warehouse yet is refused in one sentence and nothing is published. Without a plan week every
published week of the dataset that has sales is measured (what the Asset-triggered DAG does
after each weekly ingest, so the dips fill in).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from measurement.experiment import (
    ExperimentError,
    clustered_rate_effect,
    purchase_rate_effect,
    spend_effect,
)
from measurement.results import ResultsError, control_levels, forecast_accuracy, line_results
from promoflow.settings import Settings
from promoflow.warehouse import connect
from promoflow.weeks import check_monday

log = logging.getLogger(__name__)

SCHEMA_SQL = Path(__file__).with_name("measurement_schema.sql")
#: Weeks before the plan week whose spend is the CUPED covariate.
PRE_WEEKS = 8
#: Following weeks in which the post-promotion dip is looked for.
DIP_WEEKS = 3

EFFECT_COLUMNS = ["scope", "product_id", "metric", "test", "treated_n", "control_n",
                  "treated_value", "control_value", "difference", "ci_low", "ci_high",
                  "p_value", "mde", "variance_reduction"]


class MeasureError(ResultsError):
    """A plan week cannot be measured (no plan, no sales yet, another dataset loaded)."""


# --- pure parts: frames in, frames out -------------------------------------------------------

def target_outcomes(targets: pd.DataFrame, lines: pd.DataFrame, plan_week: dt.date,
                    pre_weeks: int = PRE_WEEKS) -> pd.DataFrame:
    """Per target (product, customer, assignment): bought the product in the plan week, the
    spend on it that week and in the `pre_weeks` before. `lines`: customer_id, product_id,
    week_start, quantity, revenue of the sold (not returned) lines."""
    week = pd.Timestamp(plan_week)
    start = week - pd.Timedelta(weeks=pre_weeks)
    sold = lines[(lines["quantity"] > 0) & lines["customer_id"].notna()].copy()
    sold["week_start"] = pd.to_datetime(sold["week_start"])
    keys = ["product_id", "customer_id"]
    in_week = sold[sold["week_start"] == week].groupby(keys)["revenue"].sum().rename("spend")
    before = sold[(sold["week_start"] >= start) & (sold["week_start"] < week)]
    pre = before.groupby(keys)["revenue"].sum().rename("pre_spend")
    out = targets[[*keys, "assignment"]].astype({"product_id": "int64", "customer_id": "int64"})
    out = out.join(in_week, on=keys).join(pre, on=keys)
    out["bought"] = out["spend"].notna()
    return out.fillna({"spend": 0.0, "pre_spend": 0.0}).reset_index(drop=True)


def _effects(group: pd.DataFrame, scope: str, product_id: int | None) -> list[dict]:
    treated = group[group["assignment"] == "treatment"]
    control = group[group["assignment"] == "holdout"]
    rows = []
    for effect in (
        # over all targets one customer is a target of several products: clustered errors
        (lambda: clustered_rate_effect(group["bought"].to_numpy(),
                                       (group["assignment"] == "treatment").to_numpy(),
                                       group["customer_id"].to_numpy()))
        if scope == "overall" else
        lambda: purchase_rate_effect(int(treated["bought"].sum()), len(treated),
                                     int(control["bought"].sum()), len(control)),
        lambda: spend_effect(treated["spend"].to_numpy(), control["spend"].to_numpy(),
                             treated["pre_spend"].to_numpy(), control["pre_spend"].to_numpy()),
    ):
        try:
            rows.append({"scope": scope, "product_id": product_id, **effect().to_dict()})
        except ExperimentError as error:  # a product whose holdout is too small
            log.debug("no %s effect for %s: %s", scope, product_id, error)
    return rows


def experiment_results(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Treatment minus holdout over all targets and per targeted product (EFFECT_COLUMNS)."""
    rows = _effects(outcomes, "overall", None)
    if not rows:
        raise MeasureError("The plan's targets hold no treatment or no holdout customers; "
                           "there is no experiment to measure.")
    for product_id, group in outcomes.groupby("product_id", sort=True):
        rows += _effects(group, "product", int(product_id))
    return pd.DataFrame(rows, columns=EFFECT_COLUMNS).astype({"product_id": "Int64"})


def with_following_weeks(results: pd.DataFrame, weekly_units: pd.DataFrame,
                         plan_week: dt.date, plan_lines: pd.DataFrame) -> pd.DataFrame:
    """`results` with the units of the following weeks (up to DIP_WEEKS) that are in, and the
    dip: the no-promotion forecast (P50, before the stock cap) times those weeks minus them."""
    week = pd.Timestamp(plan_week)
    units = weekly_units.assign(week_start=pd.to_datetime(weekly_units["week_start"]))
    after = units[(units["week_start"] > week)
                  & (units["week_start"] <= week + pd.Timedelta(weeks=DIP_WEEKS))]
    weeks = after["week_start"].nunique()
    following = after.groupby("product_id")["units"].sum()
    base = plan_lines.set_index("product_id")["baseline_units_p50"]
    out = results.assign(following_weeks=weeks)
    if weeks == 0:
        return out.assign(following_units=np.nan, dip_units=np.nan)
    got = out["product_id"].map(following).fillna(0.0).astype(float)
    return out.assign(following_units=got,
                      dip_units=out["product_id"].map(base).astype(float) * weeks - got)


# --- the warehouse --------------------------------------------------------------------------

def ensure_schema(settings: Settings | None = None) -> None:
    from publish.publish import ensure_schema as ensure_published

    ensure_published(settings)
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute(SCHEMA_SQL.read_text())


def _frame(cur, query: str, args: tuple) -> pd.DataFrame:
    cur.execute(query, args)
    return pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description])


def _loaded_dataset(cur) -> str | None:
    """The landing folder of the warehouse's last load (its raw tables and marts)."""
    cur.execute("select source_dir from audit.ingest_runs where source_dir is not null "
                "order by loaded_at desc limit 1")
    row = cur.fetchone()
    return Path(row[0]).name if row else None


def _read_week(cur, dataset: str, plan_week: dt.date) -> dict:
    plans = _frame(cur, "select run_id from published.current_plans "
                        "where dataset = %s and plan_week = %s", (dataset, plan_week))
    if plans.empty:
        raise MeasureError(f"No published plan of dataset {dataset} for the week of {plan_week}; "
                           "run the weekly flow for that week first.")
    loaded = _loaded_dataset(cur)
    if loaded != dataset:
        raise MeasureError(f"The warehouse holds the data of dataset {loaded}, not {dataset}; run "
                           f"the weekly flow on {dataset} first.")
    run_id = plans["run_id"].iat[0]
    cur.execute("select max(week_start) from marts.product_week_sales where units > 0")
    (last_week,) = cur.fetchone()
    if last_week is None or last_week < plan_week:
        raise MeasureError(f"The week of {plan_week} has no sales in the warehouse yet (its "
                           f"last week with sales starts {last_week}); measure it once that "
                           "week's data are ingested.")
    week_end = plan_week + dt.timedelta(weeks=DIP_WEEKS)
    return {
        "run_id": run_id,
        "plan_lines": _frame(cur, (
            "select product_id, category, discount_depth, list_price, promo_price, unit_cost, "
            "baseline_units_p50, expected_units, contact_units, cannibalized_units, "
            "least(baseline_units_p50, "
            "greatest(on_hand_units, 0)) as baseline_units, "
            "expected_incremental_profit + dip_cost + cannibalization_cost "
            "as week_incremental_profit from published.plan_lines where run_id = %s "
            "order by product_id"), (run_id,)),
        "targets": _frame(cur, ("select product_id, customer_id, assignment from "
                                "published.plan_targets where run_id = %s order by 1, 2"),
                          (run_id,)),
        "forecasts": _frame(cur, ("select product_id, discount_depth, units_p10, units_p50, "
                                  "units_p90 from published.forecasts where run_id = %s"),
                            (run_id,)),
        "lines": _frame(cur, (
            "select customer_id, product_id, week_start, quantity, revenue from marts.order_lines "
            "where week_start >= %s and week_start <= %s and not is_return "
            "and customer_id is not null"),
            (plan_week - dt.timedelta(weeks=PRE_WEEKS), plan_week)),
        "weekly_units": _frame(cur, ("select product_id, category, week_start, units, "
                                     "is_stocked_out from "
                                     "marts.product_week_sales where week_start >= %s and "
                                     "week_start <= %s"), (plan_week, week_end)),
    }


def _floats(frame: pd.DataFrame) -> pd.DataFrame:
    """Every column but product_id and category as float (numeric arrives as Decimal)."""
    return frame.astype({c: float for c in frame.columns if c not in ("product_id", "category")})


def measure_frames(data: dict, plan_week: dt.date) -> dict[str, pd.DataFrame]:
    """The three result frames of a week from the frames `_read_week` gives."""
    lines = _floats(data["plan_lines"])
    weekly = data["weekly_units"].astype({"units": float, "is_stocked_out": bool})
    week_units = weekly[pd.to_datetime(weekly["week_start"]) == pd.Timestamp(plan_week)]
    actual = week_units.set_index("product_id")["units"]
    forecasts = _floats(data["forecasts"])
    levels = control_levels(forecasts, lines, week_units)
    results = with_following_weeks(line_results(lines, actual, levels), weekly, plan_week, lines)
    accuracy = pd.DataFrame([forecast_accuracy(forecasts, lines, actual)])
    sold = data["lines"].astype({"quantity": float, "revenue": float})
    effects = experiment_results(target_outcomes(data["targets"], sold, plan_week))
    return {"plan_results": results, "experiment_results": effects,
            "forecast_accuracy": accuracy}


def measure_week(dataset: str, plan_week: dt.date, settings: Settings | None = None) -> dict:
    """Measure one published plan week and replace its results, in one transaction."""
    ensure_schema(settings)
    return _measure_week(dataset, plan_week, settings)


def _measure_week(dataset: str, plan_week: dt.date, settings: Settings | None) -> dict:
    from publish.publish import copy_frame

    plan_week = check_monday(plan_week, "plan_week")
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select pg_advisory_xact_lock(hashtext('promoflow.measure'))")
        data = _read_week(cur, dataset, plan_week)
        frames = measure_frames(data, plan_week)
        prefix = {"run_id": data["run_id"], "dataset": dataset, "plan_week": plan_week}
        for table, frame in frames.items():
            cur.execute(f"delete from published.{table} where dataset = %s and plan_week = %s",
                        (dataset, plan_week))
            frame = frame.assign(**prefix)
            columns = [*prefix, *[c for c in frame.columns if c not in prefix]]
            copy_frame(cur, f"published.{table}", frame, columns, columns)
    summary = week_summary(frames, data["run_id"], dataset, plan_week)
    log.info("Measured the week of %s (run %s): realized incremental profit %.2f (planned "
             "%.2f), purchase-rate effect %+.4f [%+.4f, %+.4f], WAPE %.3f", plan_week,
             data["run_id"], summary["realized_incremental_profit"],
             summary["planned_incremental_profit"], summary["effect"], summary["effect_ci_low"],
             summary["effect_ci_high"], summary["wape"])
    return summary


def week_summary(frames: dict[str, pd.DataFrame], run_id: str, dataset: str,
                 plan_week: dt.date) -> dict:
    results, effects = frames["plan_results"], frames["experiment_results"]
    overall = effects[(effects["scope"] == "overall")
                      & (effects["metric"] == "purchase_rate")].iloc[0]
    accuracy = frames["forecast_accuracy"].iloc[0]
    return {
        "run_id": run_id, "dataset": dataset, "plan_week": plan_week.isoformat(),
        "lines": len(results),
        "planned_incremental_profit": float(results["planned_incremental_profit"].sum()),
        "realized_incremental_profit": float(results["realized_incremental_profit"].sum()),
        "realized_incremental_units": float(results["realized_incremental_units"].sum()),
        "promotion_cost": float(results["promotion_cost"].sum()),
        "effect": float(overall["difference"]), "effect_ci_low": float(overall["ci_low"]),
        "effect_ci_high": float(overall["ci_high"]), "effect_p_value": float(overall["p_value"]),
        "effect_mde": float(overall["mde"]),
        "wape": float(accuracy["wape"]), "bias": float(accuracy["bias"]),
        "p10_p90_coverage": float(accuracy["p10_p90_coverage"]),
    }


def measurable_weeks(dataset: str, settings: Settings | None = None) -> list[dt.date]:
    """The dataset's published plan weeks whose sales are in the warehouse (none when the
    warehouse holds another dataset)."""
    with connect(settings) as conn, conn.cursor() as cur:
        if _loaded_dataset(cur) != dataset:
            return []
        cur.execute("select max(week_start) from marts.product_week_sales where units > 0")
        (last_week,) = cur.fetchone()
        cur.execute("select plan_week from published.current_plans where dataset = %s "
                    "and plan_week <= %s order by plan_week", (dataset, last_week))
        return [row[0] for row in cur.fetchall()]


def _measured_weeks(dataset: str, settings: Settings | None = None) -> set[dt.date]:
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select distinct plan_week from published.experiment_results "
                    "where dataset = %s", (dataset,))
        return {row[0] for row in cur.fetchall()}


def measure_dataset(dataset: str, plan_week: dt.date | None = None,
                    settings: Settings | None = None) -> list[dict]:
    """The week asked for, else every published week of the dataset with sales."""
    if plan_week is not None:
        return [measure_week(dataset, plan_week, settings)]
    ensure_schema(settings)
    weeks = measurable_weeks(dataset, settings)
    if not weeks:
        log.info("No published plan week of dataset %s has sales in the warehouse yet.", dataset)
    return [_measure_week(dataset, week, settings) for week in weeks]


def measure_before_planning(run, settings: Settings | None = None) -> list[dict]:
    """The weekly flow's step before it plans: every published week of the run's dataset whose
    sales are in and that lies before the plan week is measured, so the plan counts what the
    last campaigns did (planning/contacts.py). A week that cannot be measured (no holdout, no
    promoted line) is named in a warning and skipped: it does not stop the plan. A replay
    (`as_of` set) measures only the weeks never measured: its data stops at its time, and the
    results made since with later data (the dip weeks) are kept."""
    ensure_schema(settings)
    summaries = []
    measured = _measured_weeks(run.params.dataset, settings) if run.params.as_of else set()
    for week in measurable_weeks(run.params.dataset, settings):
        if week >= run.plan_week or week in measured:
            continue
        try:
            summaries.append(_measure_week(run.params.dataset, week, settings))
        except ResultsError as error:
            log.warning("The week of %s is not measured: %s", week, error)
    log.info("Measured %d published plan weeks of dataset %s before planning %s",
             len(summaries), run.params.dataset, run.plan_week)
    return summaries


def measure_request(dataset: str, plan_week: str = "",
                    settings: Settings | None = None) -> list[dict]:
    """The DAG's and the CLI's entry: dataset and plan week ("" for every week with sales)
    checked by the run contract's rules, then measured."""
    from promoflow.run import RunParams

    params = RunParams(dataset=dataset, plan_week=plan_week or None)
    return measure_dataset(params.dataset, params.plan_week, settings)


def main(argv: list[str] | None = None) -> int:
    from promoflow.logs import setup_logging
    from promoflow.warehouse import WarehouseUnavailable

    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="demo")
    parser.add_argument("--plan-week", default="",
                        help="a Monday as YYYY-MM-DD; default: every published week with sales")
    args = parser.parse_args(argv)
    try:
        summaries = measure_request(args.dataset, args.plan_week)
    except (ResultsError, ValueError, WarehouseUnavailable) as error:
        print(f"measure: {error}", file=sys.stderr)
        return 2
    for s in summaries:
        print(f"{s['plan_week']}: realized incremental profit {s['realized_incremental_profit']:,.2f}"
              f" (planned {s['planned_incremental_profit']:,.2f}); purchase-rate effect "
              f"{s['effect']:+.4f} [{s['effect_ci_low']:+.4f}, {s['effect_ci_high']:+.4f}], "
              f"p {s['effect_p_value']:.3g}; WAPE {s['wape']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
