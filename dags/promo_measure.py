"""
### Measure what the published plans really did

Triggered by the `warehouse_marts` Asset, which `promo_weekly` updates once a load's marts pass
their checks, and runnable by hand for one plan week. For each published plan week of the
dataset whose sales are in the warehouse (or the week given): per plan line, actual units
against the forecast and the no-promotion baseline, realized incremental units, revenue and
profit, ROI and the following weeks' dip; treatment vs holdout purchase rate and spend with 95%
intervals, p-values, CUPED and the minimum detectable effect; the week's forecast accuracy.
Published to `published.plan_results`, `published.experiment_results` and
`published.forecast_accuracy`, one transaction per week; a week measured again replaces its
rows (`measurement/measure.py`). A failed database read or write is tried again twice (after
1-2, then 2-4 minutes); the last failed try sends an alert (`promoflow/alerts.py`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, Param, dag, task

from promoflow.alerts import FailureAlert
from promoflow.run import DATASET_PATTERN, MARTS_ASSET_NAME, MARTS_ASSET_URI, PLAN_WEEK_PATTERN

MARTS = Asset(name=MARTS_ASSET_NAME, uri=MARTS_ASSET_URI)


@dag(
    dag_id="promo_measure",
    schedule=[MARTS],
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={
        "dataset": Param("demo", type="string", pattern=DATASET_PATTERN,
                         description="Dataset whose plans to measure (an Asset event names its own)."),
        # null allowed: an optional field, which the trigger form may leave empty
        "plan_week": Param("", type=["null", "string"], pattern=PLAN_WEEK_PATTERN,
                           description="Monday of the plan week (YYYY-MM-DD); empty: every "
                           "published week with sales."),
    },
    tags=["promotions", "measurement"],
    default_args={"retries": 0, "execution_timeout": timedelta(hours=1),
                  "on_failure_callback": FailureAlert()},
    doc_md=__doc__,
)
def promo_measure():
    @task(retries=2, retry_delay=timedelta(minutes=1), retry_exponential_backoff=2.0,
          max_retry_delay=timedelta(minutes=10))  # as promo_weekly's database tasks
    def measure(**context) -> list[dict]:
        from measurement.measure import measure_request

        events = context.get("triggering_asset_events") or {}
        loads = [event.extra for asset_events in events.values() for event in asset_events]
        # a replay's marts hold the data as of its time: measuring them would replace the
        # results made with the data that came later
        live = [extra for extra in loads if extra.get("dataset") and not extra.get("as_of")]
        if loads and not live:
            print("Only replayed loads since the last run: nothing to measure.")
            return []
        params = context["params"]
        dataset = live[-1]["dataset"] if live else params["dataset"]
        return measure_request(dataset, params.get("plan_week") or "")

    @task
    def report(measured: list[dict]) -> list[str]:
        """The plan reports of the measured weeks' runs, written again with their results."""
        from report.plan_report import write_reports

        return [str(path) for path in write_reports(week["run_id"] for week in measured)]

    report(measure())


promo_measure()
