"""
### Weekly promotion plan

Landing files -> `raw` (ingest with quarantine) -> Great Expectations on raw and the ingest
accounting -> dbt source freshness, marts and tests (cosmos) -> Great Expectations on the marts ->
Spark features -> Feast apply + materialize -> Great Expectations on the features ->
training sets (Feast point-in-time joins) -> torchrun training of the recommender and the
demand forecaster -> HiGHS discount plan + customer targeting with holdout -> `published` schema.
Next to them, customer profiles and segments (Spark MLlib, `segment_customers`) run after the
features and before the plan, and are published with it.
Before planning, the published plan weeks whose sales just arrived are measured (`measure`),
so the plan counts the contact effect its last campaigns had. Once the marts pass their checks,
the `warehouse_marts` Asset is updated: it triggers `promo_measure`, which measures them (again,
rerun-safe) on its own, and which can be run by hand for one plan week.

Runs every Monday at 06:00 UTC (`PROMO_WEEKLY_SCHEDULE`, a cron; `none`: by hand only; missed
weeks are not caught up unless `PROMO_WEEKLY_CATCHUP=true`), or trigger it with the form: its
fields, defaults and bounds come from the run contract (`promoflow/run.py`, `RunParams`).
Tasks that can fail for a passing reason (database, Spark, Feast, torchrun) try again twice with
a growing delay; every task has a time limit, and a task's last failed try sends an alert
(`promoflow/alerts.py`). Each task is one call of its stage's entry point with the run
(`promoflow.run.Run`), passed between tasks as its JSON dict.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import Asset, Param, dag, task, task_group
from airflow.sdk.exceptions import AirflowFailException
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import (
    ExecutionMode,
    InvocationMode,
    LoadMode,
    SourceRenderingBehavior,
    TestBehavior,
)
from cosmos.profiles import PostgresUserPasswordProfileMapping

from promoflow.alerts import FailureAlert
from promoflow.run import MARTS_ASSET_NAME, MARTS_ASSET_URI, Run, form_schema

DBT_PROJECT = Path(__file__).resolve().parent.parent / "dbt_project"
WAREHOUSE_CONN_ID = os.environ.get("PROMO_WAREHOUSE_CONN_ID", "promo_warehouse")

#: Updated once the marts of a load pass their checks; it triggers promo_measure.
MARTS = Asset(name=MARTS_ASSET_NAME, uri=MARTS_ASSET_URI)


PARAMS = {name: Param(**schema) for name, schema in form_schema().items()}

#: Tasks that can fail for a passing reason (the database, Spark, torchrun) try again after 1-2,
#: then 2-4 minutes (exponential backoff with Airflow's jitter). A bad parameter, a failed
#: quality gate or an infeasible plan do not.
RETRY = {"retries": 2, "retry_delay": timedelta(minutes=1), "retry_exponential_backoff": 2.0,
         "max_retry_delay": timedelta(minutes=10)}
HOUR = timedelta(hours=1)


def _schedule() -> str | None:
    """The weekly cron (PROMO_WEEKLY_SCHEDULE, default Monday 06:00 UTC); `none`: manual only."""
    value = os.environ.get("PROMO_WEEKLY_SCHEDULE", "0 6 * * 1").strip()
    if value.lower() in ("", "none"):
        return None
    from croniter import croniter

    if not croniter.is_valid(value):
        raise ValueError(f"PROMO_WEEKLY_SCHEDULE {value!r} is not a cron expression "
                         "(e.g. '0 6 * * 1') or 'none'.")
    return value


def _catchup() -> bool:
    value = os.environ.get("PROMO_WEEKLY_CATCHUP", "false").strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no", ""):
        raise ValueError(f"PROMO_WEEKLY_CATCHUP {value!r} is not true or false.")
    return value in ("true", "1", "yes")


def _dbt_full_refresh() -> bool:
    """PROMO_DBT_FULL_REFRESH=true: the dbt tasks rebuild the incremental marts from scratch
    (`--full-refresh`) instead of replacing their changed weeks (dbt_project/README.md)."""
    value = os.environ.get("PROMO_DBT_FULL_REFRESH", "false").strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no", ""):
        raise ValueError(f"PROMO_DBT_FULL_REFRESH {value!r} is not true or false.")
    return value in ("true", "1", "yes")


def _run(run: dict) -> Run:
    return Run.from_dict(run)


@contextmanager
def _no_retry(*errors: type[Exception]):
    """Fail at once on these errors (bad data, a failed audit): trying again cannot help."""
    try:
        yield
    except errors as error:
        raise AirflowFailException(str(error)) from error


@dag(
    dag_id="promo_weekly",
    schedule=_schedule(),
    start_date=datetime(2024, 1, 1),
    catchup=_catchup(),
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=12),
    params=PARAMS,
    tags=["promotions", "weekly"],
    default_args={"retries": 0, "execution_timeout": HOUR, "on_failure_callback": FailureAlert()},
    doc_md=__doc__,
)
def promo_weekly():
    @task
    def prepare_run(**context) -> dict:
        from promoflow.run import prepare_run

        run = context["dag_run"]  # a backfill plans the week of its logical date, as of then
        logical = context.get("logical_date")
        return prepare_run(context["params"], context["run_id"], run_type=str(run.run_type),
                           logical_date=logical.date() if logical else None,
                           ).to_dict()  # refuses bad values

    @task(**RETRY)
    def ingest(run: dict) -> dict:
        from ingest.load import IngestError, ingest_run

        with _no_retry(IngestError):
            return ingest_run(_run(run))

    @task
    def check_raw(run: dict) -> dict:
        from quality.checkpoints import check_raw

        return check_raw(_run(run))

    dbt_marts = DbtTaskGroup(
        group_id="dbt_marts",
        project_config=ProjectConfig(dbt_project_path=DBT_PROJECT,
                                     manifest_path=DBT_PROJECT / "target" / "manifest.json"),
        profile_config=ProfileConfig(
            profile_name="promoflow", target_name="local",
            profile_mapping=PostgresUserPasswordProfileMapping(
                conn_id=WAREHOUSE_CONN_ID, profile_args={"schema": "public"}),
        ),
        # dbt runs inside the task's process (dbtRunner): no dbt process start per model
        execution_config=ExecutionConfig(execution_mode=ExecutionMode.LOCAL,
                                         invocation_mode=InvocationMode.DBT_RUNNER),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.BUILD,
            # relationship tests between marts run in their own task once both sides are built
            should_detach_multiple_parents_tests=True,
            # one `dbt source freshness` task per raw table: no marts from a stale load
            source_rendering_behavior=SourceRenderingBehavior.WITH_TESTS_OR_FRESHNESS,
            # the marts' Asset is check_marts' outlet; no Asset per dbt model
            emit_datasets=False,
        ),
        operator_args={
            "install_deps": False,
            "full_refresh": _dbt_full_refresh(),
            # dbt's JSON artifacts (manifest, run results) and file log are written per task and
            # read by nobody: about 1 s of each task
            "dbt_cmd_global_flags": ["--no-write-json", "--log-level-file", "none"],
            **RETRY,
        },
    )

    @task(outlets=[MARTS])
    def check_marts(run: dict, *, outlet_events=None) -> dict:
        from quality.checkpoints import check_marts

        result = check_marts(_run(run))
        outlet_events[MARTS].extra = {"dataset": run["dataset"], "run_id": run["run_id"],
                                      "as_of": run.get("as_of", "")}
        return result

    @task
    def resolve_plan_week(run: dict) -> dict:
        from promoflow.run import resolve_plan_week

        return resolve_plan_week(_run(run)).to_dict()

    @task(**RETRY, execution_timeout=2 * HOUR)
    def spark_features(run: dict) -> dict:
        from promoflow.storage import StorageError
        from spark_jobs.run_all import build_features

        with _no_retry(StorageError):  # a full disk or unwritable lake waits for a person
            return build_features(_run(run))

    @task(**RETRY, execution_timeout=2 * HOUR)
    def segment_customers(run: dict) -> dict:
        from spark_jobs.customer_segments import segment_customers

        return segment_customers(_run(run))

    @task(**RETRY)
    def feast_materialize(run: dict) -> dict:
        from feature_repo.store import materialize_run

        return materialize_run(_run(run))

    @task
    def check_features(run: dict) -> dict:
        from quality.checkpoints import check_features

        return check_features(_run(run))

    @task(**RETRY)
    def training_sets(run: dict) -> dict:
        from feature_repo.training_sets import build_run_training_sets

        return build_run_training_sets(_run(run))

    @task_group
    def train(run: dict):
        @task(**RETRY, execution_timeout=2 * HOUR)
        def train_recommender(run: dict) -> dict:
            from training.launch import train_recommender

            return train_recommender(_run(run))

        @task(**RETRY, execution_timeout=2 * HOUR)
        def train_forecaster(run: dict) -> dict:
            from training.launch import train_forecaster

            return train_forecaster(_run(run))

        return [train_recommender(run), train_forecaster(run)]

    @task(**RETRY)
    def measure(run: dict) -> list[dict]:
        from measurement.measure import measure_before_planning

        return measure_before_planning(_run(run))

    @task
    def plan(run: dict) -> dict:
        from planning.run import make_plan

        return make_plan(_run(run))

    @task(**RETRY)
    def publish(run: dict) -> dict:
        from publish.publish import PublishAuditError, publish_run

        with _no_retry(PublishAuditError):
            return publish_run(_run(run))

    @task
    def report(run: dict) -> str:
        """The plan report (HTML) of the published run; after publish, so it never blocks it."""
        from report.plan_report import write_report

        return str(write_report(_run(run)))

    run = prepare_run()
    loaded = ingest(run)
    checked = check_marts(run)
    loaded >> check_raw(run) >> dbt_marts >> checked
    resolved = resolve_plan_week(run)
    checked >> resolved
    features = spark_features(resolved)
    store = feast_materialize(resolved)
    sets = training_sets(resolved)
    features >> store >> check_features(resolved) >> sets
    trained = train(resolved)
    sets >> trained
    planned = plan(resolved)
    features >> segment_customers(resolved) >> planned  # the plan will target by segment
    measure(resolved) >> planned
    trained >> planned >> publish(resolved) >> report(resolved)


promo_weekly()
