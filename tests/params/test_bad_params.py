"""Bad run parameters are refused in one line before any work starts (the DAG's form, the
run preparation and the local runner), and nothing is created or published."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from promoflow.run import RunConfigError, prepare_run, validate_params
from promoflow.settings import Settings

GOOD = {"dataset": "tiny", "plan_week": "", "budget": 400.0, "max_discount": 0.3,
        "margin_floor": 0.05, "max_promos_per_category": 3, "audience_size": 30,
        "holdout_fraction": 0.2, "epochs": 0, "seed": 42}

BAD = [
    ("negative_budget", {"budget": -5}, "budget -5 is outside [0, 1e+09]"),
    ("budget_not_a_number", {"budget": "lots"}, "budget 'lots' is not a number"),
    ("budget_nan", {"budget": float("nan")}, "budget nan is outside"),
    ("budget_bool", {"budget": True}, "budget True is not a number"),
    ("discount_over_100_percent", {"max_discount": 1.5}, "max_discount 1.5 is outside [0, 0.9]"),
    ("negative_discount", {"max_discount": -0.1}, "max_discount -0.1 is outside"),
    ("margin_floor_too_high", {"margin_floor": 0.95}, "margin_floor 0.95 is outside [0, 0.9]"),
    ("holdout_too_large", {"holdout_fraction": 0.8}, "holdout_fraction 0.8 is outside [0, 0.5]"),
    ("audience_zero", {"audience_size": 0}, "audience_size 0 is outside [1, 1e+06]"),
    ("audience_fractional", {"audience_size": 2.5}, "audience_size 2.5 is not a whole number"),
    ("promos_negative", {"max_promos_per_category": -1}, "max_promos_per_category -1 is outside"),
    ("seed_negative", {"seed": -3}, "seed -3 is outside"),
    ("plan_week_not_a_date", {"plan_week": "next week"}, "plan_week 'next week' is not a date"),
    ("plan_week_not_monday", {"plan_week": "2026-11-18"}, "plan_week 2026-11-18 is not a Monday"),
    ("plan_week_basic_format", {"plan_week": "20261116"}, "plan_week '20261116' is not a date"),
    ("plan_week_iso_week", {"plan_week": "2026-W47-1"}, "plan_week '2026-W47-1' is not a date"),
    ("discount_step_zero", {"discount_step": 0}, "discount_step 0 is outside [0.01, 0.5]"),
    ("dataset_path_escape", {"dataset": "../etc"}, "dataset '../etc' is not a folder name"),
    ("dataset_trailing_newline", {"dataset": "demo\n"}, "dataset 'demo\\n' is not a folder name"),
    ("dataset_missing", {"dataset": "nowhere"}, "Landing folder"),
    ("epochs_too_many", {"epochs": 5000}, "epochs 5000 is outside [0, 1000]"),
    ("unknown_parameter", {"budgett": 5}, "Unknown parameter(s) budgett"),
]


@pytest.mark.parametrize(("change", "message"), [pytest.param(c, m, id=i) for i, c, m in BAD])
def test_bad_params_are_refused_before_any_work(
    settings: Settings, tiny_landing: Path, change: dict, message: str
) -> None:
    runs_before = sorted(settings.runs_dir.glob("*")) if settings.runs_dir.exists() else []
    with pytest.raises(RunConfigError) as refused:
        prepare_run({**GOOD, **change}, "manual__bad_params", settings)
    text = str(refused.value)
    assert message in text
    assert "\n" not in text
    runs_after = sorted(settings.runs_dir.glob("*")) if settings.runs_dir.exists() else []
    assert runs_after == runs_before  # no run folder was created


def test_good_params_are_typed(settings: Settings, tiny_landing: Path) -> None:
    checked = validate_params({**GOOD, "budget": "250", "audience_size": "40"}, settings)
    assert checked.budget == 250.0 and checked.audience_size == 40


def test_the_dag_form_uses_the_same_bounds(settings: Settings) -> None:
    from airflow.sdk.definitions.param import ParamValidationError

    from local.runner import airflow_env, dbt_parse

    dbt_parse(airflow_env(settings))  # the DAG file renders its dbt tasks from the manifest
    from dags.promo_weekly import PARAMS

    PARAMS["budget"].resolve(5000.0)
    for name, value in [("budget", -5), ("max_discount", 1.5), ("holdout_fraction", 0.8),
                        ("audience_size", 0), ("plan_week", "18/11/2026"), ("dataset", "../x")]:
        with pytest.raises(ParamValidationError):
            PARAMS[name].resolve(value)


def test_local_runner_refuses_in_one_line(settings: Settings, tiny_landing: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "local.runner", "weekly", "--dataset", "tiny",
         "--budget", "-5"],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "error: budget -5 is outside [0, 1e+09]; give the discount money to give away, "
        "e.g. 5000."
    )
    assert "airflow db migrate" not in result.stderr  # refused before Airflow starts
