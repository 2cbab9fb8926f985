"""Great Expectations quality gates on the marts and on the Spark feature Parquet.

    from quality.checkpoints import validate_marts, validate_features

Each gate builds (re-runnably) a suite in Python, a validation definition and a checkpoint in
a file context under `settings.gx_dir`, runs it, rebuilds Data Docs in `settings.gx_dir /
"data_docs"`, and raises `QualityGateFailed` naming every failed expectation when the data does
not pass. Great Expectations is imported inside the functions so that importing this module
(for example while Airflow parses a DAG) stays cheap.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from promoflow.settings import Settings, get_settings

log = logging.getLogger("quality.checkpoints")

DATA_DOCS_SITE = "promoflow_docs"
PASSWORD_VARIABLE = "PROMO_PG_PASSWORD"

MARTS_TABLE = "product_week_sales"
FEATURES_TABLE = "product_week_features"
FEATURE_LAG_COLUMNS = ("units_lag_1", "units_lag_2", "units_lag_4", "units_lag_52")


class QualityGateFailed(RuntimeError):
    """A checkpoint ran and at least one expectation failed."""


# --- suites --------------------------------------------------------------------------------
def marts_expectations() -> list[Any]:
    """Expectations on marts.product_week_sales (one row per product and week)."""
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnValuesToNotBeNull(column="product_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="week_start"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["product_id", "week_start"]),
        gxe.ExpectColumnValuesToBeBetween(column="units", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(
            column="discount_depth", min_value=0, max_value=1, strict_max=True
        ),
        gxe.ExpectColumnValuesToBeBetween(column="avg_paid_price", min_value=0),
        gxe.ExpectColumnValuesToBeInSet(column="is_promoted", value_set=[True, False]),
    ]


def features_expectations() -> list[Any]:
    """Expectations on the product_week_features Parquet (one row per product and week)."""
    import great_expectations.expectations as gxe

    lags = [
        gxe.ExpectColumnValuesToBeBetween(column=name, min_value=0) for name in FEATURE_LAG_COLUMNS
    ]
    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnValuesToNotBeNull(column="product_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="event_timestamp"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["product_id", "event_timestamp"]),
        *lags,
        gxe.ExpectColumnValuesToBeBetween(
            column="discount_depth", min_value=0, max_value=1, strict_max=True
        ),
        gxe.ExpectColumnValuesToBeBetween(column="week_of_year", min_value=1, max_value=53),
    ]


# --- context -------------------------------------------------------------------------------
def _context(settings: Settings):
    """The file context under settings.gx_dir, with the Data Docs site in gx_dir/data_docs."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    settings.gx_dir.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=str(settings.gx_dir))
    site_config = {
        "class_name": "SiteBuilder",
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(data_docs_dir(settings)),
        },
    }
    site_names = context.get_site_names()
    if "local_site" in site_names:  # the default site of a new project, inside gx/uncommitted
        context.delete_data_docs_site("local_site")
    if DATA_DOCS_SITE in site_names:
        context.update_data_docs_site(DATA_DOCS_SITE, site_config)
    else:
        context.add_data_docs_site(DATA_DOCS_SITE, site_config)
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.variables.save()
    return context


def data_docs_dir(settings: Settings) -> Path:
    return settings.gx_dir / "data_docs"


def _postgres_connection_string(settings: Settings, schema: str) -> str:
    """A connection string to one schema whose password GX reads from the environment.

    The YAML of the GX project keeps `${PROMO_PG_PASSWORD}`, never the password itself; when
    the variable is unset (the embedded local run), it is set from the settings for this process.
    """
    os.environ.setdefault(PASSWORD_VARIABLE, settings.pg_password)
    return (
        f"postgresql+psycopg2://{quote(settings.pg_user, safe='')}:${{{PASSWORD_VARIABLE}}}"
        f"@{settings.pg_host}:{settings.pg_port}/{quote(settings.pg_db, safe='')}"
        f"?options=-csearch_path%3D{schema}"
    )


def _run_checkpoint(
    context,
    gate: str,
    batch_definition,
    expectations: list[Any],
    settings: Settings,
    batch_parameters: dict | None = None,
) -> dict:
    """Register suite, validation definition and checkpoint (add or update), run, summarize."""
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction

    suite = context.suites.add_or_update(
        gx.ExpectationSuite(name=f"{gate}_suite", expectations=expectations)
    )
    validation = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=f"{gate}_validation", data=batch_definition, suite=suite)
    )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=f"{gate}_checkpoint",
            validation_definitions=[validation],
            actions=[UpdateDataDocsAction(name="update_data_docs", site_names=[DATA_DOCS_SITE])],
            result_format={"result_format": "SUMMARY"},
        )
    )
    started = time.perf_counter()
    result = checkpoint.run(batch_parameters=batch_parameters)
    elapsed = time.perf_counter() - started

    table = batch_definition.data_asset.name
    validation_results = list(result.run_results.values())
    evaluated = sum(r.statistics["evaluated_expectations"] for r in validation_results)
    docs_index = data_docs_dir(settings) / "index.html"
    if not result.success:
        failures = [
            _describe_failure(table, r)
            for vr in validation_results
            for r in vr.results
            if not r.success
        ]
        raise QualityGateFailed(
            f"Quality gate '{gate}' failed: "
            + "; ".join(failures)
            + f" (see Data Docs at {docs_index})."
        )
    log.info(
        "Quality gate '%s' passed: %d expectations on %s in %.1fs", gate, evaluated, table, elapsed
    )
    return {
        "suite": suite.name,
        "success": True,
        "evaluated_expectations": evaluated,
        "data_docs": str(docs_index),
    }


def _describe_failure(table: str, expectation_result) -> str:
    """'<expectation> on <table>.<column>: <n> unexpected rows' (or the observed value)."""
    config = expectation_result.expectation_config
    kwargs = config.kwargs
    column = kwargs.get("column") or ",".join(kwargs.get("column_list") or []) or None
    target = f"{table}.{column}" if column else table
    details = expectation_result.result or {}
    if expectation_result.exception_info and expectation_result.exception_info.get(
        "raised_exception"
    ):
        message = expectation_result.exception_info.get("exception_message", "").splitlines()
        outcome = f"error: {message[0] if message else 'unknown'}"
    elif details.get("unexpected_count") is not None:
        outcome = f"{details['unexpected_count']} unexpected rows"
    else:
        outcome = f"observed {details.get('observed_value')!r}"
    return f"{config.type} on {target}: {outcome}"


# --- gates ---------------------------------------------------------------------------------
def validate_marts(settings: Settings | None = None) -> dict:
    """Validate marts.product_week_sales; raise QualityGateFailed when it does not pass."""
    settings = settings or get_settings()
    context = _context(settings)
    datasource = context.data_sources.add_or_update_postgres(
        name="marts", connection_string=_postgres_connection_string(settings, "marts")
    )
    asset = datasource.add_table_asset(name=MARTS_TABLE, table_name=MARTS_TABLE)
    batch_definition = asset.add_batch_definition_whole_table("whole_table")
    return _run_checkpoint(context, "marts", batch_definition, marts_expectations(), settings)


def validate_features(settings: Settings | None = None) -> dict:
    """Validate lake/features/product_week_features; raise QualityGateFailed when it fails."""
    import pandas as pd

    settings = settings or get_settings()
    path = settings.lake_dir / "features" / FEATURES_TABLE
    if not path.exists():
        raise FileNotFoundError(
            f"Feature Parquet {path} does not exist; run the Spark feature "
            "jobs (python -m spark_jobs.run_all) first."
        )
    frame = pd.read_parquet(path)
    context = _context(settings)
    datasource = context.data_sources.add_or_update_pandas(name="lake")
    asset = datasource.add_dataframe_asset(name=FEATURES_TABLE)
    batch_definition = asset.add_batch_definition_whole_dataframe("whole_dataframe")
    return _run_checkpoint(
        context,
        "features",
        batch_definition,
        features_expectations(),
        settings,
        batch_parameters={"dataframe": frame},
    )
