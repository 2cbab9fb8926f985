"""Customer profiles on a small hand-made market: every value computed by hand."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from pyspark.sql import SparkSession

from spark_jobs.customer_profiles import COLUMNS, build_customer_profiles

PLAN = date(2024, 6, 3)  # a Monday
LONG_AGO = date(2022, 1, 1)


def week(n: int) -> date:
    """Monday of the week n weeks from the plan week (negative: before it)."""
    return PLAN + timedelta(days=7 * n)


SCHEMA = (
    "order_id long, customer_id long, category string, week_start date, order_date date, "
    "channel string, quantity int, unit_list_price double, unit_paid_price double, "
    "discount_depth double, revenue double, is_return boolean, is_promoted boolean"
)


def line(order, customer, category, week_start, day, channel, quantity, list_price,
         paid_price, is_return=False):
    depth = round(1 - paid_price / list_price, 6)
    return (order, customer, category, week_start, week_start + timedelta(days=day), channel,
            quantity, list_price, paid_price, depth, quantity * paid_price, is_return,
            depth >= 0.01)


LINES = [
    # customer 1: two orders in the window, a return, and an order in the plan week
    line(100, 1, "a", week(-2), 2, "web", 2, 10.0, 8.0),
    line(100, 1, "b", week(-2), 2, "web", 1, 20.0, 20.0),
    line(101, 1, "a", week(-10), 1, "store", 1, 10.0, 10.0),
    line(102, 1, "b", week(0), 1, "app", 5, 20.0, 20.0),  # the plan week: not counted
    line(103, 1, "a", week(-1), 0, "web", -1, 10.0, 8.0, is_return=True),
    # customer 2: lapsing deal buyer; 3: churned, with an order before the window
    line(200, 2, "b", week(-6), 3, "app", 3, 20.0, 15.0),
    line(300, 3, "a", week(-20), 0, "store", 1, 10.0, 10.0),
    line(301, 3, "a", week(-60), 0, "store", 4, 10.0, 10.0),
    # customer 4: new (signed up 3 weeks ago) and bought last Sunday
    line(400, 4, "a", week(-1), 6, "app", 1, 12.0, 12.0),
    # a guest's units count in the category's average list price
    line(500, None, "a", week(-3), 0, "web", 2, 16.0, 16.0),
    # customer 7: a premium buyer
    line(700, 7, "b", week(-3), 0, "web", 1, 28.0, 28.0),
    # lifecycle boundaries, in category c: 28 days (active), 91 (lapsing), 92 (churned)
    line(800, 8, "c", week(-4), 0, "web", 1, 5.0, 5.0),
    line(900, 9, "c", week(-13), 0, "web", 1, 5.0, 5.0),
    line(1000, 10, "c", week(-14), 6, "web", 1, 5.0, 5.0),
    # customer 12 bought only in the plan week
    line(1200, 12, "c", week(0), 0, "web", 1, 5.0, 5.0),
]
SIGNUPS = [(1, LONG_AGO), (2, LONG_AGO), (3, LONG_AGO), (4, PLAN - timedelta(days=21)),
           (5, LONG_AGO), (6, PLAN), (7, LONG_AGO), (8, LONG_AGO), (9, LONG_AGO),
           (10, LONG_AGO), (11, PLAN - timedelta(days=56)), (12, LONG_AGO)]

# the categories' average list prices over the window's units (guests included)
A_PRICE = (2 * 10 + 1 * 10 + 1 * 10 + 1 * 12 + 2 * 16) / 7
B_PRICE = (1 * 20 + 3 * 20 + 1 * 28) / 5


@pytest.fixture(scope="module")
def profiles(spark: SparkSession) -> dict[int, dict]:
    result = build_customer_profiles(
        spark.createDataFrame(LINES, SCHEMA),
        spark.createDataFrame(SIGNUPS, "customer_id long, signup_date date"), PLAN)
    assert result.columns == COLUMNS
    return {row["customer_id"]: row.asDict() for row in result.collect()}


def test_only_customers_who_signed_up_or_bought_before_the_plan_week(profiles) -> None:
    assert sorted(profiles) == [1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12]  # 6 signed up in it
    assert all(row["plan_week"] == PLAN for row in profiles.values())


def test_profile_values_hand_computed(profiles) -> None:
    one = profiles[1]
    assert one["frequency_orders_52w"] == 2  # the plan week's order 102 is not counted
    assert one["monetary_value_52w"] == pytest.approx(16 + 20 + 10 - 8)  # the return subtracts
    assert one["recency_days"] == 12
    assert one["tenure_days"] == (PLAN - LONG_AGO).days
    assert one["basket_units"] == pytest.approx(4 / 2)
    assert one["promo_share"] == pytest.approx(2 / 4)
    assert one["promo_depth"] == pytest.approx(0.2)
    price_index = (2 * 8 / A_PRICE + 20 / B_PRICE + 10 / A_PRICE) / 4
    assert one["price_index"] == pytest.approx(price_index)
    assert one["price_tier"] == "budget"
    assert (one["web_share"], one["app_share"], one["store_share"]) == (0.5, 0.0, 0.5)
    assert one["category_shares"] == {"a": pytest.approx(0.75), "b": pytest.approx(0.25)}
    assert one["top_category"] == "a"

    two = profiles[2]
    assert two["promo_share"] == 1.0 and two["promo_depth"] == pytest.approx(0.25)
    assert two["price_index"] == pytest.approx(15 / B_PRICE)
    assert two["app_share"] == 1.0 and two["category_shares"] == {"b": 1.0}

    three = profiles[3]  # the order 60 weeks ago is outside the window, not in the recency
    assert (three["frequency_orders_52w"], three["monetary_value_52w"]) == (1, 10.0)
    assert three["recency_days"] == 140

    assert profiles[4]["price_index"] == pytest.approx(12 / A_PRICE)
    assert profiles[4]["price_tier"] == "mid"
    assert profiles[7]["price_index"] == pytest.approx(28 / B_PRICE)
    assert profiles[7]["price_tier"] == "premium"


def test_a_customer_without_purchases(profiles) -> None:
    for customer in (5, 12):  # never bought; bought only in the plan week
        row = profiles[customer]
        assert row["recency_days"] is None and row["price_index"] is None
        assert row["price_tier"] is None
        assert (row["frequency_orders_52w"], row["monetary_value_52w"], row["basket_units"],
                row["promo_share"], row["web_share"]) == (0, 0.0, 0.0, 0.0, 0.0)
        assert row["category_shares"] == {} and row["top_category"] == "none"


def test_lifecycle_cases_and_cut_offs(profiles) -> None:
    lifecycle = {customer: row["lifecycle"] for customer, row in profiles.items()}
    assert lifecycle == {
        1: "active",  # bought 12 days ago
        2: "lapsing",  # 39 days
        3: "churned",  # 140 days
        4: "new",  # signed up 21 days ago (and bought: new comes first)
        5: "churned",  # never bought
        7: "active",
        8: "active",  # exactly 28 days
        9: "lapsing",  # exactly 91 days
        10: "churned",  # 92 days
        11: "new",  # signed up exactly 8 weeks ago
        12: "churned",  # its only purchase is in the plan week
    }
    assert profiles[8]["recency_days"] == 28
    assert profiles[9]["recency_days"] == 91
    assert profiles[10]["recency_days"] == 92
    assert profiles[11]["tenure_days"] == 56
