"""Write one run's plan to the `published` schema, all or nothing (write-audit-publish).

1. Write: under a publish lock (a session advisory lock, so one publish at a time), the staging
   tables `published_staging.*` are emptied (a killed run may have left rows) and the run's rows
   are copied into them; this transaction commits.
2. Audit: SQL checks on the staged rows (see AUDITS): row counts match the frames, no duplicate
   keys, discounts within the run's max discount, promotion cost within budget (with the
   personal offers' spend too), margin floor respected (by the offers' prices too, which sit on
   promoted lines), no customer both treatment and holdout for a product, targets only for promoted
   products, every segmented customer in a profiled segment whose size matches, known lifecycle
   stages. A failure raises PublishAuditError naming the check, empties staging and leaves
   `published` untouched.
3. Publish: in ONE transaction with the audit (`published.plans` locked against other writers),
   the staged rows are inserted, in key order, as a new plan version (version = run id), and
   `published.current_plans` points the run's (dataset, plan week) at it; staging is emptied in
   the same transaction. Earlier versions of the week keep their rows. A republish of the same
   run id (a task retry) replaces that run's rows only.

The run's customer segments (`segment_profiles`, `customer_segments`) are published with its
plan; a run folder written before segmentation existed publishes none for its week.

BI readers (views `published.current_plan*` and `current_*segment*`: per dataset, the current
version of its latest plan week; `published.current_plans_by_week`, `published.plan_versions`)
see the old version or the new one, never a mix, and never duplicates; a publish killed at any
point leaves the last good plan current. Every published value comes from the run's inputs
except `published.plans.published_at`, the time the plan became visible (the publishing
transaction's start): a rerun with the same inputs gives identical rows apart from that column
(and `run_id`, when the rerun has a new one).
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pandas as pd

from promoflow.run import Run, RunFolder
from promoflow.settings import Settings
from promoflow.warehouse import connect

log = logging.getLogger(__name__)

SCHEMA_SQL = Path(__file__).with_name("published_schema.sql")
STAGING = "published_staging"

PLAN_COLUMNS = [
    "run_id", "plan_week", "dataset", "budget", "max_discount", "discount_step", "margin_floor",
    "max_promos_per_category", "audience_size", "holdout_fraction", "seed",
    "products_considered", "products_promoted", "promotion_cost", "expected_incremental_revenue",
    "expected_incremental_profit", "solver_status", "mip_gap", "spend_at_confidence",
    "budget_confidence", "expected_dip_cost", "expected_cannibalization_cost",
    "contact_effect", "contact_effect_weeks", "expected_contact_units",
    "uplift_learned", "uplift_rows", "uplift_weeks", "uplift_average",
    "max_offers_per_customer", "offers", "offer_recipients", "offer_cost", "expected_offer_profit",
    "as_of",
]
PLAN_LINE_COLUMNS = [
    "run_id", "plan_week", "product_id", "product_name", "category", "list_price", "unit_cost",
    "discount_depth", "promo_price", "on_hand_units", "baseline_units_p50", "units_p10",
    "units_p50", "units_p90", "expected_units", "promotion_cost", "incremental_revenue",
    "incremental_profit", "binding_constraint", "promotion_cost_p90", "dip_units", "dip_cost",
    "cannibalized_units", "cannibalization_cost", "contact_units",
]
#: Line columns added since the first release: a run folder written before them publishes 0.
LATER_LINE_COLUMNS = ["promotion_cost_p90", "dip_units", "dip_cost", "cannibalized_units",
                      "cannibalization_cost", "contact_units"]
TARGET_COLUMNS = ["run_id", "plan_week", "product_id", "customer_id", "score", "rank",
                  "assignment", "channel", "uplift", "offer_depth"]
FORECAST_COLUMNS = ["run_id", "plan_week", "product_id", "discount_depth", "units_p10",
                    "units_p50", "units_p90"]
METRIC_COLUMNS = ["run_id", "model", "metric", "model_value", "baseline", "baseline_value"]
BACKTEST_COLUMNS = ["run_id", "plan_week", "week_start", "model", "rows", "wape", "bias", "mase",
                    "quantile_loss", "p10_p90_coverage"]
SEGMENT_PROFILE_COLUMNS = [
    "run_id", "plan_week", "segment_id", "segment_name", "customers", "share",
    "avg_monetary_value_52w", "avg_frequency_orders_52w", "avg_basket_units", "promo_share",
    "promo_depth", "avg_price_index", "price_tier", "web_share", "app_share", "store_share",
    "top_categories", "new_share", "active_share", "lapsing_share", "churned_share", "centroid",
    "centroid_features",
]
OFFER_COLUMNS = ["run_id", "plan_week", "product_id", "segment_id", "segment_name",
                 "discount_depth", "offer_depth", "offer_price", "recipients",
                 "expected_redemptions", "expected_incremental_units", "offer_spend",
                 "offer_spend_sd", "offer_gain"]
OFFER_TABLE_COLUMNS = OFFER_COLUMNS[:-3] + ["expected_spend", "expected_spend_sd",
                                            "expected_incremental_profit"]
#: what BI reads of a customer: an id, the segment and the lifecycle stage, nothing personal
CUSTOMER_SEGMENT_COLUMNS = ["run_id", "plan_week", "customer_id", "segment_id", "lifecycle"]
#: list columns of the segment profiles, copied as PostgreSQL arrays
ARRAY_COLUMNS = ["centroid", "centroid_features"]

# table -> (frame columns, table columns, primary key)
TABLES = {
    "plan_lines": (PLAN_LINE_COLUMNS,
                   [c.replace("incremental_", "expected_incremental_") for c in PLAN_LINE_COLUMNS],
                   "product_id"),
    "plan_targets": (TARGET_COLUMNS, TARGET_COLUMNS, "product_id, customer_id"),
    "plan_offers": (OFFER_COLUMNS, OFFER_TABLE_COLUMNS, "product_id, segment_id"),
    "forecasts": (FORECAST_COLUMNS, FORECAST_COLUMNS, "product_id, discount_depth"),
    "model_metrics": (METRIC_COLUMNS, METRIC_COLUMNS, "model, metric"),
    "forecast_backtest": (BACKTEST_COLUMNS, BACKTEST_COLUMNS, "week_start, model"),
    # the profiles before the customers that reference them
    "segment_profiles": (SEGMENT_PROFILE_COLUMNS, SEGMENT_PROFILE_COLUMNS, "segment_id"),
    "customer_segments": (CUSTOMER_SEGMENT_COLUMNS, CUSTOMER_SEGMENT_COLUMNS, "customer_id"),
}

# (check, query on the staged run returning an offending row or nothing, detail of that row)
_S = STAGING
AUDITS = [
    ("valid assignment",
     (f"select product_id, customer_id, assignment from {_S}.plan_targets "
      "where run_id = %(run_id)s and assignment is distinct from 'treatment' "
      "and assignment is distinct from 'holdout' order by 1, 2 limit 1"),
     "customer {1} of product {0} has assignment {2!r}, not treatment or holdout"),
    ("customer in one group",
     (f"select product_id, customer_id from {_S}.plan_targets where run_id = %(run_id)s "
      "group by 1, 2 having count(distinct assignment) > 1 order by 1, 2 limit 1"),
     "customer {1} is both treatment and holdout for product {0}"),
    ("no duplicate keys",
     " union all ".join(
         f"(select '{table}', concat_ws('/', {key}) from {_S}.{table} where run_id = %(run_id)s "
         f"group by {key} having count(*) > 1 limit 1)" for table, (_, _, key) in TABLES.items()),
     "{0} has more than one row for key {1}"),
    ("discount within max_discount",
     (f"select l.product_id, l.discount_depth, p.max_discount from {_S}.plan_lines l "
      f"join {_S}.plans p using (run_id) where l.run_id = %(run_id)s "
      "and not (l.discount_depth > 0 and l.discount_depth <= p.max_discount + 1e-9) "
      "order by 1 limit 1"),
     "product {0} has discount {1} outside (0, max_discount {2}]"),
    ("promotion cost within budget",
     (f"select greatest(coalesce(sum(l.promotion_cost), 0), p.promotion_cost), p.budget "
      f"from {_S}.plans p left join {_S}.plan_lines l using (run_id) "
      "where p.run_id = %(run_id)s group by p.budget, p.promotion_cost "
      "having greatest(coalesce(sum(l.promotion_cost), 0), p.promotion_cost) > p.budget + 1e-6"),
     "promotion cost {0:.2f} exceeds the budget {1:.2f}"),
    ("margin floor",
     (f"select l.product_id, l.promo_price, l.unit_cost, p.margin_floor from {_S}.plan_lines l "
      f"join {_S}.plans p using (run_id) where l.run_id = %(run_id)s and not (l.promo_price > 0 "
      "and l.promo_price - l.unit_cost >= (p.margin_floor - 1e-9) * l.promo_price) "
      "order by 1 limit 1"),
     "product {0} at promoted price {1} and unit cost {2} is below the margin floor {3}"),
    ("targets only for promoted products",
     (f"select t.product_id from {_S}.plan_targets t where t.run_id = %(run_id)s and not exists "
      f"(select 1 from {_S}.plan_lines l where l.run_id = t.run_id "
      "and l.product_id = t.product_id and l.discount_depth > 0) order by 1 limit 1"),
     "customers are targeted for product {0}, which the plan does not promote"),
    ("offers within the budget",
     (f"select p.promotion_cost + coalesce(sum(o.expected_spend), 0), p.budget "
      f"from {_S}.plans p left join {_S}.plan_offers o using (run_id) "
      "where p.run_id = %(run_id)s group by p.budget, p.promotion_cost "
      "having p.promotion_cost + coalesce(sum(o.expected_spend), 0) > p.budget + 1e-6"),
     "the lines and personal offers spend {0:.2f}, more than the budget {1:.2f}"),
    ("offers on promoted lines above the margin floor",
     (f"select o.product_id, o.segment_id, o.offer_price, l.unit_cost from {_S}.plan_offers o "
      f"join {_S}.plans p using (run_id) left join {_S}.plan_lines l "
      "on l.run_id = o.run_id and l.product_id = o.product_id "
      "where o.run_id = %(run_id)s and (l.product_id is null "
      "or abs(l.discount_depth - o.discount_depth) > 1e-9 or o.offer_depth > p.max_discount + 1e-9 "
      "or not (o.offer_price > 0 and o.offer_price - l.unit_cost "
      ">= (p.margin_floor - 1e-9) * o.offer_price)) order by 1, 2 limit 1"),
     ("the offer on product {0} to segment {1} at {2} (unit cost {3}) is not on a promoted "
      "line within max_discount and the margin floor")),
    ("valid lifecycle",
     (f"select customer_id, lifecycle from {_S}.customer_segments where run_id = %(run_id)s "
      "and lifecycle not in ('new', 'active', 'lapsing', 'churned') order by 1 limit 1"),
     "customer {0} has lifecycle {1!r}, not new, active, lapsing or churned"),
    ("segments have profiles",
     (f"select c.customer_id, c.segment_id from {_S}.customer_segments c "
      "where c.run_id = %(run_id)s and not exists (select 1 from "
      f"{_S}.segment_profiles p where p.run_id = c.run_id and p.segment_id = c.segment_id) "
      "order by 1 limit 1"),
     "customer {0} is in segment {1}, which has no profile"),
    ("segment sizes",
     (f"select p.segment_id, p.customers, count(c.customer_id) from {_S}.segment_profiles p "
      f"left join {_S}.customer_segments c using (run_id, segment_id) "
      "where p.run_id = %(run_id)s group by 1, 2 having p.customers <> count(c.customer_id) "
      "order by 1 limit 1"),
     "segment {0} counts {1} customers in its profile but {2} are in it"),
]


class PublishAuditError(RuntimeError):
    """The staged plan failed an audit; `published` was left unchanged."""


def ensure_schema(settings: Settings | None = None) -> None:
    """Create the published and published_staging tables and the views, migrating an existing
    warehouse in place."""
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute(SCHEMA_SQL.read_text())


def _pg_array(values) -> str | None:
    """A list as a PostgreSQL array literal ('{1.5,2}', '{"a b","c"}'); None stays null."""
    if values is None or (not hasattr(values, "__len__") and pd.isna(values)):
        return None

    def element(value) -> str:
        if isinstance(value, str):
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return repr(float(value))
    return "{" + ",".join(element(v) for v in values) + "}"


def copy_frame(cur, table: str, frame: pd.DataFrame, columns: list[str],
               target_columns: list[str]) -> None:
    """COPY `frame[columns]` into `table (target_columns)`; missing values become null, list
    columns (ARRAY_COLUMNS) arrays."""
    buffer = io.StringIO()
    frame = frame[columns].assign(**{c: frame[c].map(_pg_array)
                                     for c in ARRAY_COLUMNS if c in columns})
    frame.to_csv(buffer, index=False, header=False, na_rep="\\N")
    buffer.seek(0)
    cur.copy_expert(
        f"copy {table} ({', '.join(target_columns)}) from stdin with (format csv, null '\\N')", buffer
    )


def _clear_staging(cur) -> None:
    cur.execute(f"truncate {', '.join(f'{STAGING}.{t}' for t in ['plans', *TABLES])}")


def _write_staging(cur, plan: dict, frames: dict[str, pd.DataFrame]) -> None:
    _clear_staging(cur)
    cur.execute(f"insert into {STAGING}.plans ({', '.join(PLAN_COLUMNS)}) "
                f"values ({', '.join(['%s'] * len(PLAN_COLUMNS))})",
                [plan.get(c) or None if c == "as_of" else plan.get(c)  # "": not a replay
                 for c in PLAN_COLUMNS])  # a column the plan lacks is null
    lines = frames["plan_lines"]
    targets = frames["plan_targets"]
    frames = {**frames, "plan_lines": lines.assign(
        **{c: 0.0 for c in LATER_LINE_COLUMNS if c not in lines.columns}),
        # a run folder written before targets had an uplift, or without one, publishes 0
        "plan_targets": targets.assign(
            uplift=targets.get("uplift", pd.Series(0.0, index=targets.index)).fillna(0.0),
            offer_depth=targets.get("offer_depth", pd.Series(float("nan"), index=targets.index))),
        "plan_offers": frames["plan_offers"].reindex(columns=OFFER_COLUMNS)}
    for table, (columns, target_columns, _) in TABLES.items():
        copy_frame(cur, f"{STAGING}.{table}", frames[table], columns, target_columns)


def _audit(cur, run_id: str, plan_week: str, counts: dict[str, int]) -> None:
    def fail(check: str, detail: str) -> PublishAuditError:
        return PublishAuditError(f"Publish audit '{check}' failed for run {run_id} (plan week "
                                 f"{plan_week}): {detail}; published is unchanged.")

    for table, expected in counts.items():
        cur.execute(f"select count(*) from {STAGING}.{table} where run_id = %s", (run_id,))
        staged = cur.fetchone()[0]
        if staged != expected:
            raise fail("row counts", f"{STAGING}.{table} holds {staged} rows, expected {expected}")
    for check, query, detail in AUDITS:
        cur.execute(query, {"run_id": run_id})
        row = cur.fetchone()
        if row is not None:
            raise fail(check, detail.format(*row))


#: the (dataset, plan week) of a run as its current version; an earlier one moves to the run
_POINT = ("insert into published.current_plans (dataset, plan_week, run_id, updated_at) "
          "select dataset, plan_week, run_id, published_at from published.plans where run_id = %s "
          "on conflict (dataset, plan_week) do update "
          "set run_id = excluded.run_id, updated_at = excluded.updated_at")
#: a (dataset, plan week) left without a current version gets its latest (as in the schema's fill)
_REFILL = ("insert into published.current_plans (dataset, plan_week, run_id, updated_at) "
           "select distinct on (dataset, plan_week) dataset, plan_week, run_id, published_at "
           "from published.plans order by dataset, plan_week, published_at desc, run_id desc "
           "on conflict do nothing")


def _swap(cur, run_id: str) -> None:
    """Publish the staged run as the current version of its dataset and plan week, keeping the
    week's earlier versions; the run's own earlier rows (a retry) are replaced (caller holds the
    transaction)."""
    cur.execute("delete from published.current_plans where run_id = %s", (run_id,))
    cur.execute("delete from published.plans where run_id = %s", (run_id,))  # children cascade
    for table, key in [("plans", "run_id"), *((t, k) for t, (_, _, k) in TABLES.items())]:
        columns = ", ".join(PLAN_COLUMNS if table == "plans" else TABLES[table][1])
        cur.execute(f"insert into published.{table} ({columns}) select {columns} "
                    f"from {STAGING}.{table} where run_id = %s order by {key}", (run_id,))
    cur.execute(_POINT, (run_id,))
    cur.execute(_REFILL)
    _clear_staging(cur)


def publish_plan(plan: dict, plan_lines: pd.DataFrame, targets: pd.DataFrame,
                 forecasts: pd.DataFrame, metrics: pd.DataFrame,
                 settings: Settings | None = None,
                 backtest: pd.DataFrame | None = None,
                 segment_profiles: pd.DataFrame | None = None,
                 customer_segments: pd.DataFrame | None = None,
                 offers: pd.DataFrame | None = None) -> None:
    """Publish this run's rows as the current version of its dataset's `plan['plan_week']`, all
    or nothing (without segment frames, the version has no segment rows)."""
    ensure_schema(settings)
    run_id, plan_week = plan["run_id"], str(plan["plan_week"])
    if backtest is None:
        backtest = pd.DataFrame(columns=BACKTEST_COLUMNS[2:])
    if segment_profiles is None or customer_segments is None:
        segment_profiles = pd.DataFrame(columns=SEGMENT_PROFILE_COLUMNS[2:])
        customer_segments = pd.DataFrame(columns=CUSTOMER_SEGMENT_COLUMNS[2:])
    if offers is None:
        offers = pd.DataFrame(columns=OFFER_COLUMNS[2:])
    frames = {"plan_lines": plan_lines, "plan_targets": targets, "plan_offers": offers,
              "forecasts": forecasts,
              "model_metrics": metrics, "forecast_backtest": backtest,
              "segment_profiles": segment_profiles, "customer_segments": customer_segments}
    frames = {name: frame.assign(run_id=run_id) if name == "model_metrics"
              else frame.assign(run_id=run_id, plan_week=plan_week) for name, frame in frames.items()}
    counts = {"plans": 1, **{name: len(frame) for name, frame in frames.items()}}
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select pg_advisory_lock(hashtext('promoflow.publish'))")  # until disconnect
        _write_staging(cur, plan, frames)
        conn.commit()
        try:  # audit and swap in one transaction; readers see the old plan until it commits
            cur.execute("lock table published.plans in share row exclusive mode")
            _audit(cur, run_id, plan_week, counts)
            _swap(cur, run_id)
            conn.commit()
        except Exception:
            conn.rollback()
            _clear_staging(cur)  # a failed publish keeps no staged rows
            conn.commit()
            raise
    log.info("Published plan %s for week %s: %d lines, %d targets, %d forecasts, %d segments",
             run_id, plan_week, len(plan_lines), len(targets), len(forecasts),
             len(segment_profiles))


def metrics_frame(folder: RunFolder) -> pd.DataFrame:
    """Model metrics against their baselines, from the training runs' JSON files.

    The recommender's row "recommender" is its champion; each candidate it was chosen among
    (baselines included) also gets rows "recommender/<name>": the holdout metrics and their
    95% interval bounds, each next to popularity's same value.

    The registry's gate (training/gate.py) adds per model: `planned_by_version` (the registered
    version whose outputs were planned with; baseline "challenger version" and its number),
    `promoted` (1 or 0; baseline holds the reason, baseline_value the relative tolerance
    against the champion) and, when there was a champion, `champion_<metric>` (the champion
    re-scored on the same holdout, next to the challenger's value).
    """
    rows = []
    for model, baseline in (("forecaster", "seasonal_naive"), ("recommender", "popularity")):
        path = folder.metrics(model)
        if not path.exists():
            continue
        metrics = json.loads(path.read_text())
        for metric, value in metrics.get("model", {}).items():
            rows.append({"model": model, "metric": metric, "model_value": value,
                         "baseline": baseline,
                         "baseline_value": metrics.get("baseline", {}).get(metric)})
        candidates = metrics.get("models", {})
        for name, summary in candidates.items():
            for metric, value in summary.items():
                rows.append({"model": f"{model}/{name}", "metric": metric, "model_value": value,
                             "baseline": baseline,
                             "baseline_value": candidates.get(baseline, {}).get(metric)})
        decision = metrics.get("decision")
        if decision:
            rows.append({"model": model, "metric": "planned_by_version",
                         "model_value": _version(decision.get("planned_by_version")),
                         "baseline": "challenger version",
                         "baseline_value": _version(decision["challenger_version"])})
            rows.append({"model": model, "metric": "promoted",
                         "model_value": float(decision["promoted"]),
                         "baseline": decision["reason"],
                         "baseline_value": decision["tolerance"]})
            if decision.get("champion") is not None:
                rows.append({"model": model, "metric": f"champion_{decision['metric']}",
                             "model_value": decision["champion"], "baseline": "challenger",
                             "baseline_value": decision["challenger"]})
        # the forecaster's calibration on the holdout, next to its target
        for metric, target in (("bias_at_discount_0", 0.0), ("p10_p90_coverage", 0.8)):
            if metric in metrics.get("calibration", {}):
                rows.append({"model": model, "metric": f"calibration_{metric}",
                             "model_value": metrics["calibration"][metric], "baseline": "target",
                             "baseline_value": target})
    return pd.DataFrame(rows, columns=["model", "metric", "model_value", "baseline", "baseline_value"])


def _version(value: object) -> float | None:
    """A registered model version (a string in MLflow) as a number."""
    return None if value is None else float(value)


def backtest_frame(folder: RunFolder) -> pd.DataFrame:
    """The forecaster's rolling-origin backtest (model, seasonal naive, LightGBM) per week."""
    path = folder.metrics("forecaster")
    rows = json.loads(path.read_text()).get("backtest", []) if path.exists() else []
    frame = pd.DataFrame(rows, columns=BACKTEST_COLUMNS[2:])
    frame["week_start"] = frame["week_start"].astype(str)
    return frame


def segment_frames(folder: RunFolder) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """(segment profiles, customer segments) of the run folder; (None, None) for a folder
    written before segmentation existed, which publishes no segment rows."""
    if not (folder.segment_profiles.exists() and folder.customer_segments.exists()):
        return None, None
    return (pd.read_parquet(folder.segment_profiles),
            pd.read_parquet(folder.customer_segments, columns=CUSTOMER_SEGMENT_COLUMNS[2:]))


def publish_run(run: Run, settings: Settings | None = None) -> dict:
    """The publish stage: the plan and segment files that the run wrote into its folder."""
    folder = run.folder(settings)
    plan = json.loads(folder.plan.read_text())
    profiles, customers = segment_frames(folder)
    publish_plan(
        plan,
        plan_lines=pd.read_parquet(folder.plan_lines),
        targets=pd.read_parquet(folder.plan_targets),
        forecasts=pd.read_parquet(folder.forecasts),
        metrics=metrics_frame(folder),
        settings=settings,
        backtest=backtest_frame(folder),
        segment_profiles=profiles,
        customer_segments=customers,
        offers=pd.read_parquet(folder.plan_offers) if folder.plan_offers.exists() else None,
    )
    return plan
