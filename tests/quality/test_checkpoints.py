"""The quality gates pass on good data and name each broken expectation on bad data."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from promoflow.settings import Settings
from promoflow.warehouse import connect
from quality.checkpoints import (
    QualityGateFailed,
    lag_1_is_week_before,
    plan_week_covariates_are_zero,
    validate_features,
    validate_marts,
    validate_raw,
)

BROKEN_ROWS = 3
MARTS_EXPECTATIONS = 14 + 5 + 3 + 5 + 4
PLAN_WEEK = date(2026, 2, 16)


@pytest.mark.integration
def test_marts_gate_passes_on_tiny_data(settings: Settings, marts_built: None) -> None:
    summary = validate_marts(settings)
    assert summary["success"] is True
    assert summary["tables"] == ["product_week_sales", "order_lines", "customers", "products",
                                 "contact_consents"]
    assert summary["evaluated_expectations"] == MARTS_EXPECTATIONS
    assert Path(summary["data_docs"]).is_file()
    # re-runnable: suites, validation definitions and checkpoints are updated, not duplicated
    assert validate_marts(settings)["evaluated_expectations"] == MARTS_EXPECTATIONS


@pytest.mark.integration
def test_raw_gate_passes_after_a_clean_ingest(settings: Settings, marts_built: None) -> None:
    summary = validate_raw("test_dbt", settings)
    assert summary["tables"][-1] == "ingest_run"
    assert "order_lines" in summary["tables"]
    assert summary["evaluated_expectations"] > 30


def _fake_run(settings: Settings, run_id: str, loaded_factor: float, quarantined: int) -> None:
    """Accounting rows of a later ingest run derived from run test_dbt (raw stays as it is)."""
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("delete from audit.ingest_runs where run_id = %s", (run_id,))
        cur.execute(
            """insert into audit.ingest_runs (run_id, table_name, source_dir, source_file,
                                              input_rows, loaded_rows, quarantined_rows, loaded_at)
               select %s, table_name, source_dir, source_file,
                      round(loaded_rows * %s)::bigint + %s, round(loaded_rows * %s)::bigint, %s,
                      loaded_at + interval '1 minute'
               from audit.ingest_runs where run_id = 'test_dbt'""",
            (run_id, loaded_factor, quarantined, loaded_factor, quarantined),
        )


@pytest.mark.integration
def test_raw_gate_fails_on_quarantine_share_and_row_count_jump(
    settings: Settings, marts_built: None
) -> None:
    try:
        _fake_run(settings, "gate_ok", 1.1, 0)
        assert validate_raw("gate_ok", settings)["success"] is True
        _fake_run(settings, "gate_bad", 2.5, 10_000)
        with pytest.raises(QualityGateFailed) as failed:
            validate_raw("gate_bad", settings)
    finally:  # later runs of this session compare themselves with real runs only
        with connect(settings) as conn, conn.cursor() as cur:
            cur.execute("delete from audit.ingest_runs where run_id in ('gate_ok', 'gate_bad')")
    message = str(failed.value)
    assert message.startswith("Quality gate 'raw' failed:")
    assert "expect_column_values_to_be_between on ingest_run.quarantine_share" in message
    assert "expect_column_values_to_be_between on ingest_run.row_count_ratio" in message


def _log_run(settings: Settings, run_id: str, loaded: int, minutes: int,
             table: str = "campaign_contacts") -> None:
    """An accounting row of a load of `table` (the send log by default; its own folder)."""
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute(
            """insert into audit.ingest_runs (run_id, table_name, source_dir, source_file,
                                              input_rows, loaded_rows, quarantined_rows, loaded_at)
               values (%s, %s, '/landing/contacts_log', %s,
                       %s, %s, 0, now() + make_interval(mins => %s))""",
            (run_id, table, f"{table}.csv", loaded, loaded, minutes),
        )


@pytest.mark.integration
def test_raw_gate_lets_the_send_log_grow_and_restart(
    settings: Settings, marts_built: None
) -> None:
    """The send log gains a week of messages at every delivery and starts again from nothing
    with a regenerated market: neither is a row-count jump; another table's jump still is."""
    runs = ("log_week_1", "log_week_2", "log_week_3")
    try:
        _log_run(settings, runs[0], 100, 1)
        _log_run(settings, runs[1], 200, 2)
        assert validate_raw(runs[1], settings)["success"] is True
        _log_run(settings, runs[2], 40, 3)
        assert validate_raw(runs[2], settings)["success"] is True
        _log_run(settings, runs[2], 40, 3, table="promotions")
        _log_run(settings, runs[1], 200, 2, table="promotions")
        with pytest.raises(QualityGateFailed) as failed:
            validate_raw(runs[2], settings)
    finally:
        with connect(settings) as conn, conn.cursor() as cur:
            cur.execute("delete from audit.ingest_runs where run_id = any(%s)", (list(runs),))
    assert "ingest_run.row_count_ratio: 1 unexpected rows" in str(failed.value)


@pytest.mark.integration
def test_raw_gate_fails_on_orders_from_the_future(settings: Settings, marts_built: None) -> None:
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select order_id, ordered_at from raw.orders order by order_id limit 2")
        originals = cur.fetchall()
        cur.execute("update raw.orders set ordered_at = now() + interval '3 days' "
                    "where order_id = any(%s)", ([o for o, _ in originals],))
    try:
        with pytest.raises(QualityGateFailed) as failed:
            validate_raw("test_dbt", settings)
    finally:
        with connect(settings) as conn, conn.cursor() as cur:
            for order_id, ordered_at in originals:
                cur.execute("update raw.orders set ordered_at = %s where order_id = %s",
                            (ordered_at, order_id))
    assert "ingest_run.future_orders: 1 unexpected rows" in str(failed.value)


def test_raw_gate_refuses_odd_run_ids(settings: Settings) -> None:
    with pytest.raises(ValueError, match="letters, digits"):
        validate_raw("x'; drop table raw.orders; --", settings)


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


@pytest.mark.integration
def test_marts_gate_names_a_consent_withdrawn_before_it_was_given(
    settings: Settings, marts_built: None
) -> None:
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select customer_id, channel, consented_from, withdrawn_at "
                    "from marts.contact_consents order by 1, 2, 3 limit 1")
        customer_id, channel, consented_from, withdrawn_at = cur.fetchone()
        cur.execute("update marts.contact_consents set withdrawn_at = consented_from - "
                    "interval '1 day' where customer_id = %s and channel = %s "
                    "and consented_from = %s", (customer_id, channel, consented_from))
    try:
        with pytest.raises(QualityGateFailed) as failed:
            validate_marts(settings)
    finally:
        with connect(settings) as conn, conn.cursor() as cur:
            cur.execute("update marts.contact_consents set withdrawn_at = %s where customer_id "
                        "= %s and channel = %s and consented_from = %s",
                        (withdrawn_at, customer_id, channel, consented_from))
    message = str(failed.value)
    assert message.startswith("Quality gate 'marts' failed:")
    assert ("expect_column_pair_values_a_to_be_greater_than_b on "
            "contact_consents.withdrawn_at,consented_from: 1 unexpected rows") in message
    assert "product_week_sales" not in message


def _sales(weeks: int = 6, products: tuple[int, ...] = (10001, 10002)) -> pd.DataFrame:
    starts = pd.date_range(PLAN_WEEK - timedelta(weeks=weeks), periods=weeks, freq="7D")
    return pd.DataFrame([
        {"product_id": p, "week_start": ts.date(), "units": 3 * i + p % 2}
        for p in products for i, ts in enumerate(starts)
    ])


def _features(weeks: int = 6, products: tuple[int, ...] = (10001, 10002)) -> dict:
    """The three feature tables, consistent with _sales: weeks of data plus the plan week."""
    starts = pd.date_range(PLAN_WEEK - timedelta(weeks=weeks), periods=weeks + 1, freq="7D",
                           tz="UTC")
    rows, customers, items = [], [], []
    for product_id in products:
        for i, ts in enumerate(starts):
            lag_1 = 3 * (i - 1) + product_id % 2 if i > 0 else 0
            rows.append(
                {
                    "product_id": product_id,
                    "event_timestamp": ts,
                    "category_idx": 0,
                    "week_of_year": int(ts.isocalendar().week),
                    "is_holiday_week": False,
                    "units_lag_1": lag_1,
                    "units_lag_2": float(i),
                    "units_lag_4": float(i),
                    "units_lag_52": None,
                    "units_roll_mean_4": 1.0,
                    "units_roll_mean_12": 1.0,
                    "units_roll_std_12": 0.5,
                    "discount_depth": 0.1 * (i % 3),
                    "is_promoted": i % 3 > 0,
                    "list_price": 20.0,
                    "discount_depth_lag_1": 0.1 * ((i - 1) % 3) if i > 0 else 0.0,
                    "discount_depth_lag_2": 0.1 * ((i - 2) % 3) if i > 1 else 0.0,
                    "discount_depth_lag_3": 0.0,
                    "promo_display": float(i == 1),
                    "promo_mailer": float(i == 2),
                    "promo_coupon": 0.0,
                    "category_promo_pressure": 0.05 if 0 < i < weeks else 0.0,
                    "category_promo_count": 1.0 if 0 < i < weeks else 0.0,
                    "is_stocked_out": float(i == 3),
                    "stocked_out_lag_1": float(i == 4),
                    "contacted_customers": float(i % 3) if i < weeks else 0.0,
                }
            )
            items.append({"product_id": product_id, "event_timestamp": ts, "category": "toys",
                          "list_price": 20.0, "unit_cost": 8.0, "margin_rate": 0.6,
                          "popularity_units_12w": i, "promo_lift": 1.0})
    for customer_id in (1, 2, 3):
        for i, ts in enumerate(starts):
            customers.append({"customer_id": customer_id, "event_timestamp": ts,
                              "recency_days": 7 * i, "frequency_orders_52w": i,
                              "monetary_value_52w": 10.0 * i, "avg_discount_depth": 0.1,
                              "promo_share": 0.5, "top_category": "toys"})
    return {"product_week_features": pd.DataFrame(rows),
            "product_features": pd.DataFrame(items),
            "customer_features": pd.DataFrame(customers)}


def _write_features(settings: Settings, frames: dict) -> None:
    """Spark-like output folders: part files plus a _SUCCESS marker."""
    for name, frame in frames.items():
        folder = settings.feature_dir(name)
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
    summary = validate_features(lake_settings, PLAN_WEEK, _sales())
    assert summary["success"] is True
    assert summary["tables"] == ["customer_features", "product_features",
                                 "product_week_features"]
    assert summary["evaluated_expectations"] == 8 + 6 + 24
    assert Path(summary["data_docs"]).is_file()


@pytest.mark.integration
def test_features_gate_names_each_failure(lake_settings: Settings) -> None:
    frames = _features()
    frame = frames["product_week_features"]
    frame.loc[0, "discount_depth"] = 1.0  # the top of [0, 1) is excluded
    frame.loc[[1, 2], "units_lag_4"] = -1.0
    frame.loc[3, "week_of_year"] = 54
    frame.loc[4, "promo_display"] = 0.5
    frame.loc[[2, 4], "category_promo_pressure"] = [-0.1, 1.0]
    frame.loc[1, "contacted_customers"] = -1.0
    duplicate = frame.iloc[[5]]  # same product_id and event_timestamp twice
    frames["product_week_features"] = pd.concat([frame, duplicate], ignore_index=True)
    frames["customer_features"].loc[0, "promo_share"] = 1.5
    _write_features(lake_settings, frames)
    with pytest.raises(QualityGateFailed) as failed:
        validate_features(lake_settings, PLAN_WEEK, _sales())
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
    assert "customer_features.promo_share: 1 unexpected rows" in message
    assert (
        "expect_column_values_to_be_in_set on product_week_features.promo_display: "
        "1 unexpected rows"
    ) in message
    assert "product_week_features.category_promo_pressure: 2 unexpected rows" in message
    assert (
        "expect_column_values_to_be_between on product_week_features.contacted_customers: "
        "1 unexpected rows"
    ) in message
    assert "units_lag_1" not in message and "after_plan_week" not in message
    assert "plan_week_covariates_are_zero" not in message


@pytest.mark.integration
def test_features_gate_catches_features_from_the_future(lake_settings: Settings) -> None:
    frames = _features()
    sales = _sales()
    # a leaky lag: the week's own units instead of the week before's
    leaky = frames["product_week_features"].copy()
    own = leaky.merge(
        sales.assign(event_timestamp=pd.to_datetime(sales["week_start"]).dt.tz_localize("UTC")),
        on=["product_id", "event_timestamp"], how="left",
    )["units"]
    leaky["units_lag_1"] = own.fillna(0).to_numpy()
    assert not lag_1_is_week_before(leaky, sales).all()
    # and a plan-week row that knows the week's own promotion and stock-out
    at_plan = leaky["event_timestamp"] == pd.Timestamp(PLAN_WEEK, tz="UTC")
    leaky.loc[at_plan.to_numpy().nonzero()[0][0], ["promo_mailer", "is_stocked_out"]] = 1.0
    frames["product_week_features"] = leaky
    # and a customer snapshot stamped after the plan week
    late = frames["customer_features"].iloc[[0]].assign(
        event_timestamp=pd.Timestamp(PLAN_WEEK + timedelta(weeks=1), tz="UTC"))
    frames["customer_features"] = pd.concat([frames["customer_features"], late])
    _write_features(lake_settings, frames)
    with pytest.raises(QualityGateFailed) as failed:
        validate_features(lake_settings, PLAN_WEEK, sales)
    message = str(failed.value)
    assert "product_week_features.lag_1_is_week_before" in message
    assert "customer_features.after_plan_week: 1 unexpected rows" in message
    assert "product_week_features.plan_week_covariates_are_zero: 1 unexpected rows" in message


def test_plan_week_covariates_are_zero_flags_only_plan_week_rows() -> None:
    frame = _features()["product_week_features"]
    at_plan = pd.Timestamp(PLAN_WEEK, tz="UTC")
    assert plan_week_covariates_are_zero(frame, at_plan).all()
    frame.loc[frame["event_timestamp"] == at_plan, "category_promo_count"] = [0.0, 2.0]
    frame.loc[frame["event_timestamp"] < at_plan, "is_stocked_out"] = 1.0  # the past may
    assert plan_week_covariates_are_zero(frame, at_plan).tolist() == [True] * 13 + [False]
    # the plan week's own contacts are not known when it is planned
    frame.loc[frame["event_timestamp"] == at_plan, "contacted_customers"] = [4.0, 0.0]
    assert plan_week_covariates_are_zero(frame, at_plan).tolist() == (
        [True] * 6 + [False] + [True] * 6 + [False])


def test_missing_feature_folder_says_what_to_run(lake_settings: Settings) -> None:
    with pytest.raises(FileNotFoundError, match="spark_jobs.run_all"):
        validate_features(lake_settings)
