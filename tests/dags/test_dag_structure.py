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


@pytest.fixture(scope="module")
def parsed(settings):
    env = airflow_env(settings)
    dbt_parse(env)
    result = subprocess.run([sys.executable, "-c", PARSE], check=False, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_dag_imports_without_errors(parsed):
    assert parsed["import_errors"] == {}
    assert parsed["tags"] == ["promotions", "weekly"]
    assert parsed["retries"] == 0


def test_weekly_marts_asset_triggers_promo_measure(parsed):
    # the checked marts are the weekly flow's only outlet, and the Asset schedules promo_measure
    assert parsed["outlets"] == {"check_marts": ["promoflow://warehouse/marts"]}
    assert parsed["measure_schedule"] == ["promoflow://warehouse/marts"]
    assert parsed["measure_params"] == ["dataset", "plan_week"]
    assert parsed["measure_tasks"] == ["measure"]


def test_dag_structure_matches_snapshot(parsed):
    structure = {k: parsed[k] for k in ("params", "tasks", "edges")}
    if os.environ.get("PROMO_RECORD_SNAPSHOT"):  # re-record after a reviewed change
        SNAPSHOT.write_text(json.dumps(structure, indent=1) + "\n")
    assert structure == json.loads(SNAPSHOT.read_text()), (
        f"DAG structure changed; review the change, then re-record {SNAPSHOT.name} with "
        "PROMO_RECORD_SNAPSHOT=1")
