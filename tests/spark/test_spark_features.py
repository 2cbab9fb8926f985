"""Unit tests of the pure feature functions on small hand-made DataFrames."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import LongType, TimestampType

from spark_jobs.customer_features import COLUMNS as CUSTOMER_COLUMNS
from spark_jobs.customer_features import build_customer_features
from spark_jobs.product_features import COLUMNS as PRODUCT_COLUMNS
from spark_jobs.product_features import build_product_features
from spark_jobs.product_week_features import COLUMNS as PRODUCT_WEEK_COLUMNS
from spark_jobs.product_week_features import build_product_week_features
from spark_jobs.session import FeatureJobError
from spark_jobs.weeks import resolve_plan_week

W0 = date(2024, 1, 1)  # a Monday


def week(n: int) -> date:
    return W0 + timedelta(days=7 * n)


def by_key(df: DataFrame, key: str) -> dict:
    """{(entity id, week): row as dict} of a small result."""
    return {(r[key], r["event_timestamp"].date()): r.asDict() for r in df.collect()}


ORDER_LINE_SCHEMA = (
    "order_id long, customer_id long, category string, week_start date, order_date date, "
    "quantity int, unit_list_price double, discount_depth double, revenue double, "
    "is_return boolean, is_promoted boolean"
)


@pytest.fixture(scope="module")
def customer_result(spark: SparkSession) -> dict:
    order_lines = spark.createDataFrame(
        [
            (10, 1, "a", week(0), date(2024, 1, 3), 2, 10.0, 0.0, 20.0, False, False),
            (11, 1, "b", week(2), date(2024, 1, 17), 3, 10.0, 0.2, 24.0, False, True),
            (11, 1, "b", week(2), date(2024, 1, 17), 1, 5.0, 0.0, 5.0, False, False),
            (12, 1, "a", week(2), date(2024, 1, 18), -1, 10.0, 0.0, -10.0, True, False),
            (13, None, "a", week(1), date(2024, 1, 9), 5, 10.0, 0.0, 50.0, False, False),
        ],
        ORDER_LINE_SCHEMA,
    )
    customers = spark.createDataFrame(
        [(1, date(2023, 12, 1)), (2, date(2024, 1, 10))], "customer_id long, signup_date date"
    )
    result = build_customer_features(order_lines, customers, plan_week=week(4))
    assert result.columns == CUSTOMER_COLUMNS
    assert result.schema["customer_id"].dataType == LongType()
    assert result.schema["event_timestamp"].dataType == TimestampType()
    return by_key(result, "customer_id")


def test_customer_rows_run_to_the_plan_week_from_signup(customer_result: dict) -> None:
    assert sorted(customer_result) == [(1, week(n)) for n in range(5)] + [
        (2, week(n)) for n in range(2, 5)
    ]


def test_customer_features_at_plan_week_hand_computed(customer_result: dict) -> None:
    row = customer_result[(1, week(4))]
    assert row["recency_days"] == 12  # last purchase 2024-01-17, the return does not count
    assert row["frequency_orders_52w"] == 2
    assert row["monetary_value_52w"] == pytest.approx(20 + 24 + 5 - 10)
    assert row["avg_discount_depth"] == pytest.approx(6 / 55)
    assert row["promo_share"] == pytest.approx(3 / 6)
    assert row["top_category"] == "b"


def test_customer_snapshot_excludes_its_own_week(customer_result: dict) -> None:
    row = customer_result[(1, week(2))]  # the orders of week 2 are not visible yet
    assert row["recency_days"] == 12
    assert row["frequency_orders_52w"] == 1
    assert row["monetary_value_52w"] == pytest.approx(20.0)
    assert row["promo_share"] == 0.0
    assert row["top_category"] == "a"


def test_customer_without_purchases(customer_result: dict) -> None:
    first = customer_result[(1, week(0))]
    assert (first["recency_days"], first["frequency_orders_52w"], first["top_category"]) == (
        31, 0, "none"
    )
    new = customer_result[(2, week(4))]
    assert new["recency_days"] == (week(4) - date(2024, 1, 10)).days
    assert new["monetary_value_52w"] == 0.0 and new["avg_discount_depth"] == 0.0


def test_customer_window_is_52_weeks(spark: SparkSession) -> None:
    order_lines = spark.createDataFrame(
        [(1, 1, "a", week(0), date(2024, 1, 2), 1, 10.0, 0.0, 10.0, False, False)],
        ORDER_LINE_SCHEMA,
    )
    customers = spark.createDataFrame([(1, date(2023, 6, 1))], "customer_id long, signup_date date")
    rows = by_key(build_customer_features(order_lines, customers, week(53)), "customer_id")
    assert rows[(1, week(52))]["frequency_orders_52w"] == 1
    assert rows[(1, week(52))]["top_category"] == "a"
    assert rows[(1, week(53))]["frequency_orders_52w"] == 0
    assert rows[(1, week(53))]["top_category"] == "none"
    assert rows[(1, week(53))]["recency_days"] == 7 * 53 - 1


PWS_SCHEMA = (
    "product_id long, week_start date, units long, discount_depth double, "
    "is_promoted boolean, avg_list_price double"
)
PRODUCT_SCHEMA = "product_id long, category string, list_price double, unit_cost double, margin_rate double"


def test_product_features(spark: SparkSession) -> None:
    products = spark.createDataFrame([(1, "a", 10.0, 6.0, 0.4)], PRODUCT_SCHEMA)
    sales = spark.createDataFrame(
        [
            (1, week(0), 4, 0.0, False, 10.0),
            (1, week(1), 10, 0.2, True, 10.0),
            (1, week(2), 6, 0.0, False, 10.0),
            (1, week(3), 8, 0.0, False, 10.0),
        ],
        PWS_SCHEMA,
    )
    result = build_product_features(products, sales, plan_week=week(4))
    assert result.columns == PRODUCT_COLUMNS
    rows = by_key(result, "product_id")
    assert sorted(rows) == [(1, week(n)) for n in range(5)]
    assert [rows[(1, week(n))]["popularity_units_12w"] for n in range(5)] == [0, 4, 14, 20, 28]
    assert rows[(1, week(1))]["promo_lift"] == 1.0  # no promoted week seen before week 1
    assert rows[(1, week(2))]["promo_lift"] == pytest.approx(11 / 5)
    assert rows[(1, week(4))]["promo_lift"] == pytest.approx(11 / 7)
    assert rows[(1, week(4))]["margin_rate"] == 0.4 and rows[(1, week(4))]["category"] == "a"


def test_product_popularity_window_is_12_weeks(spark: SparkSession) -> None:
    products = spark.createDataFrame([(1, "a", 10.0, 6.0, 0.4)], PRODUCT_SCHEMA)
    sales = spark.createDataFrame(
        [(1, week(n), n + 1, 0.0, False, 10.0) for n in range(20)], PWS_SCHEMA
    )
    rows = by_key(build_product_features(products, sales, week(20)), "product_id")
    assert rows[(1, week(20))]["popularity_units_12w"] == sum(range(9, 21))


@pytest.fixture(scope="module")
def product_week_result(spark: SparkSession) -> dict:
    products = spark.createDataFrame(
        [(1, "b", 12.0, 6.0, 0.5), (2, "a", 20.0, 15.0, 0.25)], PRODUCT_SCHEMA
    )
    sales = spark.createDataFrame(
        [(1, week(n), n + 1, 0.0, False, 11.0) for n in range(59)]
        + [(1, week(59), 60, 0.2, True, 11.0)]
        + [(2, week(n), 0, 0.0, False, 20.0) for n in range(60)],
        PWS_SCHEMA,
    )
    calendar = spark.createDataFrame(
        [(week(n), week(n).isocalendar().week, n == 60, "Xmas" if n == 60 else None)
         for n in range(62)],
        "week_start date, week_of_year int, is_holiday_week boolean, holiday_name string",
    )
    result = build_product_week_features(products, sales, calendar, plan_week=week(60))
    assert result.columns == PRODUCT_WEEK_COLUMNS
    assert result.schema["product_id"].dataType == LongType()
    return by_key(result, "product_id")


def test_product_week_rows_include_plan_week(product_week_result: dict) -> None:
    assert sorted(product_week_result) == [(p, week(n)) for p in (1, 2) for n in range(61)]
    plan = product_week_result[(1, week(60))]
    assert (plan["discount_depth"], plan["is_promoted"], plan["list_price"]) == (0.0, False, 12.0)
    assert plan["is_holiday_week"] is True
    assert plan["week_of_year"] == week(60).isocalendar().week
    assert plan["units_lag_1"] == 60 and plan["units_lag_52"] == 9


def test_product_week_lags_exclude_current_week(product_week_result: dict) -> None:
    row = product_week_result[(1, week(59))]  # units of week n are n + 1
    assert [row[f"units_lag_{k}"] for k in (1, 2, 4, 52)] == [59, 58, 56, 8]
    assert row["units_roll_mean_4"] == pytest.approx((59 + 58 + 57 + 56) / 4)
    assert row["units_roll_mean_12"] == pytest.approx(sum(range(48, 60)) / 12)
    assert row["units_roll_std_12"] == pytest.approx(math.sqrt(13.0))  # 12 consecutive ints
    assert (row["discount_depth"], row["is_promoted"], row["list_price"]) == (0.2, True, 11.0)


def test_product_week_start_of_history(product_week_result: dict) -> None:
    first = product_week_result[(1, week(0))]
    assert [first[f"units_lag_{k}"] for k in (1, 2, 4, 52)] == [0, 0, 0, 0]
    assert first["units_roll_mean_4"] == 0.0 and first["units_roll_std_12"] == 0.0
    assert product_week_result[(1, week(51))]["units_lag_52"] == 0
    assert product_week_result[(1, week(1))]["units_roll_mean_12"] == 1.0
    assert product_week_result[(1, week(3))]["category_idx"] == 1
    assert product_week_result[(2, week(3))]["category_idx"] == 0


def test_plan_week_resolution() -> None:
    assert resolve_plan_week(week(10), None) == week(11)
    assert resolve_plan_week(week(10), week(5)) == week(5)
    with pytest.raises(FeatureJobError, match="not a Monday"):
        resolve_plan_week(week(10), week(5) + timedelta(days=1))
