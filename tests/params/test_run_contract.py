"""The run contract is the one source of every parameter: the Airflow form, the local runner's
CLI, the planner and the plan record agree with it on every default and bound."""

from __future__ import annotations

import argparse
import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from planning.optimize import candidate_table
from planning.run import PLAN_PARAMS
from promoflow.run import (
    Run,
    RunConfigError,
    RunParams,
    add_cli_arguments,
    param_specs,
    params_from_cli,
)
from promoflow.settings import Settings
from publish.publish import PLAN_COLUMNS

NUMERIC = [spec for spec in param_specs() if spec.low is not None]


@pytest.fixture(scope="module")
def form(settings: Settings) -> dict:
    from local.runner import airflow_env, dbt_parse

    dbt_parse(airflow_env(settings))  # the DAG file renders its dbt tasks from the manifest
    from dags.promo_weekly import PARAMS

    return PARAMS


def cli(*argv: str) -> RunParams:
    parser = argparse.ArgumentParser()
    add_cli_arguments(parser)
    return params_from_cli(parser.parse_args(list(argv)))


def outside(spec) -> list[float]:
    step = 1 if spec.kind == "integer" else 1e-6 * max(1.0, spec.high)
    return [spec.low - step, spec.high + step]


def test_form_has_every_parameter_with_its_default_and_bounds(form: dict) -> None:
    assert list(form) == [spec.name for spec in param_specs()]
    for spec in param_specs():
        param = form[spec.name]
        assert param.value == spec.form_default, spec.name
        assert param.description == spec.help
        assert param.schema.get("minimum") == spec.low and param.schema.get("maximum") == spec.high
        assert param.schema.get("pattern") == spec.pattern


def test_form_and_cli_accept_the_bounds_and_refuse_past_them(form: dict) -> None:
    from airflow.sdk.definitions.param import ParamValidationError

    for spec in NUMERIC:
        for value in (spec.low, spec.high):
            value = int(value) if spec.kind == "integer" else float(value)
            form[spec.name].resolve(value)
            assert getattr(cli(f"--{spec.name.replace('_', '-')}={value}"), spec.name) == value
        for value in outside(spec):
            with pytest.raises(ParamValidationError):
                form[spec.name].resolve(value)
            with pytest.raises(RunConfigError, match=f"^{spec.name} .* is outside"):
                cli(f"--{spec.name.replace('_', '-')}={value}")


def test_form_and_cli_refuse_the_same_plan_weeks(form: dict) -> None:
    from airflow.sdk.definitions.param import ParamValidationError

    for value in ("20261116", "2026-W47-1", "16/11/2026", "2026-11-16T00:00"):
        with pytest.raises(ParamValidationError):
            form["plan_week"].resolve(value)
        with pytest.raises(RunConfigError, match="is not a date"):
            cli("--plan-week", value)
    form["plan_week"].resolve("2026-11-16")
    assert cli("--plan-week", "2026-11-16").plan_week == date(2026, 11, 16)


def test_cli_defaults_are_the_contract_defaults() -> None:
    assert cli() == RunParams()


def test_run_json_round_trips_as_xcom_would() -> None:
    run = Run("manual__2026-11-16", RunParams(dataset="tiny", plan_week=date(2026, 11, 16),
                                              budget=250, audience_size=500))
    again = Run.from_dict(json.loads(json.dumps(run.to_dict())))
    assert again == run and again.params.budget == 250.0 and again.plan_week == date(2026, 11, 16)


def test_planner_offers_exactly_the_contract_levels() -> None:
    params = RunParams(max_discount=0.35, discount_step=0.05, plan_week=date(2026, 11, 16))
    assert params.discount_levels == (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35)
    grid = np.round(np.arange(0, 0.91, 0.05), 6)
    forecasts = pd.DataFrame({"product_id": 1, "week_start": params.plan_week,
                              "discount_depth": grid, "units_p10": 5.0, "units_p50": 10.0 + grid,
                              "units_p90": 15.0 + grid})
    products = pd.DataFrame({"product_id": [1], "category": ["c"], "list_price": [10.0],
                             "unit_cost": [2.0], "on_hand_units": [100]})
    levels = candidate_table(forecasts, products, params)["discount_depth"]
    assert tuple(levels) == params.discount_levels
    assert RunParams().discount_levels == (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)


def test_plan_records_and_publishes_every_plan_parameter() -> None:
    names = {spec.name for spec in param_specs()}
    assert set(PLAN_PARAMS) <= names and set(PLAN_PARAMS) <= set(PLAN_COLUMNS)
    assert names - set(PLAN_PARAMS) == {"epochs"}  # a training choice, not part of the plan
