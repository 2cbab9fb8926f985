"""Apply the repository to a temporary registry, materialize, read features back."""

from __future__ import annotations

import time
from datetime import timedelta

import pandas as pd
import pytest

from feature_repo.store import apply_and_materialize, get_store
from feature_repo.training_sets import historical_features
from promoflow.settings import Settings
from tests.feast.lake import TABLES, WEEKS, week

CUSTOMER_FEATURES = ["recency_days", "frequency_orders_52w", "monetary_value_52w",
                     "avg_discount_depth", "promo_share", "top_category"]


@pytest.fixture(scope="module")
def applied(lake_settings: Settings) -> dict:
    started = time.time()
    summary = apply_and_materialize(lake_settings, end=week(WEEKS - 1).to_pydatetime())
    summary["wall_seconds"] = time.time() - started
    return summary


@pytest.fixture(scope="module")
def store(lake_settings: Settings, applied: dict):
    return get_store(lake_settings)


def test_registry_holds_the_definitions(store, applied: dict) -> None:
    assert store.project == "promoflow"
    assert sorted(e.name for e in store.list_entities()) == ["customer", "product"]
    views = {v.name: v for v in store.list_feature_views()}
    assert sorted(views) == sorted(TABLES)
    for name, view in views.items():
        expected = [c for c in TABLES[name]().columns if c not in (
            "customer_id", "product_id", "event_timestamp")]
        assert [f.name for f in view.features] == expected
        assert view.ttl > timedelta(0) and view.tags["owner"] and view.description
    services = {s.name: s for s in store.list_feature_services()}
    assert sorted(services) == ["forecaster_v1", "recommender_v1"]
    forecaster_views = {p.name for p in services["forecaster_v1"].feature_view_projections}
    assert forecaster_views == {"product_week_features", "product_features"}
    # only rows within the longest time-to-live (14 days) before the end are loaded online
    assert applied["start"] == max(week(0), week(WEEKS - 1) - timedelta(days=14)).isoformat()
    assert applied["start"] > week(0).isoformat()


def test_online_features_are_the_latest_parquet_rows(store) -> None:
    online = store.get_online_features(
        features=[f"customer_features:{f}" for f in CUSTOMER_FEATURES],
        entity_rows=[{"customer_id": 1}, {"customer_id": 2}, {"customer_id": 99}],
    ).to_df()
    parquet = TABLES["customer_features"]()
    latest = parquet.sort_values("event_timestamp").groupby("customer_id").tail(1)
    for customer_id in (1, 2):
        got = online[online["customer_id"] == customer_id].iloc[0]
        want = latest[latest["customer_id"] == customer_id].iloc[0]
        for feature in CUSTOMER_FEATURES:
            assert got[feature] == want[feature], (customer_id, feature)
    assert online[online["customer_id"] == 99]["top_category"].isna().all()


def test_online_feature_service(store) -> None:
    online = store.get_online_features(
        features=store.get_feature_service("forecaster_v1"),
        entity_rows=[{"product_id": 10}, {"product_id": 11}],
    ).to_dict()
    assert online["units_lag_1"] == [10 + WEEKS - 1, 11 + WEEKS - 1]
    assert online["list_price"] == [10.5, 11.5]  # the week's price, not the catalogue's
    assert online["category"] == ["c10", "c11"]


def test_offline_features_equal_the_parquet(store) -> None:
    parquet = TABLES["product_week_features"]()
    entities = parquet[["product_id", "event_timestamp"]]
    offline = store.get_historical_features(
        entity_df=entities,
        features=[f"product_week_features:{c}" for c in parquet.columns[2:]],
    ).to_df()
    merged = parquet.merge(offline, on=["product_id", "event_timestamp"], suffixes=("", "_feast"))
    assert len(merged) == len(parquet)
    for column in parquet.columns[2:]:
        assert (merged[column] == merged[f"{column}_feast"]).all(), column


def test_point_in_time_join_never_sees_a_later_row(store) -> None:
    entities = pd.DataFrame({
        "customer_id": [1, 1, 1, 2, 2, 3],
        "event_timestamp": [
            week(2) - timedelta(seconds=1),   # just before the week-2 snapshot
            week(2),                           # exactly at it
            week(0) - timedelta(days=1),       # before any snapshot
            week(3),                           # customer 2's last row (week 1) is within ttl
            week(3) + timedelta(days=30),      # ... and past it here
            week(1),                           # an unknown customer
        ],
    })
    result = historical_features(
        store, entities,
        ["customer_features:top_category", "customer_features:frequency_orders_52w"],
        ["customer_id", "event_timestamp"],
    )
    assert result[["customer_id", "event_timestamp"]].equals(
        entities.astype({"event_timestamp": "datetime64[ns, UTC]"})
    )
    assert result["top_category"].isna().tolist() == [False, False, True, False, True, True]
    assert result["top_category"].iloc[[0, 1, 3]].tolist() == ["cat11", "cat12", "cat21"]
    assert result["frequency_orders_52w"].iloc[:2].tolist() == [1, 2]


def test_materialize_before_the_data_is_refused(lake_settings: Settings) -> None:
    from feature_repo.store import FeatureStoreError

    with pytest.raises(FeatureStoreError, match="before the first feature row"):
        apply_and_materialize(lake_settings, end=(week(0) - timedelta(days=7)).to_pydatetime())
