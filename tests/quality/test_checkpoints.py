"""The quality gates pass on good data and name each broken expectation on bad data."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from promoflow.settings import Settings
from promoflow.warehouse import connect
from quality.checkpoints import QualityGateFailed, validate_features, validate_marts

BROKEN_ROWS = 3


@pytest.mark.integration
def test_marts_gate_passes_on_tiny_data(settings: Settings, marts_built: None) -> None:
    summary = validate_marts(settings)
    assert summary["success"] is True
    assert summary["suite"] == "marts_suite"
    assert summary["evaluated_expectations"] == 8
    assert Path(summary["data_docs"]).is_file()
    # re-runnable: suite, validation definition and checkpoint are updated, not duplicated
    assert validate_marts(settings)["evaluated_expectations"] == 8


@pytest.mark.integration
def test_marts_gate_names_column_and_count(settings: Settings, marts_built: None) -> None:
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute(
            "select product_id, week_start, units from marts.product_week_sales "
            "order by product_id, week_start limit %s",
            (BROKEN_ROWS,),
        )
        originals = cur.fetchall()
        for product_id, week_start, _ in originals:
            cur.execute(
                "update marts.product_week_sales set units = -1 "
                "where product_id = %s and week_start = %s",
                (product_id, week_start),
            )
    try:
        with pytest.raises(QualityGateFailed) as failed:
            validate_marts(settings)
    finally:
        with connect(settings) as conn, conn.cursor() as cur:
            for product_id, week_start, units in originals:
                cur.execute(
                    "update marts.product_week_sales set units = %s "
                    "where product_id = %s and week_start = %s",
                    (units, product_id, week_start),
                )
    message = str(failed.value)
    assert message.startswith("Quality gate 'marts' failed:")
    assert (
        f"expect_column_values_to_be_between on product_week_sales.units: "
        f"{BROKEN_ROWS} unexpected rows"
    ) in message
    assert "discount_depth" not in message


def _features(weeks: int = 6, products: tuple[int, ...] = (10001, 10002)) -> pd.DataFrame:
    starts = pd.date_range("2026-01-05", periods=weeks, freq="7D", tz="UTC")
    rows = []
    for product_id in products:
        for i, ts in enumerate(starts):
            rows.append(
                {
                    "product_id": product_id,
                    "event_timestamp": ts,
                    "category_idx": 0,
                    "week_of_year": int(ts.isocalendar().week),
                    "is_holiday_week": False,
                    "units_lag_1": float(i),
                    "units_lag_2": float(i),
                    "units_lag_4": float(i),
                    "units_lag_52": None,
                    "units_roll_mean_4": 1.0,
                    "units_roll_mean_12": 1.0,
                    "units_roll_std_12": 0.5,
                    "discount_depth": 0.1 * (i % 3),
                    "is_promoted": i % 3 > 0,
                    "list_price": 20.0,
                }
            )
    return pd.DataFrame(rows)


def _write_features(settings: Settings, frame: pd.DataFrame) -> None:
    """A Spark-like output folder: part files plus a _SUCCESS marker."""
    folder = settings.lake_dir / "features" / "product_week_features"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    half = len(frame) // 2
    frame.iloc[:half].to_parquet(folder / "part-00000.parquet", index=False)
    frame.iloc[half:].to_parquet(folder / "part-00001.parquet", index=False)
    (folder / "_SUCCESS").touch()


@pytest.fixture
def lake_settings(settings: Settings, tmp_path: Path) -> Settings:
    """Settings with their own work folder, so the session's real lake is left alone."""
    return replace(settings, work_dir=tmp_path)


@pytest.mark.integration
def test_features_gate_passes(lake_settings: Settings) -> None:
    _write_features(lake_settings, _features())
    summary = validate_features(lake_settings)
    assert summary["success"] is True
    assert summary["suite"] == "features_suite"
    assert summary["evaluated_expectations"] == 10
    assert Path(summary["data_docs"]).is_file()


@pytest.mark.integration
def test_features_gate_names_each_failure(lake_settings: Settings) -> None:
    frame = _features()
    frame.loc[0, "discount_depth"] = 1.0  # the top of [0, 1) is excluded
    frame.loc[[1, 2], "units_lag_4"] = -1.0
    frame.loc[3, "week_of_year"] = 54
    duplicate = frame.iloc[[5]]  # same product_id and event_timestamp twice
    _write_features(lake_settings, pd.concat([frame, duplicate], ignore_index=True))
    with pytest.raises(QualityGateFailed) as failed:
        validate_features(lake_settings)
    message = str(failed.value)
    assert message.startswith("Quality gate 'features' failed:")
    assert (
        "expect_column_values_to_be_between on product_week_features.discount_depth: "
        "1 unexpected rows"
    ) in message
    assert "product_week_features.units_lag_4: 2 unexpected rows" in message
    assert "product_week_features.week_of_year: 1 unexpected rows" in message
    assert (
        "expect_compound_columns_to_be_unique on "
        "product_week_features.product_id,event_timestamp: 2 unexpected rows"
    ) in message
    assert "units_lag_1" not in message


def test_missing_feature_folder_says_what_to_run(lake_settings: Settings) -> None:
    with pytest.raises(FileNotFoundError, match="spark_jobs.run_all"):
        validate_features(lake_settings)
