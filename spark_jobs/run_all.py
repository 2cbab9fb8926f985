"""Run the three feature jobs in one Spark session: marts -> lake/features/<name>/.

    python -m spark_jobs.run_all [--plan-week YYYY-MM-DD]

Without --plan-week the plan week is the week after the last week in marts.product_week_sales.
The marts are handed off to Parquet first (`spark_jobs.handoff`, lake/marts/), then read by
Spark in parallel.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import date
from pathlib import Path

from pyspark.sql import SparkSession

from promoflow.logs import setup_logging
from promoflow.run import Run
from promoflow.settings import Settings, get_settings
from promoflow.storage import StorageError, writes_to
from spark_jobs import customer_features, product_features, product_week_features
from spark_jobs.handoff import HandoffError, MartHandoff
from spark_jobs.session import FeatureJobError, get_spark, read_mart, stop_spark
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
    settings: Settings,
    plan_week: date | None = None,
    spark: SparkSession | None = None,
    handoff: MartHandoff | None = None,
    out_dir: Path | None = None,
) -> dict[str, int]:
    """Build every feature table up to the plan week; returns rows written per table.

    The marts come from `handoff` (default: exported now to lake/marts/); the tables go to
    `out_dir`/<name> (default: the lake's settings.feature_dir(<name>)). A session passed in,
    or one already running in the process, is left running; one started here is stopped.
    """
    started = time.time()
    own_session = spark is None and SparkSession.getActiveSession() is None
    # a full disk or an unwritable lake: refused before Spark starts, or said in one sentence
    # when the disk fills up during the jobs
    with writes_to(settings.lake_dir if out_dir is None else out_dir):
        if spark is None:
            spark = get_spark(settings)
            log.info("Spark session ready in %.1f s", time.time() - started)
        try:
            return run_jobs(spark, handoff or MartHandoff(settings), plan_week, settings, out_dir)
        finally:
            if own_session:
                stop_spark(spark)


def run_jobs(
    spark: SparkSession,
    marts: MartHandoff,
    plan_week: date | None,
    settings: Settings,
    out_dir: Path | None = None,
) -> dict[str, int]:
    """The feature jobs in a running session; returns rows written per table."""
    started = time.time()
    plan = resolve_plan_week(last_data_week(read_mart(spark, marts, "product_week_sales")), plan_week)
    log.info("Building features up to the plan week %s", plan)
    rows: dict[str, int] = {}
    for job in JOBS:
        job_started = time.time()
        path = out_dir / job.NAME if out_dir is not None else settings.feature_dir(job.NAME)
        rows[job.NAME] = job.run(spark, marts, plan, path)
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
    except (FeatureJobError, HandoffError, StorageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
