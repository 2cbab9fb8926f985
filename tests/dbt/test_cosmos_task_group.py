"""The weekly DAG's dbt task group on the tiny market, through Airflow and cosmos: one task per
model, dbt invoked in-process (dbtRunner), the marts updated incrementally on a second run.

Only the dbt_marts tasks run (`airflow dags test --mark-success-pattern`); raw is loaded first."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest.load import run_ingest
from local.runner import _ensure_airflow_db, airflow_env, dbt_parse
from promoflow.settings import Settings

log = logging.getLogger(__name__)

AIRFLOW = Path(sys.executable).parent / "airflow"


def _dbt_task_group(env: dict[str, str], log_file: Path) -> tuple[str, float]:
    """Run the DAG with every task outside dbt_marts marked successful; its log (also written
    to log_file) and seconds."""
    started = time.perf_counter()
    result = subprocess.run(
        [str(AIRFLOW), "dags", "test", "promo_weekly",
         "--mark-success-pattern", r"(?!dbt_marts\.).*"],
        env=env, capture_output=True, text=True, check=False, timeout=900)
    seconds = time.perf_counter() - started
    output = result.stdout + result.stderr
    log_file.write_text(output)
    assert result.returncode == 0, output[-5000:]
    return output, seconds


@pytest.mark.integration
def test_dbt_task_group_runs_in_process_and_incrementally(settings: Settings,
                                                         tiny_landing: Path) -> None:
    run_ingest(tiny_landing, "test_cosmos", settings)
    env = airflow_env(settings)
    env.pop("PROMO_DBT_FULL_REFRESH", None)
    _ensure_airflow_db(settings, env)
    dbt_parse(env)

    output, seconds = _dbt_task_group(env, settings.work_dir / "dbt_task_group_first.log")
    tasks = set(re.findall(r"starting task_id=(dbt_marts\.\S+)", output))
    log.info("dbt task group: %d tasks in %.1f s", len(tasks), seconds)
    # one task per model (tests run with their model), plus source freshness and the tests
    # between marts
    assert {"dbt_marts.order_lines_model_build", "dbt_marts.product_week_sales_model_build",
            "dbt_marts.raw_orders_source"} <= tasks
    assert output.count("Trying to run dbtRunner with") >= len(tasks)
    assert "Trying to run the command" not in output  # no dbt subprocess
    assert "failed" not in " ".join(re.findall(r"state=\S+", output)).lower()
    assert re.search(r"marts\.order_lines: \d+ week\(s\) replaced", output) is None  # built new

    output, seconds = _dbt_task_group(env, settings.work_dir / "dbt_task_group_again.log")
    log.info("dbt task group again: %.1f s", seconds)
    for mart in ("order_lines", "product_week_sales"):
        assert re.search(rf"marts\.{mart}: 0 week\(s\) replaced", output), mart
