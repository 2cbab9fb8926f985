"""Great Expectations quality gates on raw, on the marts and on the Spark feature Parquet.

    from quality.checkpoints import check_raw, check_marts, check_features  # a run's gates
    from quality.checkpoints import validate_raw, validate_marts, validate_features

A gate validates several tables; each table has a suite built (re-runnably) in Python, a
validation definition and a checkpoint in a file context under `settings.gx_dir`. Every run
rebuilds Data Docs in `settings.gx_dir / "data_docs"` and, when any expectation of any table
fails, raises `QualityGateFailed` naming every failed expectation, so the Airflow task fails
and nothing downstream (training, planning, publishing) runs. Great Expectations is imported
inside the functions so that importing this module (for example while Airflow parses a DAG)
stays cheap.

Gates:
- raw (after ingest): keys unique, required columns set and allowed values as the raw contract
  says, prices and quantities in range, no consent withdrawn before it was given, no order in
  the future of the run, and the run's ingest
  accounting: the quarantined share of each table at most `PROMO_MAX_QUARANTINE_SHARE` (0.05)
  and each table's loaded rows within `PROMO_MAX_ROW_COUNT_CHANGE` (0.5, i.e. +-50%) of the
  previous run's from the same landing folder and file (another dataset starts afresh); a log
  that grows from nothing at every delivery (`GROWING_TABLES`: the campaign send log) is left
  out of that rule: it doubles in its second week and starts again from nothing when its
  source does (a regenerated market); its rows are still checked one by one.
- marts: keys, ranges and allowed sets of order_lines, customers, products,
  product_week_sales (contacted customers included) and contact_consents (which may be empty:
  a dataset without any consent has no row).
- features: keys and ranges of the three feature tables (discount lags, promo type and
  stock-out flags, category promotion pressure and count, and contacted customers of
  product_week_features included),
  no feature row after the plan week, and no feature computed from the future: every
  product-week row's `units_lag_1` equals the units of the week before in
  marts.product_week_sales (0 before the first week of data), and the plan week's rows carry
  none of the week's own promotion, stock or contact covariates (all 0 / false).
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

from promoflow.run import Run
from promoflow.settings import Settings, get_settings

log = logging.getLogger("quality.checkpoints")

DATA_DOCS_SITE = "promoflow_docs"
PASSWORD_VARIABLE = "PROMO_PG_PASSWORD"

MARTS_TABLE = "product_week_sales"
FEATURES_TABLE = "product_week_features"
FEATURE_TABLES = ("customer_features", "product_features", "product_week_features")
FEATURE_LAG_COLUMNS = ("units_lag_1", "units_lag_2", "units_lag_4", "units_lag_52")
FEATURE_DISCOUNT_LAG_COLUMNS = ("discount_depth_lag_1", "discount_depth_lag_2",
                                "discount_depth_lag_3")
FEATURE_FLAG_COLUMNS = ("promo_display", "promo_mailer", "promo_coupon", "is_stocked_out",
                        "stocked_out_lag_1")
# the week's own covariates: realized in the past, 0 / false in the plan week
PLAN_WEEK_ZERO_COLUMNS = ("discount_depth", "is_promoted", "promo_display", "promo_mailer",
                          "promo_coupon", "category_promo_pressure", "category_promo_count",
                          "is_stocked_out", "contacted_customers")
# counts of the week: never negative
FEATURE_COUNT_COLUMNS = ("category_promo_count", "contacted_customers")
# logs that start empty and gain every delivery's rows (the send log doubles in its second
# week, and restarts with its source): no row-count rule
GROWING_TABLES = ("campaign_contacts",)
MARTS_FLAG_COLUMNS = ("is_promoted", "promo_price_cut", "promo_display", "promo_mailer",
                      "promo_coupon", "is_stocked_out")
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:+-]+$")


def max_quarantine_share() -> float:
    return float(os.environ.get("PROMO_MAX_QUARANTINE_SHARE") or 0.05)


def max_row_count_change() -> float:
    return float(os.environ.get("PROMO_MAX_ROW_COUNT_CHANGE") or 0.5)


@dataclass
class TableCheck:
    """One table of a gate: how to get its batch, and what to expect of it."""

    table: str
    batch_definition: Any
    expectations: list[Any]
    batch_parameters: dict | None = None


class QualityGateFailed(RuntimeError):
    """A checkpoint ran and at least one expectation failed."""


# --- suites --------------------------------------------------------------------------------
def _unique(columns: list[str] | tuple[str, ...]) -> Any:
    import great_expectations.expectations as gxe

    if len(columns) == 1:
        return gxe.ExpectColumnValuesToBeUnique(column=columns[0])
    return gxe.ExpectCompoundColumnsToBeUnique(column_list=list(columns))


def raw_expectations(table: str) -> list[Any]:
    """The raw contract of one table (keys, required, allowed values) plus its ranges."""
    import great_expectations.expectations as gxe

    from ingest.contract import TABLES_BY_NAME

    spec = TABLES_BY_NAME[table]
    expectations = [_unique(spec.primary_key)]
    for column in spec.columns:
        if column.required:
            expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=column.name))
        if column.allowed:
            expectations.append(
                gxe.ExpectColumnValuesToBeInSet(column=column.name, value_set=list(column.allowed))
            )
    if table == "order_lines":
        expectations += [
            gxe.ExpectColumnValuesToNotBeInSet(column="quantity", value_set=[0]),
            gxe.ExpectColumnValuesToBeBetween(column="unit_list_price", min_value=0,
                                              strict_min=True),
            gxe.ExpectColumnValuesToBeBetween(column="unit_paid_price", min_value=0),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="unit_list_price", column_B="unit_paid_price", or_equal=True
            ),
        ]
    if table == "products":
        expectations += [
            gxe.ExpectColumnValuesToBeBetween(column=name, min_value=0, strict_min=True)
            for name in ("list_price", "unit_cost")
        ]
    if table == "contact_consents":
        expectations.append(_withdrawn_after_consent("consented_at"))
    return expectations


def _withdrawn_after_consent(consented: str) -> Any:
    """A consent is withdrawn at or after it was given (a consent still held has no
    withdrawn_at, and passes)."""
    import great_expectations.expectations as gxe

    return gxe.ExpectColumnPairValuesAToBeGreaterThanB(
        column_A="withdrawn_at", column_B=consented, or_equal=True,
        ignore_row_if="either_value_is_missing",
    )


def ingest_run_expectations() -> list[Any]:
    """The run's accounting per table (see _ingest_run_query): quarantine share, count change."""
    import great_expectations.expectations as gxe

    change = max_row_count_change()
    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="quarantine_share", min_value=0,
                                          max_value=max_quarantine_share()),
        gxe.ExpectColumnValuesToBeBetween(column="row_count_ratio", min_value=1 - change,
                                          max_value=1 + change),
        gxe.ExpectColumnValuesToBeBetween(column="future_orders", min_value=0, max_value=0),
    ]


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
        *[gxe.ExpectColumnValuesToBeInSet(column=name, value_set=[True, False])
          for name in MARTS_FLAG_COLUMNS],
        gxe.ExpectColumnValuesToBeBetween(column="contacted_customers", min_value=0),
    ]


def other_marts_expectations() -> dict[str, list[Any]]:
    """Expectations on the other marts that Spark, Feast and planning read."""
    import great_expectations.expectations as gxe

    return {
        "order_lines": [
            gxe.ExpectTableRowCountToBeBetween(min_value=1),
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["order_id", "line_number"]),
            gxe.ExpectColumnValuesToBeBetween(column="discount_depth", min_value=0, max_value=1,
                                              strict_max=True),
            gxe.ExpectColumnValuesToNotBeInSet(column="quantity", value_set=[0]),
            gxe.ExpectColumnValuesToBeInSet(column="is_guest", value_set=[True, False]),
        ],
        "customers": [
            gxe.ExpectTableRowCountToBeBetween(min_value=1),
            gxe.ExpectColumnValuesToBeUnique(column="customer_id"),
            gxe.ExpectColumnValuesToBeBetween(column="orders_count", min_value=0),
        ],
        "products": [
            gxe.ExpectTableRowCountToBeBetween(min_value=1),
            gxe.ExpectColumnValuesToBeUnique(column="product_id"),
            gxe.ExpectColumnValuesToBeBetween(column="list_price", min_value=0, strict_min=True),
            gxe.ExpectColumnValuesToBeBetween(column="margin_rate", max_value=1, strict_max=True),
            gxe.ExpectColumnValuesToBeBetween(column="on_hand_units", min_value=0),
        ],
        # no row count: a dataset without any consent (no log, no preferred channel) has none
        "contact_consents": [
            gxe.ExpectCompoundColumnsToBeUnique(
                column_list=["customer_id", "channel", "consented_from"]),
            gxe.ExpectColumnValuesToBeInSet(column="channel",
                                            value_set=["email", "app_push", "sms"]),
            gxe.ExpectColumnValuesToBeInSet(column="source",
                                            value_set=["consent_log", "preferred_channel"]),
            _withdrawn_after_consent("consented_from"),
        ],
    }


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
        *[
            gxe.ExpectColumnValuesToBeBetween(column=name, min_value=0, max_value=1,
                                              strict_max=True)
            for name in ("discount_depth", *FEATURE_DISCOUNT_LAG_COLUMNS)
        ],
        *[gxe.ExpectColumnValuesToBeInSet(column=name, value_set=[0.0, 1.0])
          for name in FEATURE_FLAG_COLUMNS],
        gxe.ExpectColumnValuesToBeBetween(
            column="category_promo_pressure", min_value=0, max_value=1, strict_max=True
        ),
        *[gxe.ExpectColumnValuesToBeBetween(column=name, min_value=0)
          for name in FEATURE_COUNT_COLUMNS],
        gxe.ExpectColumnValuesToBeBetween(column="week_of_year", min_value=1, max_value=53),
        gxe.ExpectColumnValuesToBeInSet(column="after_plan_week", value_set=[False]),
        gxe.ExpectColumnValuesToBeInSet(column="lag_1_is_week_before", value_set=[True]),
        gxe.ExpectColumnValuesToBeInSet(column="plan_week_covariates_are_zero",
                                        value_set=[True]),
    ]


def entity_features_expectations(table: str) -> list[Any]:
    """Expectations on the customer and product feature snapshots."""
    import great_expectations.expectations as gxe

    key = "customer_id" if table == "customer_features" else "product_id"
    common = [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnValuesToNotBeNull(column=key),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=[key, "event_timestamp"]),
        gxe.ExpectColumnValuesToBeInSet(column="after_plan_week", value_set=[False]),
    ]
    if table == "customer_features":
        return common + [
            gxe.ExpectColumnValuesToBeBetween(column="recency_days", min_value=0),
            gxe.ExpectColumnValuesToBeBetween(column="frequency_orders_52w", min_value=0),
            gxe.ExpectColumnValuesToBeBetween(column="avg_discount_depth", min_value=0,
                                              max_value=1),
            gxe.ExpectColumnValuesToBeBetween(column="promo_share", min_value=0, max_value=1),
        ]
    return common + [
        gxe.ExpectColumnValuesToBeBetween(column="list_price", min_value=0, strict_min=True),
        gxe.ExpectColumnValuesToBeBetween(column="popularity_units_12w", min_value=0),
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


def _run_gate(context, gate: str, checks: list[TableCheck], settings: Settings) -> dict:
    """Register and run one suite, validation definition and checkpoint per table; raise
    QualityGateFailed naming every failed expectation of every table once all have run."""
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction

    started = time.perf_counter()
    evaluated, failures = 0, []
    for check in checks:
        name = f"{gate}_{check.table}"
        suite = context.suites.add_or_update(
            gx.ExpectationSuite(name=f"{name}_suite", expectations=check.expectations)
        )
        validation = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=f"{name}_validation", data=check.batch_definition,
                                    suite=suite)
        )
        checkpoint = context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=f"{name}_checkpoint",
                validation_definitions=[validation],
                actions=[UpdateDataDocsAction(name="update_data_docs",
                                              site_names=[DATA_DOCS_SITE])],
                result_format={"result_format": "SUMMARY"},
            )
        )
        result = checkpoint.run(batch_parameters=check.batch_parameters)
        for validation_result in result.run_results.values():
            evaluated += validation_result.statistics["evaluated_expectations"]
            failures += [_describe_failure(check.table, r)
                         for r in validation_result.results if not r.success]
    docs_index = data_docs_dir(settings) / "index.html"
    if failures:
        raise QualityGateFailed(
            f"Quality gate '{gate}' failed: " + "; ".join(failures)
            + f" (see Data Docs at {docs_index})."
        )
    elapsed = time.perf_counter() - started
    tables = [c.table for c in checks]
    log.info("Quality gate '%s' passed: %d expectations on %s in %.1fs", gate, evaluated,
             ", ".join(tables), elapsed)
    return {"gate": gate, "success": True, "tables": tables,
            "evaluated_expectations": evaluated, "data_docs": str(docs_index)}


def _describe_failure(table: str, expectation_result) -> str:
    """'<expectation> on <table>.<column>: <n> unexpected rows' (or the observed value)."""
    config = expectation_result.expectation_config
    kwargs = config.kwargs
    pair = [kwargs[name] for name in ("column_A", "column_B") if kwargs.get(name)]
    column = kwargs.get("column") or ",".join(kwargs.get("column_list") or pair) or None
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
def _postgres_source(context, settings: Settings, schema: str):
    return context.data_sources.add_or_update_postgres(
        name=schema, connection_string=_postgres_connection_string(settings, schema)
    )


def _table_check(datasource, table: str, expectations: list[Any]) -> TableCheck:
    asset = datasource.add_table_asset(name=table, table_name=table)
    return TableCheck(table, asset.add_batch_definition_whole_table("whole_table"), expectations)


def _ingest_run_query(run_id: str) -> str:
    """Per table of the run: quarantined share, loaded rows / the previous run's of the same
    folder and as-of time (1 for a growing log), and (on the orders row) the orders stamped after the load."""
    growing = ", ".join(f"'{table}'" for table in GROWING_TABLES)
    return f"""
        select t.table_name,
               t.quarantined_rows::float / nullif(t.input_rows, 0) as quarantine_share,
               case when t.table_name in ({growing}) then 1.0
                    else t.loaded_rows::float / nullif(p.loaded_rows, 0)
               end as row_count_ratio,
               case when t.table_name = 'orders' then
                   (select count(*) from raw.orders o where o.ordered_at > t.loaded_at)
               else 0 end as future_orders
        from audit.ingest_runs t
        left join lateral (
            select previous.loaded_rows from audit.ingest_runs previous
            where previous.table_name = t.table_name and previous.run_id <> t.run_id
              and previous.source_dir is not distinct from t.source_dir
              and previous.source_file = t.source_file
              and previous.as_of is not distinct from t.as_of  -- a replay with its own time
              and previous.loaded_at < t.loaded_at
            order by previous.loaded_at desc limit 1
        ) p on true
        where t.run_id = '{run_id}'
    """


def check_raw(run: Run, settings: Settings | None = None) -> dict:
    """The raw gate of a weekly run (after its ingest)."""
    return validate_raw(run.run_id, settings)


def check_marts(run: Run, settings: Settings | None = None) -> dict:
    """The marts gate of a weekly run (after dbt)."""
    return validate_marts(settings)


def check_features(run: Run, settings: Settings | None = None) -> dict:
    """The features gate of a weekly run: nothing stamped after its plan week, no future."""
    return validate_features(settings, plan_week=run.plan_week)


def validate_raw(run_id: str, settings: Settings | None = None) -> dict:
    """Validate the raw tables and the accounting of ingest run `run_id`."""
    from ingest.contract import TABLES

    if not RUN_ID_PATTERN.match(run_id):
        raise ValueError(f"Run id {run_id!r} has characters other than letters, digits and _.:+-.")
    settings = settings or get_settings()
    context = _context(settings)
    raw = _postgres_source(context, settings, "raw")
    checks = [_table_check(raw, spec.name, raw_expectations(spec.name)) for spec in TABLES]
    accounting = raw.add_query_asset(name="ingest_run", query=_ingest_run_query(run_id))
    checks.append(TableCheck("ingest_run", accounting.add_batch_definition_whole_table("run"),
                             ingest_run_expectations()))
    return _run_gate(context, "raw", checks, settings)


def validate_marts(settings: Settings | None = None) -> dict:
    """Validate the marts read downstream; raise QualityGateFailed when they do not pass."""
    settings = settings or get_settings()
    context = _context(settings)
    marts = _postgres_source(context, settings, "marts")
    checks = [_table_check(marts, MARTS_TABLE, marts_expectations())]
    checks += [_table_check(marts, table, expectations)
               for table, expectations in other_marts_expectations().items()]
    return _run_gate(context, "marts", checks, settings)


def _read_features(settings: Settings, table: str):
    import pandas as pd

    path = settings.feature_dir(table)
    if not path.exists():
        raise FileNotFoundError(
            f"Feature Parquet {path} does not exist; run the Spark feature "
            "jobs (python -m spark_jobs.run_all) first."
        )
    return pd.read_parquet(path)


def _weekly_sales(settings: Settings):
    import pandas as pd

    from promoflow.warehouse import engine

    with engine(settings).connect() as conn:
        return pd.read_sql("select product_id, week_start, units from marts.product_week_sales",
                           conn)


def lag_1_is_week_before(features, sales):
    """Per feature row: does units_lag_1 equal the units of the week before (0 if none)?"""
    import pandas as pd

    before = sales.assign(
        event_timestamp=pd.to_datetime(sales["week_start"]).dt.tz_localize("UTC")
        + pd.Timedelta(days=7),
        expected=sales["units"].astype("float64"),
    )[["product_id", "event_timestamp", "expected"]]
    stamps = pd.to_datetime(features["event_timestamp"], utc=True)
    joined = features[["product_id"]].assign(event_timestamp=stamps).merge(
        before, on=["product_id", "event_timestamp"], how="left"
    )
    expected = joined["expected"].fillna(0.0).to_numpy()
    return features["units_lag_1"].astype("float64").fillna(-1.0).to_numpy() == expected


def plan_week_covariates_are_zero(features, plan_week):
    """Per feature row: False for a plan-week row carrying any of the week's own promotion or
    stock covariates (PLAN_WEEK_ZERO_COLUMNS not all 0 / false), True otherwise. A column the
    table lacks is left to the expectations on it."""
    import pandas as pd

    in_plan_week = (pd.to_datetime(features["event_timestamp"], utc=True) == plan_week).to_numpy()
    present = [name for name in PLAN_WEEK_ZERO_COLUMNS if name in features.columns]
    covariates = features[present].astype("float64").fillna(1.0)
    return ~in_plan_week | (covariates == 0.0).all(axis=1).to_numpy()


def validate_features(
    settings: Settings | None = None, plan_week: date | None = None, sales=None
) -> dict:
    """Validate the three feature tables in the lake; raise QualityGateFailed when they fail.

    `plan_week`: no feature row may be stamped after it, and its product-week rows carry no
    covariate of the week itself (default: the latest row of product_week_features). `sales`: product_id, week_start, units per week (default:
    marts.product_week_sales) for the no-future check of the lags.
    """
    import pandas as pd

    settings = settings or get_settings()
    frames = {table: _read_features(settings, table) for table in FEATURE_TABLES}
    product_weeks = frames[FEATURES_TABLE]
    limit = (pd.Timestamp(plan_week, tz="UTC") if plan_week is not None
             else pd.to_datetime(product_weeks["event_timestamp"], utc=True).max())
    for frame in frames.values():
        frame["after_plan_week"] = pd.to_datetime(frame["event_timestamp"], utc=True) > limit
    sales = _weekly_sales(settings) if sales is None else sales
    product_weeks["lag_1_is_week_before"] = lag_1_is_week_before(product_weeks, sales)
    product_weeks["plan_week_covariates_are_zero"] = plan_week_covariates_are_zero(
        product_weeks, limit
    )

    context = _context(settings)
    datasource = context.data_sources.add_or_update_pandas(name="lake")
    checks = []
    for table, frame in frames.items():
        expectations = (features_expectations() if table == FEATURES_TABLE
                        else entity_features_expectations(table))
        asset = datasource.add_dataframe_asset(name=table)
        checks.append(TableCheck(table, asset.add_batch_definition_whole_dataframe("frame"),
                                 expectations, {"dataframe": frame}))
    return _run_gate(context, "features", checks, settings)
