"""The run contract: every parameter of a weekly run, the run that tasks pass on, its folder.

- `RunParams` holds every parameter an operator sets, each with its type, default, bounds and
  help text, and the discount grid derived from them. The Airflow form (`form_schema`), the
  local runner's CLI (`add_cli_arguments`), validation, planning, the forecaster's candidate
  levels and publish all read it: adding a parameter is one field here.
- `Run` is a run id plus its parameters (plan week resolved once the marts are built); it is
  what every stage's entry point takes, and its `to_dict()` JSON travels through XCom.
- `RunFolder` names every file a run writes and reads; no stage spells a file name.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import os
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date, timedelta
from pathlib import Path

from promoflow.settings import Settings, get_settings
from promoflow.weeks import check_monday, plan_week_after

log = logging.getLogger(__name__)

#: The Asset the weekly flow updates once a load's marts pass their checks (promo_weekly ->
#: promo_measure); its event's extra names the dataset.
MARTS_ASSET_NAME = "warehouse_marts"
MARTS_ASSET_URI = "promoflow://warehouse/marts"
DATASET_PATTERN = r"^[A-Za-z0-9_.-]+$"
PLAN_WEEK_PATTERN = r"^(\d{4}-\d{2}-\d{2})?$"
#: The recommender is evaluated on the last weeks before the plan week; the training-set stage
#: writes the feature snapshots as of their start (plan week minus these weeks), which the
#: evaluated model reads (docs/recommender.md).
RECOMMENDER_HOLDOUT_WEEKS = 4


class RunConfigError(ValueError):
    """A run parameter or input location is wrong (the message is one sentence)."""


def _param(default, help: str, example: str, *, low: float | None = None,
           high: float | None = None, pattern: str | None = None):
    return field(default=default, metadata={"help": help, "example": example, "low": low,
                                            "high": high, "pattern": pattern})


@dataclass(frozen=True)
class ParamSpec:
    """One run parameter as the form and the CLI show it."""

    name: str
    kind: str  # "integer", "number", "string" or "date"
    default: object
    help: str
    example: str
    low: float | None
    high: float | None
    pattern: str | None

    @property
    def form_default(self) -> object:
        return "" if self.kind == "date" and self.default is None else self.default


@dataclass(frozen=True)
class RunParams:
    """Every parameter of a weekly run, typed and checked on construction."""

    dataset: str = _param("demo", "Folder under the landing area holding the raw files.",
                          "a folder name such as demo", pattern=DATASET_PATTERN)
    plan_week: date | None = _param(
        None, "Monday starting the plan week (YYYY-MM-DD); empty: the week after the data.",
        "a Monday as YYYY-MM-DD", pattern=PLAN_WEEK_PATTERN)
    as_of: date | None = _param(
        None, "Replay: a Monday (YYYY-MM-DD); only the data dated before it (00:00 UTC) is "
        "loaded, as it stood then; empty: all the landed data.", "a Monday as YYYY-MM-DD",
        pattern=PLAN_WEEK_PATTERN)
    budget: float = _param(5000.0, "Promotion budget: discount money given away on the units "
                           "sold, held at 90% confidence.",
                           "the discount money to give away, e.g. 5000", low=0, high=1e9)
    max_discount: float = _param(0.3, "Deepest discount allowed (0.3 = 30% off).",
                                 "e.g. 0.3 for 30% off", low=0, high=0.9)
    discount_step: float = _param(
        0.05, "Step of the discount grid: the candidate levels are its multiples up to the "
        "maximum discount.", "e.g. 0.05 for 5% steps", low=0.01, high=0.5)
    margin_floor: float = _param(0.05, "Minimum margin rate of a promoted price.",
                                 "e.g. 0.05 for a 5% margin", low=0, high=0.9)
    max_promos_per_category: int = _param(5, "At most this many promoted products per category.",
                                          "promoted products per category", low=0, high=10_000)
    audience_size: int = _param(200, "Customers targeted per promoted product.",
                                "customers targeted per promoted product", low=1, high=1_000_000)
    holdout_fraction: float = _param(
        0.1, "Share of targeted customers kept untreated to measure uplift.",
        "e.g. 0.1 keeps 10% of targeted customers untreated", low=0, high=0.5)
    max_offers_per_customer: int = _param(
        2, "At most this many personal (coupon) offers per customer in a week; 0: no offers.",
        "offers per customer per week, 0 for none", low=0, high=100)
    epochs: int = _param(0, "Training epochs per model; 0 keeps each model's default.",
                         "0 for each model's default", low=0, high=1000)
    seed: int = _param(42, "Seed of every random choice.", "any whole number", low=0,
                       high=2**31 - 1)

    def __post_init__(self) -> None:
        for spec in param_specs():
            object.__setattr__(self, spec.name, _checked(spec, getattr(self, spec.name)))
        if self.as_of and self.plan_week and self.as_of > self.plan_week:
            raise RunConfigError(f"as_of {self.as_of} is after the plan week {self.plan_week}; "
                                 "a plan may only use data from before its week.")

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> RunParams:
        """Parameters from a form, a CLI or XCom; unknown names are refused."""
        values = dict(values)
        unknown = sorted(set(values) - {spec.name for spec in param_specs()})
        if unknown:
            raise RunConfigError(f"Unknown parameter(s) {', '.join(unknown)}; see the DAG's form.")
        return cls(**values)

    @property
    def discount_levels(self) -> tuple[float, ...]:
        """Candidate discount depths, 0 (no promotion) first, in steps up to max_discount."""
        count = math.floor(self.max_discount / self.discount_step + 1e-9)
        return tuple(round(i * self.discount_step, 6) for i in range(count + 1))

    def to_dict(self) -> dict:
        """JSON-ready values (dates as YYYY-MM-DD, or "" when not set)."""
        record = {spec.name: getattr(self, spec.name) for spec in param_specs()}
        for name in ("plan_week", "as_of"):
            value = getattr(self, name)
            record[name] = value.isoformat() if value else ""
        return record


@functools.cache
def param_specs() -> tuple[ParamSpec, ...]:
    """Every run parameter in form order."""
    hints = typing.get_type_hints(RunParams)
    kinds = {int: "integer", float: "number", str: "string", date | None: "date"}
    return tuple(ParamSpec(name=f.name, kind=kinds[hints[f.name]], default=f.default, **f.metadata)
                 for f in fields(RunParams))


def _checked(spec: ParamSpec, value: object) -> object:
    """`value` typed and within bounds, or a one-line RunConfigError saying what to give."""
    if spec.kind == "date":
        return _checked_date(spec, value)
    if spec.kind == "string":
        if not isinstance(value, str) or not re.fullmatch(spec.pattern, value) or value in (".", ".."):
            raise RunConfigError(f"{spec.name} {value!r} is not a folder name (letters, digits, "
                                 "_ . - only).")
        return value
    integer = spec.kind == "integer"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RunConfigError(f"{spec.name} {value!r} is not a number; give {spec.example}.")
    try:
        number = value if isinstance(value, int) else float(value)
    except ValueError:
        raise RunConfigError(f"{spec.name} {value!r} is not a number; give {spec.example}.") from None
    if integer and not float(number).is_integer():
        raise RunConfigError(f"{spec.name} {number:g} is not a whole number; give {spec.example}.")
    if not spec.low <= number <= spec.high:  # also refuses NaN
        raise RunConfigError(f"{spec.name} {number:g} is outside [{spec.low:g}, {spec.high:g}]; "
                             f"give {spec.example}.")
    return int(number) if integer else float(number)


def _checked_date(spec: ParamSpec, value: object) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            pass
    if not isinstance(value, date):
        raise RunConfigError(f"{spec.name} {value!r} is not a date; use YYYY-MM-DD.")
    try:
        return check_monday(value, spec.name)
    except ValueError as error:
        raise RunConfigError(str(error)) from None


def form_schema() -> dict[str, dict]:
    """Keyword arguments of an Airflow `Param` per parameter (JSON schema with bounds). An
    optional date (empty by default) also takes null: the trigger form can be sent empty."""
    schema = {}
    for spec in param_specs():
        kind = ["null", "string"] if spec.kind == "date" else spec.kind
        entry = {"default": spec.form_default, "type": kind, "description": spec.help}
        if spec.low is not None:
            entry.update(minimum=spec.low, maximum=spec.high)
        if spec.pattern:
            entry["pattern"] = spec.pattern
        schema[spec.name] = entry
    return schema


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """One `--name` option per parameter; values are checked by RunParams, as in the form."""
    for spec in param_specs():
        default = spec.form_default if spec.form_default != "" else "empty"
        parser.add_argument(f"--{spec.name.replace('_', '-')}", dest=spec.name, default=None,
                            metavar=spec.kind.upper(), help=f"{spec.help} Default: {default}.")


def params_from_cli(args: argparse.Namespace) -> RunParams:
    """The RunParams of options parsed by a parser given `add_cli_arguments`."""
    given = {spec.name: getattr(args, spec.name) for spec in param_specs()
             if getattr(args, spec.name, None) is not None}
    return RunParams.from_mapping(given)


@dataclass(frozen=True)
class RunFolder:
    """The files of one run (docs/architecture.md, "Training sets" and "Model outputs")."""

    path: Path

    # written by prepare_run and resolve_plan_week
    @property
    def run_file(self) -> Path:
        return self.path / "run.json"

    # training sets (feature_repo)
    @property
    def forecaster_train(self) -> Path:
        return self.path / "forecaster_train.parquet"

    @property
    def forecaster_score(self) -> Path:
        return self.path / "forecaster_score.parquet"

    @property
    def recommender_interactions(self) -> Path:
        return self.path / "recommender_interactions.parquet"

    @property
    def recommender_customers(self) -> Path:
        return self.path / "recommender_customers.parquet"

    @property
    def recommender_products(self) -> Path:
        return self.path / "recommender_products.parquet"

    # the same snapshots as of the recommender's holdout start (stamped in event_timestamp)
    @property
    def recommender_customers_at_holdout(self) -> Path:
        return self.path / "recommender_customers_at_holdout.parquet"

    @property
    def recommender_products_at_holdout(self) -> Path:
        return self.path / "recommender_products_at_holdout.parquet"

    # model outputs (training)
    @property
    def forecasts(self) -> Path:
        return self.path / "forecasts.parquet"

    @property
    def recommendations(self) -> Path:
        return self.path / "recommendations.parquet"

    def metrics(self, model: str) -> Path:
        """Holdout metrics of `model` ("forecaster" or "recommender") next to its baseline's."""
        return self.path / f"{model}_metrics.json"

    # customer segments (spark_jobs.customer_segments); customer_segments is a Parquet folder
    @property
    def customer_segments(self) -> Path:
        return self.path / "customer_segments.parquet"

    @property
    def segment_profiles(self) -> Path:
        return self.path / "segment_profiles.parquet"

    # plan (planning)
    @property
    def plan(self) -> Path:
        return self.path / "plan.json"

    @property
    def plan_lines(self) -> Path:
        return self.path / "plan_lines.parquet"

    @property
    def plan_targets(self) -> Path:
        return self.path / "plan_targets.parquet"

    @property
    def plan_offers(self) -> Path:
        return self.path / "plan_offers.parquet"

    def read_run(self) -> Run:
        if not self.run_file.exists():
            raise RunConfigError(f"{self.run_file} does not exist; this folder holds no prepared run.")
        return Run.from_dict(json.loads(self.run_file.read_text()))

    def write_json(self, path: Path, record: dict) -> None:
        """Write `record` to `path` through a temporary file, so readers never see half a file."""
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")
        os.replace(tmp, path)


@dataclass(frozen=True)
class Run:
    """One run of the weekly flow: its id and parameters."""

    run_id: str
    params: RunParams = field(default_factory=RunParams)

    @property
    def plan_week(self) -> date:
        """The resolved plan week (after `resolve_plan_week`)."""
        if self.params.plan_week is None:
            raise RunConfigError(f"run {self.run_id} has no plan week yet; resolve it first.")
        return self.params.plan_week

    def folder(self, settings: Settings | None = None) -> RunFolder:
        return RunFolder((settings or get_settings()).runs_dir / self.run_id)

    def source_dir(self, settings: Settings | None = None) -> Path:
        return (settings or get_settings()).landing_dir / self.params.dataset

    def with_plan_week(self, plan_week: date) -> Run:
        return replace(self, params=replace(self.params, plan_week=plan_week))

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, **self.params.to_dict()}

    @classmethod
    def from_dict(cls, record: Mapping[str, object]) -> Run:
        values = dict(record)
        run_id = str(values.pop("run_id", ""))
        if not run_id:
            raise RunConfigError("a run needs a run_id.")
        return cls(run_id=run_id, params=RunParams.from_mapping(values))


def run_id_from(airflow_run_id: str) -> str:
    """A filesystem- and SQL-friendly id derived from the orchestrator's run id."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", airflow_run_id).strip("_")[:120]


def validate_params(values: Mapping[str, object], settings: Settings | None = None) -> RunParams:
    """The parameters checked and typed, and their landing folder found; else RunConfigError."""
    params = RunParams.from_mapping(values)
    source_dir = (settings or get_settings()).landing_dir / params.dataset
    if not source_dir.is_dir():
        raise RunConfigError(
            f"Landing folder {source_dir} does not exist; create it first (make data "
            f"PRESET=tiny|demo|completejourney, see README) or pick another dataset."
        )
    return params


def backfill_values(values: Mapping[str, object], logical_date: date) -> dict[str, object]:
    """The parameters of a backfill run: its plan week is the Monday of its logical date,
    replayed as of that Monday (only the data dated before it), unless the run's conf set them."""
    week = logical_date - timedelta(days=logical_date.weekday())
    values = dict(values)
    values["plan_week"] = values.get("plan_week") or week.isoformat()
    values["as_of"] = values.get("as_of") or values["plan_week"]
    return values


def prepare_run(values: Mapping[str, object], airflow_run_id: str,
                settings: Settings | None = None, *, run_type: str = "manual",
                logical_date: date | None = None) -> Run:
    """Check the parameters and the landing folder before any work; write the run's run.json.
    A backfill run (run_type "backfill") plans the week of its logical date as of then."""
    s = settings or get_settings()
    if run_type == "backfill" and logical_date is not None:
        values = backfill_values(values, logical_date)
    run = Run(run_id=run_id_from(airflow_run_id), params=validate_params(values, s))
    folder = run.folder(s)
    folder.write_json(folder.run_file, run.to_dict())
    log.info("Run %s on dataset %s prepared in %s", run.run_id, run.params.dataset, folder.path)
    return run


def resolve_plan_week(run: Run, settings: Settings | None = None) -> Run:
    """The run with its plan week: the one asked for, or the week after the marts' last week."""
    from promoflow.warehouse import connect

    if run.params.plan_week is None:
        with connect(settings) as conn, conn.cursor() as cur:
            cur.execute("select max(week_start) from marts.product_week_sales")
            (last_week,) = cur.fetchone()
        if last_week is None:
            raise RunConfigError("marts.product_week_sales is empty: the landing files hold no sales.")
        run = run.with_plan_week(plan_week_after(last_week))
        log.info("Plan week resolved to %s (the week after the data)", run.plan_week)
    folder = run.folder(settings)
    folder.write_json(folder.run_file, run.to_dict())
    return run
