"""Unit tests of the pure feature functions on small hand-made DataFrames."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import DoubleType, LongType, TimestampType

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
# product_week_sales as the product-week job reads it: the promo type and stock-out flags and
# the contacted customers too
PWS_WEEK_SCHEMA = (
    PWS_SCHEMA + ", promo_display boolean, promo_mailer boolean, promo_coupon boolean, "
    "is_stocked_out boolean, contacted_customers int"
)
NO_FLAGS = (False, False, False, False, 0)  # no promo type, no stock-out, no contact
CALENDAR_SCHEMA = "week_start date, week_of_year int, is_holiday_week boolean, holiday_name string"


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
        [(1, week(n), n + 1, 0.0, False, 11.0, *NO_FLAGS) for n in range(59)]
        + [(1, week(59), 60, 0.2, True, 11.0, *NO_FLAGS)]
        + [(2, week(n), 0, 0.0, False, 20.0, *NO_FLAGS) for n in range(60)],
        PWS_WEEK_SCHEMA,
    )
    calendar = spark.createDataFrame(
        [(week(n), week(n).isocalendar().week, n == 60, "Xmas" if n == 60 else None)
         for n in range(62)],
        CALENDAR_SCHEMA,
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


# Promotions, promo types, stock-outs and contacts of four products over weeks 0-3 (plan week
# 4): category "a" holds products 1, 2 and 3, category "b" product 4 alone.
# (product, week): (units, discount_depth, is_promoted, display, mailer, coupon, stocked out,
#                   contacted customers)
COVARIATE_SALES = {
    (1, 0): (10, 0.0, False, False, False, False, False, 0),
    (1, 1): (10, 0.0, False, False, False, False, False, 0),
    (1, 2): (20, 0.2, True, True, False, True, False, 3),  # display and coupon in one week
    (1, 3): (5, 0.1, True, False, True, False, True, 1),  # mailer, stocked out
    (2, 0): (30, 0.0, False, False, False, False, False, 0),
    (2, 1): (10, 0.25, True, False, False, False, False, 5),  # a price cut: no type flag
    (2, 2): (10, 0.0, False, False, False, False, False, 0),
    (2, 3): (40, 0.3, True, False, True, False, False, 0),  # its own spike is not in its share
    (3, 0): (0, 0.0, False, False, False, False, True, 0),
    (3, 1): (0, 0.0, False, False, False, False, True, 0),
    (3, 2): (0, 0.0, False, False, False, False, False, 0),
    (3, 3): (4, 0.5, True, True, False, False, False, 0),  # no units before: a share of 0
    **{(4, n): (5, 0.4 if n == 2 else 0.0, n == 2, False, False, False, False, 0)
       for n in range(4)},
}


def covariate_features(spark: SparkSession, plan_week: date) -> dict:
    products = spark.createDataFrame(
        [(1, "a", 10.0, 5.0, 0.5), (2, "a", 10.0, 5.0, 0.5), (3, "a", 10.0, 5.0, 0.5),
         (4, "b", 10.0, 5.0, 0.5)],
        PRODUCT_SCHEMA,
    )
    sales = spark.createDataFrame(
        [(p, week(n), units, depth, promoted, 10.0, *flags)
         for (p, n), (units, depth, promoted, *flags) in COVARIATE_SALES.items()],
        PWS_WEEK_SCHEMA,
    )
    calendar = spark.createDataFrame(
        [(week(n), week(n).isocalendar().week, False, None) for n in range(6)], CALENDAR_SCHEMA
    )
    result = build_product_week_features(products, sales, calendar, plan_week)
    assert result.columns == PRODUCT_WEEK_COLUMNS
    for column in PRODUCT_WEEK_COLUMNS[-11:]:
        assert result.schema[column].dataType == DoubleType(), column
    return by_key(result, "product_id")


@pytest.fixture(scope="module")
def covariates(spark: SparkSession) -> dict:
    return covariate_features(spark, plan_week=week(4))


def column(rows: dict, product: int, name: str, weeks: range = range(5)) -> list:
    return [rows[(product, week(n))][name] for n in weeks]


def test_discount_depth_lags_hand_computed(covariates: dict) -> None:
    assert column(covariates, 1, "discount_depth_lag_1") == [0.0, 0.0, 0.0, 0.2, 0.1]
    assert column(covariates, 1, "discount_depth_lag_2") == [0.0, 0.0, 0.0, 0.0, 0.2]
    assert column(covariates, 1, "discount_depth_lag_3") == [0.0, 0.0, 0.0, 0.0, 0.0]
    assert column(covariates, 2, "discount_depth_lag_1") == [0.0, 0.0, 0.25, 0.0, 0.3]
    assert column(covariates, 2, "discount_depth_lag_2") == [0.0, 0.0, 0.0, 0.25, 0.0]
    assert column(covariates, 2, "discount_depth_lag_3") == [0.0, 0.0, 0.0, 0.0, 0.25]
    assert column(covariates, 4, "discount_depth_lag_1") == [0.0, 0.0, 0.0, 0.4, 0.0]


def test_promo_type_flags_hand_computed(covariates: dict) -> None:
    assert column(covariates, 1, "promo_display") == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert column(covariates, 1, "promo_coupon") == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert column(covariates, 1, "promo_mailer") == [0.0, 0.0, 0.0, 1.0, 0.0]
    assert column(covariates, 2, "promo_mailer") == [0.0, 0.0, 0.0, 1.0, 0.0]
    assert column(covariates, 3, "promo_display") == [0.0, 0.0, 0.0, 1.0, 0.0]
    for kind in ("display", "mailer", "coupon"):  # a price cut has no type flag
        assert column(covariates, 2, f"promo_{kind}")[1] == 0.0
        assert column(covariates, 4, f"promo_{kind}") == [0.0] * 5


def test_category_promo_pressure_hand_computed(covariates: dict) -> None:
    """Shares of category "a" over the weeks before: week 1 {1: 10, 2: 30, 3: 0} / 40,
    week 2 {1: 20, 2: 40, 3: 0} / 60, week 3 {1: 40, 2: 50, 3: 0} / 90."""
    expected = {
        1: [0.0, 30 / 40 * 0.25, 0.0, 50 / 90 * 0.3 + 0 * 0.5, 0.0],
        2: [0.0, 0.0, 20 / 60 * 0.2, 40 / 90 * 0.1 + 0 * 0.5, 0.0],
        3: [0.0, 30 / 40 * 0.25, 20 / 60 * 0.2, 40 / 90 * 0.1 + 50 / 90 * 0.3, 0.0],
        4: [0.0] * 5,  # alone in category "b": its own promotion does not count
    }
    for product, values in expected.items():
        assert column(covariates, product, "category_promo_pressure") == pytest.approx(values)
    counts = {1: [0, 1, 0, 2, 0], 2: [0, 0, 1, 2, 0], 3: [0, 1, 1, 2, 0], 4: [0] * 5}
    for product, values in counts.items():
        assert column(covariates, product, "category_promo_count") == values


def test_category_share_is_point_in_time(covariates: dict) -> None:
    """Week 3's share of product 2 is 50 / 90 from weeks 0-2, not (50 + 40) / (90 + 49) with the
    week's own units."""
    pressure = covariates[(1, week(3))]["category_promo_pressure"]
    assert pressure == pytest.approx(1 / 6)
    assert pressure != pytest.approx(90 / 139 * 0.3 + 4 / 139 * 0.5)


def test_stock_outs_hand_computed(covariates: dict) -> None:
    assert column(covariates, 3, "is_stocked_out") == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert column(covariates, 3, "stocked_out_lag_1") == [0.0, 1.0, 1.0, 0.0, 0.0]
    assert column(covariates, 1, "is_stocked_out") == [0.0, 0.0, 0.0, 1.0, 0.0]
    assert column(covariates, 1, "stocked_out_lag_1") == [0.0, 0.0, 0.0, 0.0, 1.0]


def test_contacted_customers_hand_computed(covariates: dict) -> None:
    assert column(covariates, 1, "contacted_customers") == [0.0, 0.0, 3.0, 1.0, 0.0]
    assert column(covariates, 2, "contacted_customers") == [0.0, 5.0, 0.0, 0.0, 0.0]
    assert column(covariates, 3, "contacted_customers") == [0.0] * 5


WEEK_COVARIATES = ("discount_depth", "promo_display", "promo_mailer", "promo_coupon",
                   "category_promo_pressure", "category_promo_count", "is_stocked_out",
                   "contacted_customers")


def test_plan_week_covariates_are_zero_even_with_data_that_week(spark: SparkSession,
                                                                covariates: dict) -> None:
    """A backtest planning week 3: its row ignores week 3's own promotions and stock-outs
    (known in the data) and keeps the lags; the weeks before are unchanged."""
    backtest = covariate_features(spark, plan_week=week(3))
    assert sorted(backtest) == [(p, week(n)) for p in (1, 2, 3, 4) for n in range(4)]
    for product in (1, 2, 3, 4):
        plan = backtest[(product, week(3))]
        assert [plan[name] for name in WEEK_COVARIATES] == [0.0] * len(WEEK_COVARIATES)
        assert plan["is_promoted"] is False
        for n in range(3):
            before, full = backtest[(product, week(n))], covariates[(product, week(n))]
            assert before.keys() == full.keys()
            for name in PRODUCT_WEEK_COLUMNS[2:]:
                assert before[name] == pytest.approx(full[name]), (product, n, name)
    assert backtest[(1, week(3))]["discount_depth_lag_1"] == 0.2
    assert backtest[(3, week(3))]["stocked_out_lag_1"] == 0.0
    for product in (1, 2, 3, 4):
        plan = covariates[(product, week(4))]
        assert [plan[name] for name in WEEK_COVARIATES] == [0.0] * len(WEEK_COVARIATES)


def test_plan_week_resolution() -> None:
    assert resolve_plan_week(week(10), None) == week(11)
    assert resolve_plan_week(week(10), week(5)) == week(5)
    with pytest.raises(FeatureJobError, match="not a Monday"):
        resolve_plan_week(week(10), week(5) + timedelta(days=1))
