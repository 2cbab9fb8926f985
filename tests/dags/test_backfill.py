"""An Airflow backfill over a range of weeks: one run per Monday of the weekly schedule, each of
which plans the week of its logical date with the data as of that Monday (promoflow.run)."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from local.runner import _ensure_airflow_db, airflow_env, dbt_parse
from promoflow.run import RunParams, backfill_values

AIRFLOW = Path(sys.executable).parent / "airflow"


@pytest.mark.integration
def test_a_backfill_plans_each_week_of_its_range_as_of_its_monday(settings):
    env = airflow_env(settings)
    env.pop("PROMO_WEEKLY_SCHEDULE", None)  # the default weekly schedule: Monday 06:00 UTC
    _ensure_airflow_db(settings, env)
    dbt_parse(env)
    reserialized = subprocess.run([str(AIRFLOW), "dags", "reserialize"], env=env,
                                  capture_output=True, text=True, check=False)
    assert reserialized.returncode == 0, reserialized.stderr[-3000:]
    result = subprocess.run(
        [str(AIRFLOW), "backfill", "create", "--dag-id", "promo_weekly", "--from-date",
         "2026-10-28", "--to-date", "2026-11-20", "--dry-run"],
        env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    logical = sorted({date.fromisoformat(day) for day in
                      re.findall(r"(\d{4}-\d{2}-\d{2})[T ]06:00", result.stdout)})
    assert logical == [date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 16)], result.stdout
    for day in logical:
        params = RunParams.from_mapping(backfill_values({"dataset": "tiny", "plan_week": None},
                                                        day))
        assert params.plan_week == day and params.as_of == day
