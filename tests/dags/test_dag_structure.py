"""The DAG parses without errors, fast, and keeps its reviewed structure."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from local.runner import airflow_env, dbt_parse

SNAPSHOT = Path(__file__).with_name("promo_weekly_structure.json")

PARSE = r"""
import json, time
start = time.time()
from airflow.dag_processing.dagbag import DagBag
bag = DagBag()
elapsed = time.time() - start
dag = bag.dags.get("promo_weekly")
measure = bag.dags.get("promo_measure")
print(json.dumps({
    "import_errors": {k: str(v) for k, v in bag.import_errors.items()},
    "elapsed": elapsed,
    "tags": sorted(dag.tags) if dag else None,
    "retries": dag.default_args.get("retries") if dag else None,
    "schedule": getattr(dag.timetable, "expression", None) if dag else None,
    "catchup": dag.catchup if dag else None,
    "max_active_runs": dag.max_active_runs if dag else None,
    "task_retries": {t.task_id: [t.retries, t.retry_exponential_backoff,
                                 t.retry_delay.total_seconds()] for t in dag.tasks} if dag else None,
    "timeouts_h": {t.task_id: t.execution_timeout.total_seconds() / 3600 for t in dag.tasks
                   if t.execution_timeout} if dag else None,
    "alerts": sorted({type(t.on_failure_callback[0]).__name__ for d in (dag, measure)
                      for t in d.tasks if t.on_failure_callback}) if dag and measure else None,
    "untimed_or_silent": sorted(t.task_id for d in (dag, measure) for t in d.tasks
                                if not t.on_failure_callback or not t.execution_timeout)
    if dag and measure else None,
    "measure_retries": measure.get_task("measure").retries if measure else None,
    "params": sorted(dag.params.keys()) if dag else None,
    "tasks": sorted(dag.task_ids) if dag else None,
    "edges": sorted(f"{t.task_id} -> {d}" for t in dag.tasks for d in sorted(t.downstream_task_ids)) if dag else None,
    "outlets": {t.task_id: sorted(o.uri for o in t.outlets) for t in dag.tasks if t.outlets} if dag else None,
    "measure_schedule": sorted(a.uri for a in measure.timetable.asset_condition.objects)
    if measure and hasattr(measure.timetable, "asset_condition") else None,
    "measure_params": sorted(measure.params.keys()) if measure else None,
    "measure_tasks": sorted(measure.task_ids) if measure else None,
}))
"""


def _parse(settings, **extra_env) -> dict:
    env = {**airflow_env(settings), **extra_env}
    result = subprocess.run([sys.executable, "-c", PARSE], check=False, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def parsed(settings):
    dbt_parse(airflow_env(settings))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMO_WEEKLY_")}
    with pytest.MonkeyPatch.context() as mp:  # the defaults, whatever this shell sets
        for key in set(os.environ) - set(env):
            mp.delenv(key)
        return _parse(settings)


def test_dag_imports_without_errors(parsed):
    assert parsed["import_errors"] == {}
    assert parsed["tags"] == ["promotions", "weekly"]
    assert parsed["retries"] == 0


def test_weekly_schedule_retries_timeouts_and_alerts(parsed):
    assert parsed["schedule"] == "0 6 * * 1"  # Monday 06:00 UTC
    assert parsed["catchup"] is False and parsed["max_active_runs"] == 1
    retries = parsed["task_retries"]
    # a bad parameter fails at once; transient failures (database, Spark, torchrun) are retried
    # with exponential backoff; quality gates and the plan are not retried
    assert retries["prepare_run"][0] == 0
    for task_id in ("ingest", "spark_features", "segment_customers", "feast_materialize",
                    "training_sets", "train.train_recommender", "train.train_forecaster",
                    "measure", "publish"):
        assert retries[task_id] == [2, 2.0, 60.0], task_id
    assert all(retries[t][0] == 2 for t in retries if t.startswith("dbt_marts."))
    for task_id in ("check_raw", "check_marts", "check_features", "plan"):
        assert retries[task_id][0] == 0, task_id
    assert parsed["timeouts_h"]["train.train_recommender"] == 2
    assert parsed["timeouts_h"]["prepare_run"] == 1
    # every task of both DAGs has a time limit and alerts on its last failed try
    assert parsed["untimed_or_silent"] == []
    assert parsed["alerts"] == ["FailureAlert"]
    assert parsed["measure_retries"] == 2


def test_schedule_from_environment(settings):
    manual = _parse(settings, PROMO_WEEKLY_SCHEDULE="none", PROMO_WEEKLY_CATCHUP="true")
    assert manual["schedule"] is None and manual["catchup"] is True
    bad = _parse(settings, PROMO_WEEKLY_SCHEDULE="every monday")
    errors = " ".join(bad["import_errors"].values())
    assert "PROMO_WEEKLY_SCHEDULE 'every monday' is not a cron expression" in errors


def test_weekly_marts_asset_triggers_promo_measure(parsed):
    # the checked marts are the weekly flow's only outlet, and the Asset schedules promo_measure
    assert parsed["outlets"] == {"check_marts": ["promoflow://warehouse/marts"]}
    assert parsed["measure_schedule"] == ["promoflow://warehouse/marts"]
    assert parsed["measure_params"] == ["dataset", "plan_week"]
    assert parsed["measure_tasks"] == ["measure", "report"]


def test_dag_structure_matches_snapshot(parsed):
    structure = {k: parsed[k] for k in ("params", "tasks", "edges")}
    if os.environ.get("PROMO_RECORD_SNAPSHOT"):  # re-record after a reviewed change
        SNAPSHOT.write_text(json.dumps(structure, indent=1) + "\n")
    assert structure == json.loads(SNAPSHOT.read_text()), (
        f"DAG structure changed; review the change, then re-record {SNAPSHOT.name} with "
        "PROMO_RECORD_SNAPSHOT=1")
