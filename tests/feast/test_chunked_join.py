"""Point-in-time joins a slice of keys at a time give the file a single join would give."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from feature_repo.store import apply_and_materialize, get_store
from feature_repo.training_sets import historical_features, key_chunks, write_historical_features
from promoflow.settings import Settings
from tests.feast.lake import WEEKS, week


def test_key_chunks_cut_between_keys() -> None:
    entities = pd.DataFrame({"product_id": [3, 1, 2, 1, 3, 3, 2], "n": range(7)})
    chunks = list(key_chunks(entities, "product_id", max_rows=3))
    assert [c["product_id"].tolist() for c in chunks] == [[1, 1], [2, 2], [3, 3, 3]]
    assert chunks[0]["n"].tolist() == [1, 3]  # stable within a key
    assert len(list(key_chunks(entities, "product_id", max_rows=2))) == 3  # 3 rows of key 3 alone
    assert len(list(key_chunks(entities, "product_id", max_rows=100))) == 1
    with pytest.raises(ValueError, match="at least one entity row"):
        list(key_chunks(entities, "product_id", max_rows=0))


@pytest.fixture(scope="module")
def store(lake_settings: Settings):
    apply_and_materialize(lake_settings, end=week(WEEKS - 1).to_pydatetime())
    return get_store(lake_settings)


def test_chunked_join_equals_one_join(store, tmp_path: Path) -> None:
    # product 11 asks only before its first feature row: its slice is all nulls, so its integer
    # features are floats there and its text null, while product 10's are integers and text
    entities = pd.DataFrame({
        "product_id": [11, 10, 10, 11, 10],
        "event_timestamp": [week(0) - timedelta(days=3), week(1), week(3),
                            week(0) - timedelta(days=1), week(2)],
    })
    features = store.get_feature_service("forecaster_v1")
    keys = ["product_id", "event_timestamp"]
    whole = historical_features(store, entities, features, keys).sort_values(keys)
    chunked = write_historical_features(store, entities, features, keys,
                                        tmp_path / "chunked.parquet", max_rows=2)
    single = write_historical_features(store, entities, features, keys,
                                       tmp_path / "single.parquet", max_rows=1000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chunked.parquet", "single.parquet"]
    expected = whole.reset_index(drop=True)
    for path in (chunked, single):
        got = pd.read_parquet(path)
        assert got["product_id"].tolist() == [10, 10, 10, 11, 11]
        assert list(got.columns) == list(expected.columns)
        assert got.isna().equals(expected.isna())
        for column in expected.columns:
            assert got[column].dropna().tolist() == expected[column].dropna().tolist(), column
    assert pd.read_parquet(chunked)["category"].tolist()[:3] == ["c10"] * 3
    assert pd.read_parquet(chunked)["units_lag_1"].tolist()[:3] == [11, 12, 13]
