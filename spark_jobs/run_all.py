"""Run the three feature jobs in one Spark session: marts -> lake/features/<name>/.

    python -m spark_jobs.run_all [--plan-week YYYY-MM-DD]

Without --plan-week the plan week is the week after the last week in marts.product_week_sales.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import date

from pyspark.sql import SparkSession

from promoflow.logs import setup_logging
from promoflow.run import Run
from promoflow.settings import Settings, get_settings
from spark_jobs import customer_features, product_features, product_week_features
from spark_jobs.session import FeatureJobError, get_spark, read_mart
from spark_jobs.weeks import last_data_week, resolve_plan_week

log = logging.getLogger("spark_jobs.run_all")

JOBS = (customer_features, product_features, product_week_features)


def build_features(run: Run, settings: Settings | None = None) -> dict[str, int]:
    """The features stage of a weekly run: every feature table up to the run's resolved plan week,
    written to settings.feature_dir(<name>); returns rows written per table."""
    plan_week = run.plan_week  # RunConfigError before Spark starts when it is not resolved
    log.info("Run %s: features up to the plan week %s", run.run_id, plan_week)
    return run_all(settings or get_settings(), plan_week)


def run_all(
    settings: Settings, plan_week: date | None = None, spark: SparkSession | None = None
) -> dict[str, int]:
    """Build every feature table up to the plan week; returns rows written per table.

    A session passed in, or one already running in the process, is left running; one started
    here is stopped at the end.
    """
    started = time.time()
    own_session = spark is None and SparkSession.getActiveSession() is None
    if spark is None:
        spark = get_spark(settings)
        log.info("Spark session ready in %.1f s", time.time() - started)
    try:
        return _run_jobs(spark, settings, plan_week, started)
    finally:
        if own_session:
            spark.stop()


def _run_jobs(
    spark: SparkSession, settings: Settings, plan_week: date | None, started: float
) -> dict[str, int]:
    plan = resolve_plan_week(
        last_data_week(read_mart(spark, settings, "product_week_sales")), plan_week
    )
    log.info("Building features up to the plan week %s", plan)
    rows: dict[str, int] = {}
    for job in JOBS:
        job_started = time.time()
        rows[job.NAME] = job.run(spark, settings, plan)
        log.info("%s: %d rows in %.1f s", job.NAME, rows[job.NAME], time.time() - job_started)
    log.info("All feature jobs done in %.1f s", time.time() - started)
    return rows


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan-week", type=date.fromisoformat, default=None,
                        help="Monday of the week to plan (default: the week after the data)")
    args = parser.parse_args(argv)
    try:
        run_all(get_settings(), args.plan_week)
    except FeatureJobError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
