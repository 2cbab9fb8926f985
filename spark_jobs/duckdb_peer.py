"""A DuckDB peer of the Spark feature jobs: the same three tables from the same Parquet handoff.

    python -m spark_jobs.duckdb_peer --compare [--plan-week YYYY-MM-DD] [--json FILE]

`build_features` computes customer_features, product_features and product_week_features with
the same columns, types and values as the Spark jobs (same algorithms, in SQL on integer week
indexes), with as many threads as the Spark master has cores. `--compare`, on the warehouse of
the current settings, exports the marts once to its own folder, then times the Spark session
start, the Spark jobs and the DuckDB peer on that handoff, each writing to its own folder under
tmp/feature_peer/ (never the lake's feature folders); it prints one table and writes JSON
{"spark_session_s", "spark_jobs_s", "duckdb_s", "ratio", "rows"}.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
import time
from datetime import date
from pathlib import Path

import duckdb

from promoflow.logs import setup_logging
from promoflow.settings import Settings, get_settings
from promoflow.weeks import EPOCH_MONDAY
from spark_jobs import customer_features, product_features, product_week_features
from spark_jobs.handoff import HandoffError, MartHandoff
from spark_jobs.session import FeatureJobError

log = logging.getLogger("spark_jobs.duckdb_peer")

JOBS = (customer_features, product_features, product_week_features)
MARTS = tuple(dict.fromkeys(table for job in JOBS for table in job.MARTS))
EPOCH = f"DATE '{EPOCH_MONDAY.isoformat()}'"


def week_idx(column: str) -> str:
    """Weeks since EPOCH_MONDAY (spark_jobs.weeks.week_index)."""
    return f"floor(date_diff('day', {EPOCH}, {column}) / 7)::BIGINT"


def week_start(index: str) -> str:
    return f"({EPOCH} + (7 * {index})::INTEGER)"


def weeks_until(table: str, plan_idx: int) -> str:
    """(week_idx, week_start) from the first week of `table` to the plan week (weeks_until)."""
    return (
        f"SELECT i AS week_idx, {week_start('i')} AS week_start "
        f"FROM (SELECT {week_idx('min(week_start)')} AS first_idx FROM {table}), "
        f"range(first_idx, {plan_idx + 1}) AS r(i)"
    )


def customer_features_sql(plan_idx: int) -> str:
    """customer_features.build_customer_features in DuckDB SQL."""
    window = customer_features.WINDOW_WEEKS
    slots = customer_features.CATEGORY_SLOTS
    micros = f"{customer_features.MICROS}::DOUBLE"
    purchase = "(NOT is_return AND quantity > 0)"
    sums = ("orders", "revenue", "list_value", "discount_value", "units", "promo_units")
    totals = ",\n".join(
        f"coalesce(sum({c}) OVER running, 0) AS {c}_total" for c in sums
    )
    trailing = ",\n".join(
        f"lag({c}_total, 1, 0) OVER by_week - lag({c}_total, {window + 1}, 0) OVER by_week "
        f"AS {c}_52w"
        for c in sums
    )
    return f"""
WITH lines AS (SELECT * FROM order_lines WHERE customer_id IS NOT NULL),
weekly AS (
    SELECT customer_id, week_start,
        count(DISTINCT CASE WHEN {purchase} THEN order_id END) AS orders,
        round(sum(revenue) * {micros})::BIGINT AS revenue,
        round(sum(CASE WHEN {purchase} THEN quantity * unit_list_price END) * {micros})::BIGINT
            AS list_value,
        round(sum(CASE WHEN {purchase} THEN quantity * unit_list_price * discount_depth END)
            * {micros})::BIGINT AS discount_value,
        sum(CASE WHEN {purchase} THEN quantity END) AS units,
        sum(CASE WHEN {purchase} AND is_promoted THEN quantity END) AS promo_units,
        max(CASE WHEN {purchase} THEN order_date END) AS last_order_date
    FROM lines GROUP BY customer_id, week_start
),
weeks AS ({weeks_until("order_lines", plan_idx)}),
grid AS (
    SELECT c.customer_id, c.signup_date, w.week_idx, w.week_start,
        k.orders, k.revenue, k.list_value, k.discount_value, k.units, k.promo_units,
        k.last_order_date
    FROM customers c CROSS JOIN weeks w
    LEFT JOIN weekly k ON k.customer_id = c.customer_id AND k.week_start = w.week_start
),
totals AS (
    SELECT customer_id, signup_date, week_idx, week_start,
        max(last_order_date) OVER (PARTITION BY customer_id ORDER BY week_idx
            RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS last_purchase,
        {totals}
    FROM grid
    WINDOW running AS (PARTITION BY customer_id ORDER BY week_idx
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
snapshots AS (
    SELECT customer_id, signup_date, week_idx, week_start, last_purchase,
        {trailing}
    FROM totals
    WINDOW by_week AS (PARTITION BY customer_id ORDER BY week_idx)
),
features AS (
    SELECT customer_id::BIGINT AS customer_id, week_idx, week_start,
        greatest(date_diff('day', coalesce(last_purchase, signup_date), week_start), 0)::BIGINT
            AS recency_days,
        orders_52w::BIGINT AS frequency_orders_52w,
        revenue_52w::DOUBLE / {micros} AS monetary_value_52w,
        CASE WHEN list_value_52w > 0
            THEN discount_value_52w::DOUBLE / list_value_52w::DOUBLE ELSE 0.0 END
            AS avg_discount_depth,
        CASE WHEN units_52w > 0 THEN promo_units_52w::DOUBLE / units_52w::DOUBLE ELSE 0.0 END
            AS promo_share
    FROM snapshots
    WHERE signup_date < week_start OR last_purchase IS NOT NULL
),
purchases AS (
    SELECT customer_id, category, week_start, quantity FROM lines WHERE {purchase}
),
categories AS (
    SELECT category, dense_rank() OVER (ORDER BY category NULLS FIRST) - 1 AS category_rank
    FROM (SELECT DISTINCT category FROM purchases)
),
bought AS (
    SELECT customer_id, category_rank, {week_idx("week_start")} AS week_idx,
        sum(quantity) AS units
    FROM purchases JOIN categories USING (category)
    GROUP BY customer_id, category_rank, week_start
),
changes AS (
    SELECT customer_id, category_rank, change_week, sum(change) AS change FROM (
        SELECT customer_id, category_rank, week_idx + 1 AS change_week, units AS change FROM bought
        UNION ALL
        SELECT customer_id, category_rank, week_idx + {window + 1}, -units FROM bought
    ) GROUP BY customer_id, category_rank, change_week
),
spans AS (
    SELECT customer_id, category_rank, change_week,
        sum(change) OVER (PARTITION BY customer_id, category_rank ORDER BY change_week
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS units,
        lead(change_week) OVER (PARTITION BY customer_id, category_rank ORDER BY change_week) AS until
    FROM changes
),
candidates AS (
    SELECT customer_id, units * {slots} + ({slots} - 1 - category_rank) AS key,
        unnest(range(change_week, least(until - 1, {plan_idx}) + 1)) AS week_idx
    FROM spans WHERE units > 0 AND change_week <= {plan_idx}
),
top AS (
    SELECT customer_id, week_idx, {slots} - 1 - max(key) % {slots} AS category_rank
    FROM candidates GROUP BY customer_id, week_idx
)
SELECT f.customer_id, f.week_start::TIMESTAMPTZ AS event_timestamp, f.recency_days,
    f.frequency_orders_52w, f.monetary_value_52w, f.avg_discount_depth, f.promo_share,
    coalesce(c.category, '{customer_features.NO_CATEGORY}') AS top_category
FROM features f
LEFT JOIN top t ON t.customer_id = f.customer_id AND t.week_idx = f.week_idx
LEFT JOIN categories c ON c.category_rank = t.category_rank
"""


def product_features_sql(plan_idx: int) -> str:
    """product_features.build_product_features in DuckDB SQL."""
    weeks = product_features.POPULARITY_WEEKS
    return f"""
WITH weeks AS ({weeks_until("product_week_sales", plan_idx)}),
grid AS (
    SELECT p.product_id, p.category, p.list_price, p.unit_cost, p.margin_rate,
        w.week_idx, w.week_start, s.units::DOUBLE AS units, s.is_promoted
    FROM products p CROSS JOIN weeks w
    LEFT JOIN product_week_sales s
        ON s.product_id = p.product_id AND s.week_start = w.week_start
),
snapshots AS (
    SELECT *,
        coalesce(sum(units) OVER (PARTITION BY product_id ORDER BY week_idx
            RANGE BETWEEN {weeks} PRECEDING AND 1 PRECEDING), 0.0) AS popularity,
        avg(CASE WHEN is_promoted THEN units END) OVER history AS promo_mean,
        avg(CASE WHEN NOT is_promoted THEN units END) OVER history AS base_mean
    FROM grid
    WINDOW history AS (PARTITION BY product_id ORDER BY week_idx
        RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
)
SELECT product_id::BIGINT AS product_id, week_start::TIMESTAMPTZ AS event_timestamp, category,
    list_price::DOUBLE AS list_price, unit_cost::DOUBLE AS unit_cost,
    margin_rate::DOUBLE AS margin_rate,
    trunc(popularity)::BIGINT AS popularity_units_12w,
    CASE WHEN promo_mean IS NOT NULL AND base_mean IS NOT NULL
        THEN (promo_mean + 1.0) / (base_mean + 1.0) ELSE 1.0 END::DOUBLE AS promo_lift
FROM snapshots
"""


def product_week_features_sql(plan_idx: int) -> str:
    """product_week_features.build_product_week_features in DuckDB SQL."""
    share = product_week_features.SHARE_WEEKS
    kinds = product_week_features.PROMO_TYPES

    def over_weeks(agg: str, first: int, last: int) -> str:
        return (
            f"coalesce({agg} OVER (PARTITION BY product_id ORDER BY week_idx RANGE BETWEEN "
            f"{first} PRECEDING AND {last} PRECEDING), 0.0)"
        )

    def own_week(value: str, plan_value: str = "0.0") -> str:
        return f"CASE WHEN week_idx = {plan_idx} THEN {plan_value} ELSE {value} END"

    lags = ",\n".join(
        f"trunc({over_weeks('sum(units)', k, k)})::BIGINT AS units_lag_{k}"
        for k in product_week_features.LAGS
    )
    discount_lags = ",\n".join(
        f"{over_weeks('sum(realized_depth)', k, k)} AS discount_depth_lag_{k}"
        for k in product_week_features.DISCOUNT_LAGS
    )
    promo_types = ",\n".join(
        f"{own_week(f'coalesce(week_promo_{kind}::DOUBLE, 0.0)')} AS promo_{kind}"
        for kind in kinds
    )
    week_promos = ", ".join(f"s.promo_{kind} AS week_promo_{kind}" for kind in kinds)
    return f"""
WITH weeks AS ({weeks_until("product_week_sales", plan_idx)}),
category_index AS (
    SELECT category, (dense_rank() OVER (ORDER BY category NULLS FIRST) - 1)::BIGINT
        AS category_idx
    FROM (SELECT DISTINCT category FROM products)
),
grid AS (
    SELECT p.product_id, p.category, p.list_price::DOUBLE AS list_price, w.week_idx,
        w.week_start, ci.category_idx,
        coalesce(s.units::DOUBLE, 0.0) AS units,
        coalesce(s.discount_depth::DOUBLE, 0.0) AS realized_depth,
        s.is_promoted AS week_is_promoted,
        s.avg_list_price::DOUBLE AS week_list_price,
        {week_promos},
        coalesce(s.is_stocked_out::DOUBLE, 0.0) AS stocked_out,
        s.contacted_customers::DOUBLE AS week_contacted_customers,
        cal.week_of_year::BIGINT AS calendar_week_of_year,
        cal.is_holiday_week AS calendar_is_holiday_week
    FROM products p CROSS JOIN weeks w
    JOIN category_index ci ON ci.category = p.category
    LEFT JOIN product_week_sales s ON s.product_id = p.product_id AND s.week_start = w.week_start
    LEFT JOIN calendar_weeks cal ON cal.week_start = w.week_start
),
own AS (
    SELECT *,
        {own_week("coalesce(week_is_promoted::DOUBLE, 0.0)")} AS promoted,
        {own_week("realized_depth")} AS depth,
        {over_weeks("sum(units)", share, 1)} AS units_before
    FROM grid
),
shares AS (
    SELECT *, sum(units_before) OVER (PARTITION BY category, week_idx) AS category_units_before
    FROM own
),
terms AS (
    SELECT *,
        CASE WHEN category_units_before > 0
            THEN promoted * depth * units_before / category_units_before ELSE 0.0 END
            AS pressure_term
    FROM shares
),
category AS (
    SELECT *,
        greatest(sum(pressure_term) OVER category_week - pressure_term, 0.0) AS others_pressure,
        sum(promoted) OVER category_week - promoted AS others_promoted
    FROM terms
    WINDOW category_week AS (PARTITION BY category, week_idx)
)
SELECT product_id::BIGINT AS product_id, week_start::TIMESTAMPTZ AS event_timestamp,
    category_idx,
    coalesce(calendar_week_of_year, weekofyear(week_start))::BIGINT AS week_of_year,
    coalesce(calendar_is_holiday_week, false) AS is_holiday_week,
    {lags},
    {over_weeks("avg(units)", 4, 1)} AS units_roll_mean_4,
    {over_weeks("avg(units)", 12, 1)} AS units_roll_mean_12,
    {over_weeks("stddev_samp(units)", 12, 1)} AS units_roll_std_12,
    depth AS discount_depth,
    {own_week("coalesce(week_is_promoted, false)", "false")} AS is_promoted,
    {own_week("coalesce(week_list_price, list_price)", "list_price")} AS list_price,
    {discount_lags},
    {promo_types},
    {own_week("others_pressure")} AS category_promo_pressure,
    {own_week("others_promoted")} AS category_promo_count,
    {own_week("stocked_out")} AS is_stocked_out,
    {over_weeks("max(stocked_out)", 1, 1)} AS stocked_out_lag_1,
    {own_week("coalesce(week_contacted_customers, 0.0)")} AS contacted_customers
FROM category
"""


SQL = {
    customer_features.NAME: customer_features_sql,
    product_features.NAME: product_features_sql,
    product_week_features.NAME: product_week_features_sql,
}


def threads_of(master: str) -> int:
    """The cores a Spark master gives the jobs here: N of local[N] or local[N,F], else every core."""
    match = re.fullmatch(r"local\[(\d+)(,\d+)?\]", master)
    if match:
        return int(match.group(1))
    return 1 if master == "local" else os.cpu_count() or 1


def connect(handoff: MartHandoff, threads: int) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with UTC time and a view on the handoff's Parquet of every mart."""
    con = duckdb.connect(config={"threads": threads, "autoinstall_known_extensions": False})
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    scratch = handoff.settings.tmp_dir / "duckdb"
    scratch.mkdir(parents=True, exist_ok=True)
    con.execute(f"SET temp_directory = '{scratch}'")
    for table in MARTS:
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{handoff.path(table)}')")
    return con


def plan_week_of(con: duckdb.DuckDBPyConnection, plan_week: date | None) -> date:
    """The explicit plan week, or the week after the last week of marts.product_week_sales."""
    from spark_jobs.weeks import resolve_plan_week

    last = con.execute("SELECT max(week_start) FROM product_week_sales").fetchone()[0]
    if last is None:
        raise FeatureJobError(
            "marts.product_week_sales is empty; load the landing files and run dbt build first."
        )
    return resolve_plan_week(last, plan_week)


def build_features(
    handoff: MartHandoff, plan_week: date | None, out_dir: Path, threads: int
) -> dict[str, int]:
    """Every feature table with DuckDB into `out_dir`/<name>/data.parquet; rows per table."""
    con = connect(handoff, threads)
    try:
        plan = plan_week_of(con, plan_week)
        plan_idx = (plan - EPOCH_MONDAY).days // 7
        rows: dict[str, int] = {}
        for name, sql in SQL.items():
            folder = out_dir / name
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            target = folder / "data.parquet"
            written = con.execute(
                f"COPY ({sql(plan_idx)}) TO '{target}' (FORMAT parquet)"
            ).fetchone()
            rows[name] = int(written[0])
        return rows
    finally:
        con.close()


def compare(settings: Settings, plan_week: date | None = None) -> dict:
    """Spark against DuckDB on the same handoff of the settings' warehouse (see the module)."""
    from pyspark.sql import SparkSession

    from spark_jobs.run_all import run_jobs
    from spark_jobs.session import get_spark

    folder = settings.tmp_dir / "feature_peer"
    handoff = MartHandoff(settings, folder / "marts")
    started = time.perf_counter()
    for table in MARTS:
        handoff.path(table)
    export_s = time.perf_counter() - started

    con = connect(handoff, threads_of(settings.spark_master))
    plan = plan_week_of(con, plan_week)
    con.close()

    started = time.perf_counter()
    own_session = SparkSession.getActiveSession() is None
    spark = get_spark(settings)
    spark_session_s = time.perf_counter() - started
    try:
        started = time.perf_counter()
        spark_rows = run_jobs(spark, handoff, plan, settings, folder / "spark")
        spark_jobs_s = time.perf_counter() - started
    finally:
        if own_session:
            spark.stop()

    started = time.perf_counter()
    duckdb_rows = build_features(handoff, plan, folder / "duckdb", threads_of(settings.spark_master))
    duckdb_s = time.perf_counter() - started
    if duckdb_rows != spark_rows:
        raise FeatureJobError(f"Spark wrote {spark_rows} rows but DuckDB {duckdb_rows}.")
    result = {
        "spark_session_s": round(spark_session_s, 2),
        "spark_jobs_s": round(spark_jobs_s, 2),
        "duckdb_s": round(duckdb_s, 2),
        "ratio": round(spark_jobs_s / duckdb_s, 2),
        "rows": spark_rows,
    }
    log.info("Plan week %s; marts exported in %.1f s (not in either time)", plan, export_s)
    return result


def format_table(result: dict) -> str:
    lines = [
        f"{'engine':<16}{'seconds':>10}",
        f"{'spark session':<16}{result['spark_session_s']:>10.2f}",
        f"{'spark jobs':<16}{result['spark_jobs_s']:>10.2f}",
        f"{'duckdb':<16}{result['duckdb_s']:>10.2f}",
        f"{'ratio':<16}{result['ratio']:>10.2f}",
    ]
    lines += [f"{name:<24}{rows:>10} rows" for name, rows in result["rows"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", action="store_true", required=True,
                        help="time the Spark jobs against the DuckDB peer on the warehouse")
    parser.add_argument("--plan-week", type=date.fromisoformat, default=None,
                        help="Monday of the week to plan (default: the week after the data)")
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    args = parser.parse_args(argv)
    try:
        result = compare(get_settings(), args.plan_week)
    except (FeatureJobError, HandoffError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_table(result))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
