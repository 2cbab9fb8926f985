"""Integration: tiny market -> raw -> dbt marts -> run_all -> feature Parquet in the lake."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from pyspark.sql import SparkSession

from promoflow.run import Run, RunConfigError
from promoflow.settings import Settings
from promoflow.warehouse import engine
from spark_jobs import customer_features, product_features, product_week_features
from spark_jobs.run_all import build_features as build_run_features
from tests.spark.pipeline import build_features

JOBS = (customer_features, product_features, product_week_features)


@pytest.fixture(scope="module")
def rows(settings: Settings, tiny_landing: Path, spark: SparkSession) -> dict[str, int]:
    return build_features(settings, tiny_landing)


@pytest.fixture(scope="module")
def sales(settings: Settings, rows: dict[str, int]) -> pd.DataFrame:
    eng = engine(settings)
    frame = pd.read_sql("select product_id, week_start, units from marts.product_week_sales", eng)
    eng.dispose()
    return frame


def read_feature(settings: Settings, name: str) -> pd.DataFrame:
    return pd.read_parquet(settings.feature_dir(name))


def test_every_table_written_with_its_columns(settings: Settings, rows: dict[str, int]) -> None:
    assert set(rows) == {job.NAME for job in JOBS}
    for job in JOBS:
        dataset = ds.dataset(str(settings.feature_dir(job.NAME)), format="parquet")
        assert dataset.schema.names == job.COLUMNS
        assert dataset.schema.field("event_timestamp").type == pa.timestamp("us", tz="UTC")
        assert dataset.schema.field(job.COLUMNS[0]).type == pa.int64()
        assert dataset.count_rows() == rows[job.NAME] > 0
        frame = dataset.to_table().to_pandas()
        assert not frame.isna().any().any(), f"{job.NAME} has nulls"
        assert not frame.duplicated([job.COLUMNS[0], "event_timestamp"]).any()


def test_rows_extend_to_the_plan_week(settings: Settings, sales: pd.DataFrame) -> None:
    plan_week = pd.Timestamp(sales["week_start"].max() + timedelta(days=7), tz="UTC")
    products = sales["product_id"].nunique()
    weeks = sales["week_start"].nunique() + 1
    for name in ("product_features", "product_week_features"):
        frame = read_feature(settings, name)
        assert len(frame) == products * weeks
        assert frame["event_timestamp"].max() == plan_week
        assert (frame["event_timestamp"] == plan_week).sum() == products
    customers = read_feature(settings, "customer_features")
    assert customers["event_timestamp"].max() == plan_week
    plan_rows = customers[customers["event_timestamp"] == plan_week]
    assert plan_rows["frequency_orders_52w"].gt(0).mean() > 0.5


def test_lags_match_the_sales_mart(settings: Settings, sales: pd.DataFrame) -> None:
    features = read_feature(settings, "product_week_features")
    features["week_start"] = features["event_timestamp"].dt.date
    previous = sales.assign(week_start=sales["week_start"] + timedelta(days=7))
    joined = features.merge(previous, on=["product_id", "week_start"], how="inner")
    assert len(joined) == len(sales)  # every week of data is the lag-1 week of the next row
    assert (joined["units_lag_1"] == joined["units"]).all()
    plan_week = sales["week_start"].max() + timedelta(days=7)
    plan = features[features["week_start"] == plan_week]
    assert (plan["discount_depth"] == 0).all() and not plan["is_promoted"].any()


WEEK_COVARIATES = ("discount_depth", "promo_display", "promo_mailer", "promo_coupon",
                   "category_promo_pressure", "category_promo_count", "is_stocked_out",
                   "contacted_customers")


@pytest.fixture(scope="module")
def mart_covariates(settings: Settings, rows: dict[str, int]) -> pd.DataFrame:
    eng = engine(settings)
    frame = pd.read_sql(
        "select s.product_id, s.week_start, s.discount_depth, s.promo_display, s.promo_mailer, "
        "s.promo_coupon, s.is_stocked_out, s.contacted_customers, p.category "
        "from marts.product_week_sales s join marts.products p using (product_id)",
        eng,
    )
    eng.dispose()
    return frame


def test_promotion_and_stock_covariates_follow_the_mart(
    settings: Settings, mart_covariates: pd.DataFrame
) -> None:
    features = read_feature(settings, "product_week_features")
    features["week_start"] = features["event_timestamp"].dt.date
    plan_week = mart_covariates["week_start"].max() + timedelta(days=7)
    own = features.merge(mart_covariates, on=["product_id", "week_start"],
                         suffixes=("", "_mart"), validate="1:1")
    assert len(own) == len(mart_covariates)
    for name in ("promo_display", "promo_mailer", "promo_coupon", "is_stocked_out",
                 "contacted_customers"):
        assert (own[name] == own[f"{name}_mart"].astype("float64")).all(), name
    assert own[["promo_display", "promo_mailer", "promo_coupon"]].to_numpy().sum() > 0
    previous = mart_covariates.assign(week_start=mart_covariates["week_start"] + timedelta(days=7))
    lagged = features.merge(previous, on=["product_id", "week_start"], how="left",
                            suffixes=("", "_before"))
    assert (lagged["discount_depth_lag_1"]
            == lagged["discount_depth_before"].fillna(0.0)).all()
    assert (lagged["stocked_out_lag_1"]
            == lagged["is_stocked_out_before"].fillna(False).astype("float64")).all()
    category = mart_covariates.groupby("product_id")["category"].first()
    sizes = category.value_counts()
    others = lagged["product_id"].map(category).map(sizes) - 1
    assert lagged["category_promo_count"].between(0, others).all()
    assert lagged["category_promo_pressure"].between(0, 1, inclusive="left").all()
    assert ((lagged["category_promo_pressure"] > 0) <= (lagged["category_promo_count"] > 0)).all()
    plan = features[features["week_start"] == plan_week]
    assert len(plan) == features["product_id"].nunique()
    assert (plan[list(WEEK_COVARIATES)] == 0).all().all()


def test_explicit_plan_week_cuts_the_rows(
    settings: Settings, sales: pd.DataFrame, spark: SparkSession, tmp_path: Path
) -> None:
    """The stage's entry point on a run whose plan week is four weeks before the last data week."""
    backtest = dataclasses.replace(settings, work_dir=tmp_path)
    plan_week: date = sales["week_start"].max() - timedelta(days=28)
    rows = build_run_features(Run("backtest").with_plan_week(plan_week), backtest)
    assert set(rows) == {job.NAME for job in JOBS}
    assert spark.range(1).count() == 1  # the process's session is left running
    for job in JOBS:
        frame = read_feature(backtest, job.NAME)
        assert frame["event_timestamp"].max() == pd.Timestamp(plan_week, tz="UTC")
    week_rows = read_feature(backtest, "product_week_features")
    full_rows = read_feature(settings, "product_week_features")
    key = ["product_id", "event_timestamp"]
    same = week_rows.merge(full_rows, on=key, suffixes=("", "_full"))
    same = same[same["event_timestamp"] < pd.Timestamp(plan_week, tz="UTC")]
    assert (same["units_roll_mean_12"] == same["units_roll_mean_12_full"]).all()


def test_entry_point_needs_a_resolved_plan_week(settings: Settings) -> None:
    with pytest.raises(RunConfigError, match="no plan week yet"):
        build_run_features(Run("unresolved"), settings)
