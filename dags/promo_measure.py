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
rows (`measurement/measure.py`).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Asset, Param, dag, task

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
        "plan_week": Param("", type="string", pattern=PLAN_WEEK_PATTERN,
                           description="Monday of the plan week (YYYY-MM-DD); empty: every "
                           "published week with sales."),
    },
    tags=["promotions", "measurement"],
    default_args={"retries": 0},
    doc_md=__doc__,
)
def promo_measure():
    @task
    def measure(**context) -> list[dict]:
        from measurement.measure import measure_request

        events = context.get("triggering_asset_events") or {}
        datasets = [event.extra.get("dataset") for asset_events in events.values()
                    for event in asset_events if event.extra.get("dataset")]
        params = context["params"]
        dataset = datasets[-1] if datasets else params["dataset"]
        return measure_request(dataset, params.get("plan_week") or "")

    measure()


promo_measure()
