"""Integration: tiny market -> marts -> Spark features -> Feast -> the seven training sets."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from feature_repo.store import apply_and_materialize, get_store
from feature_repo.training_sets import (
    TrainingSetError,
    build_training_sets,
    recommender_holdout_start,
)
from promoflow.run import RECOMMENDER_HOLDOUT_WEEKS, RunFolder
from promoflow.settings import Settings
from promoflow.warehouse import engine
from spark_jobs import customer_features, product_features, product_week_features
from tests.spark.pipeline import build_features

FORECASTER_PRODUCT = ["category", "unit_cost", "margin_rate", "popularity_units_12w", "promo_lift"]


@pytest.fixture(scope="module")
def sales(settings: Settings, tiny_landing: Path) -> pd.DataFrame:
    build_features(settings, tiny_landing)
    eng = engine(settings)
    frame = pd.read_sql("select product_id, week_start, units from marts.product_week_sales", eng)
    eng.dispose()
    return frame


@pytest.fixture(scope="module")
def plan_week(sales: pd.DataFrame) -> date:
    return sales["week_start"].max() + timedelta(days=7)


@pytest.fixture(scope="module")
def sets(settings: Settings, plan_week: date, tmp_path_factory) -> dict[str, pd.DataFrame]:
    end = datetime.combine(plan_week, datetime.min.time(), tzinfo=UTC)
    started = time.time()
    apply_and_materialize(settings, end)
    materialized = time.time()
    paths = build_training_sets(settings, RunFolder(tmp_path_factory.mktemp("run")), plan_week)
    print(f"apply+materialize {materialized - started:.1f} s, "
          f"training sets {time.time() - materialized:.1f} s")
    return {name: pd.read_parquet(path) for name, path in paths.items()}


def lake(settings: Settings, name: str) -> pd.DataFrame:
    return pd.read_parquet(settings.feature_dir(name))


def test_seven_files_with_the_documented_columns(sets: dict[str, pd.DataFrame]) -> None:
    week_features = product_week_features.COLUMNS[2:]
    assert list(sets["forecaster_train"].columns) == [
        "product_id", "event_timestamp", "units", *week_features, *FORECASTER_PRODUCT]
    assert list(sets["forecaster_score"].columns) == [
        "product_id", "event_timestamp", *week_features, *FORECASTER_PRODUCT]
    assert list(sets["recommender_interactions"].columns) == [
        "customer_id", "product_id", "week_start", "units"]
    assert list(sets["recommender_customers"].columns) == [
        "customer_id", *customer_features.COLUMNS[2:]]
    assert list(sets["recommender_products"].columns) == [
        "product_id", *product_features.COLUMNS[2:]]
    assert list(sets["recommender_customers_at_holdout"].columns) == [
        "customer_id", "event_timestamp", *customer_features.COLUMNS[2:]]
    assert list(sets["recommender_products_at_holdout"].columns) == [
        "product_id", "event_timestamp", *product_features.COLUMNS[2:]]
    assert list(sets) == ["forecaster_train", "forecaster_score", "recommender_interactions",
                          "recommender_customers", "recommender_products",
                          "recommender_customers_at_holdout", "recommender_products_at_holdout"]
    for name, frame in sets.items():
        assert len(frame) > 0, name
        if name != "recommender_customers_at_holdout":  # see the test below
            assert not frame.isna().any().any(), name


def test_forecaster_train_is_point_in_time(
    sets: dict[str, pd.DataFrame], sales: pd.DataFrame, plan_week: date
) -> None:
    train = sets["forecaster_train"]
    assert len(train) == len(sales)
    assert train["event_timestamp"].max() < pd.Timestamp(plan_week, tz="UTC")
    previous = train[["product_id", "event_timestamp", "units"]].assign(
        event_timestamp=train["event_timestamp"] + timedelta(days=7)
    )
    joined = train.merge(previous, on=["product_id", "event_timestamp"], suffixes=("", "_prev"))
    assert len(joined) == len(train) - train["product_id"].nunique()
    assert (joined["units_lag_1"] == joined["units_prev"]).all()
    first_week = train["event_timestamp"].min()
    assert (train.loc[train["event_timestamp"] == first_week, "popularity_units_12w"] == 0).all()


def test_scoring_sets_are_the_plan_week_rows(
    settings: Settings, sets: dict[str, pd.DataFrame], plan_week: date
) -> None:
    at_plan = pd.Timestamp(plan_week, tz="UTC")
    score = sets["forecaster_score"]
    assert (score["event_timestamp"] == at_plan).all()
    parquet = lake(settings, "product_week_features")
    parquet = parquet[parquet["event_timestamp"] == at_plan].sort_values("product_id")
    assert score["product_id"].tolist() == parquet["product_id"].tolist()
    assert score["units_lag_1"].tolist() == parquet["units_lag_1"].tolist()
    customers = sets["recommender_customers"]
    snapshot = lake(settings, "customer_features")
    snapshot = snapshot[snapshot["event_timestamp"] == at_plan].sort_values("customer_id")
    assert customers["customer_id"].tolist() == snapshot["customer_id"].tolist()
    assert customers["monetary_value_52w"].tolist() == snapshot["monetary_value_52w"].tolist()
    assert len(sets["recommender_products"]) == len(score)


def test_holdout_snapshots_are_as_of_the_holdout_start(
    settings: Settings, sets: dict[str, pd.DataFrame], plan_week: date
) -> None:
    """The recommender's evaluated model sees features computed before its holdout weeks only:
    the lake's rows stamped at the holdout start, every row stamped with it; customers who
    signed up later have no snapshot yet (nulls)."""
    start = recommender_holdout_start(plan_week)
    assert start == plan_week - timedelta(weeks=RECOMMENDER_HOLDOUT_WEEKS)
    at_start = pd.Timestamp(start, tz="UTC")
    for name, view, key, column in (
        ("recommender_customers_at_holdout", "customer_features", "customer_id",
         "monetary_value_52w"),
        ("recommender_products_at_holdout", "product_features", "product_id",
         "popularity_units_12w"),
    ):
        frame = sets[name]
        assert (frame["event_timestamp"] == at_start).all(), name
        snapshot = lake(settings, view)
        snapshot = snapshot[snapshot["event_timestamp"] == at_start].set_index(key)[column]
        pd.testing.assert_series_equal(
            frame[column].reset_index(drop=True),
            snapshot.reindex(frame[key]).reset_index(drop=True), check_names=False,
            check_dtype=False)
        assert (frame[column].isna() == ~frame[key].isin(snapshot.index)).all(), name
        assert frame[column].notna().sum() > len(frame) / 2, name
    before = sets["recommender_customers_at_holdout"].set_index("customer_id")
    latest = sets["recommender_customers"].set_index("customer_id")
    assert (before["monetary_value_52w"] != latest["monetary_value_52w"]).any()


def test_online_store_serves_the_plan_week(settings: Settings, sets, plan_week: date) -> None:
    score = sets["forecaster_score"].head(3)
    online = get_store(settings).get_online_features(
        features=get_store(settings).get_feature_service("forecaster_v1"),
        entity_rows=[{"product_id": int(p)} for p in score["product_id"]],
    ).to_dict()
    assert online["units_roll_mean_4"] == score["units_roll_mean_4"].tolist()


def test_interactions_match_the_order_lines(
    settings: Settings, sets: dict[str, pd.DataFrame], plan_week: date
) -> None:
    interactions = sets["recommender_interactions"]
    assert (interactions["units"] > 0).all()
    assert interactions["week_start"].max() < plan_week
    eng = engine(settings)
    total = pd.read_sql(
        "select sum(quantity) as units from marts.order_lines "
        "where customer_id is not null and quantity > 0", eng
    )["units"].iloc[0]
    eng.dispose()
    assert interactions["units"].sum() == total


def test_features_must_reach_the_plan_week(settings: Settings, plan_week: date, tmp_path) -> None:
    with pytest.raises(TrainingSetError, match="before the plan week"):
        build_training_sets(settings, RunFolder(tmp_path), plan_week + timedelta(days=7))
