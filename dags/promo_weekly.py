"""
### Weekly promotion plan

Landing files -> `raw` (ingest with quarantine) -> Great Expectations on raw and the ingest
accounting -> dbt source freshness, marts and tests (cosmos) -> Great Expectations on the marts ->
Spark features -> Feast apply + materialize -> Great Expectations on the features ->
training sets (Feast point-in-time joins) -> torchrun training of the recommender and the
demand forecaster -> HiGHS discount plan + customer targeting with holdout -> `published` schema.

Trigger with the form: dataset (a folder under the landing area), plan week (empty: the week
after the data), budget, maximum discount, margin floor, promotions per category, audience size
and holdout fraction.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path

from airflow.sdk import Param, dag, task, task_group
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import LoadMode, SourceRenderingBehavior, TestBehavior
from cosmos.profiles import PostgresUserPasswordProfileMapping

from planning.params import BOUNDS, INTEGER_PARAMS

DBT_PROJECT = Path(__file__).resolve().parent.parent / "dbt_project"
WAREHOUSE_CONN_ID = os.environ.get("PROMO_WAREHOUSE_CONN_ID", "promo_warehouse")



def _number(name: str, default: float, description: str) -> Param:
    low, high = BOUNDS[name]
    kind = "integer" if name in INTEGER_PARAMS else "number"
    return Param(default, type=kind, minimum=low, maximum=high, description=description)


PARAMS = {
    "dataset": Param("demo", type="string", pattern=r"^[A-Za-z0-9_.-]+$",
                     description="Folder under the landing area holding the raw files."),
    "plan_week": Param("", type="string", pattern=r"^(\d{4}-\d{2}-\d{2})?$",
                       description="Monday starting the plan week (YYYY-MM-DD); empty: the week after the data."),
    "budget": _number("budget", 5000.0, "Promotion budget: discount money given away on expected units."),
    "max_discount": _number("max_discount", 0.3, "Deepest discount allowed (0.3 = 30% off)."),
    "margin_floor": _number("margin_floor", 0.05, "Minimum margin rate of a promoted price."),
    "max_promos_per_category": _number("max_promos_per_category", 5,
                                       "At most this many promoted products per category."),
    "audience_size": _number("audience_size", 200, "Customers targeted per promoted product."),
    "holdout_fraction": _number("holdout_fraction", 0.1,
                                "Share of targeted customers kept untreated to measure uplift."),
    "epochs": Param(0, type="integer", minimum=0, maximum=1000,
                    description="Training epochs per model; 0 keeps each model's default."),
    "seed": _number("seed", 42, "Seed of every random choice."),
}


@dag(
    dag_id="promo_weekly",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    params=PARAMS,
    tags=["promotions", "weekly"],
    default_args={"retries": 0},
    doc_md=__doc__,
)
def promo_weekly():
    @task
    def prepare_run(**context) -> dict:
        from promoflow.runs import prepare_run as prepare

        return prepare(context["params"], context["run_id"])  # refuses bad values before any work

    @task
    def ingest(run: dict) -> dict:
        from ingest.load import run_ingest

        return run_ingest(Path(run["source_dir"]), run["run_id"])

    @task
    def check_raw(run: dict) -> dict:
        from quality.checkpoints import validate_raw

        return validate_raw(run["run_id"])

    dbt_marts = DbtTaskGroup(
        group_id="dbt_marts",
        project_config=ProjectConfig(dbt_project_path=DBT_PROJECT,
                                     manifest_path=DBT_PROJECT / "target" / "manifest.json"),
        profile_config=ProfileConfig(
            profile_name="promoflow", target_name="local",
            profile_mapping=PostgresUserPasswordProfileMapping(
                conn_id=WAREHOUSE_CONN_ID, profile_args={"schema": "public"}),
        ),
        execution_config=ExecutionConfig(dbt_executable_path=str(Path(sys.executable).parent / "dbt")),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.BUILD,
            # relationship tests between marts run in their own task once both sides are built
            should_detach_multiple_parents_tests=True,
            # one `dbt source freshness` task per raw table: no marts from a stale load
            source_rendering_behavior=SourceRenderingBehavior.WITH_TESTS_OR_FRESHNESS,
        ),
        operator_args={"install_deps": False},
    )

    @task
    def check_marts(run: dict) -> dict:
        from promoflow.runs import resolve_plan_week
        from quality.checkpoints import validate_marts

        validate_marts()
        return resolve_plan_week(run)

    @task
    def spark_features(run: dict) -> dict:
        from datetime import date

        from promoflow.settings import get_settings
        from spark_jobs.run_all import run_all

        return run_all(get_settings(), date.fromisoformat(run["plan_week"]))

    @task
    def feast_materialize(run: dict) -> dict:
        from datetime import UTC, date, datetime, time, timedelta

        from feature_repo.store import apply_and_materialize
        from promoflow.settings import get_settings

        week_after = date.fromisoformat(run["plan_week"]) + timedelta(days=7)
        return apply_and_materialize(get_settings(), datetime.combine(week_after, time(), UTC))

    @task
    def check_features(run: dict) -> dict:
        from datetime import date

        from quality.checkpoints import validate_features

        return validate_features(plan_week=date.fromisoformat(run["plan_week"]))

    @task
    def training_sets(run: dict) -> dict:
        from datetime import date

        from feature_repo.training_sets import build_training_sets
        from promoflow.settings import get_settings

        paths = build_training_sets(get_settings(), Path(run["run_dir"]), date.fromisoformat(run["plan_week"]))
        return {name: str(path) for name, path in paths.items()}

    @task_group
    def train(run: dict):
        @task
        def train_recommender(run: dict) -> str:
            from training.launch import train_model

            return train_model("recommender", run)

        @task
        def train_forecaster(run: dict) -> str:
            from training.launch import train_model

            return train_model("forecaster", run)

        return [train_recommender(run), train_forecaster(run)]

    @task
    def plan(run: dict) -> dict:
        from planning.run import plan_run

        return plan_run(run)

    @task
    def publish(run: dict) -> dict:
        from publish.publish import publish_run

        return publish_run(Path(run["run_dir"]))

    run = prepare_run()
    loaded = ingest(run)
    resolved = check_marts(run)
    loaded >> check_raw(run) >> dbt_marts >> resolved
    features = spark_features(resolved)
    store = feast_materialize(resolved)
    sets = training_sets(resolved)
    features >> store >> check_features(resolved) >> sets
    trained = train(resolved)
    sets >> trained
    planned = plan(resolved)
    trained >> planned >> publish(resolved)


promo_weekly()
