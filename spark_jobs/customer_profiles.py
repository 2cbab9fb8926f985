"""Customer profiles: one row per customer as of the plan week, for segmentation and BI.

A profile uses only order lines of weeks before the plan week `t` (point-in-time, as the
feature jobs); the window is the 52 weeks before `t`, like `customer_features`. A customer is
profiled when they signed up before `t` or bought before it. Purchases are lines that are not
returns and have a positive quantity; returns only subtract from the money spent.

- recency_days: days from the last purchase before `t` (any week) to `t`; null when none.
- tenure_days: days from the signup date (or the first purchase, when earlier or without a
  signup date) to `t`.
- frequency_orders_52w: purchase orders in the window.
- monetary_value_52w: net revenue in the window (returns subtract).
- basket_units: units per purchase order in the window (0 without purchases).
- price_index: paid unit price over its category's average list price (over the units sold in
  the window, guests included), averaged over the customer's units; 1 = a typical unit of the
  category at full price, below 1 = cheaper products or discounts. Null without purchases.
- price_tier: 'budget' (price_index < 0.9), 'mid' (0.9 to < 1.1), 'premium' (>= 1.1); null
  without purchases (PRICE_TIERS).
- promo_share: share of the units bought that were on promotion (0 without purchases).
- promo_depth: average discount depth of those promoted units (0 without any).
- web_share, app_share, store_share: shares of the purchase orders (with a known channel) by
  channel; 0 without purchases.
- category_shares: map category -> share of the units bought in the window (empty without
  purchases); top_category: the category with the most units (ties: first by name), 'none'
  without purchases.
- lifecycle (first that applies, LIFECYCLE_*):
  'new': signed up (or first bought, without a signup date) in the 8 weeks before `t`
  (tenure_days <= 56);
  'active': a purchase in the 4 weeks before `t` (recency_days <= 28);
  'lapsing': the last purchase 4 to 13 weeks before `t` (28 < recency_days <= 91);
  'churned': no purchase for 13 weeks or more (recency_days > 91), or never.
"""

from __future__ import annotations

from datetime import date, timedelta

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

WINDOW_WEEKS = 52
NO_CATEGORY = "none"
CHANNELS = ("web", "app", "store")

#: price_index cut-offs: below the first is 'budget', from the second on 'premium'.
PRICE_TIERS = ((0.85, "budget"), (1.05, "mid"), (float("inf"), "premium"))

#: lifecycle cut-offs in days before the plan week
LIFECYCLE_NEW_DAYS = 8 * 7
LIFECYCLE_ACTIVE_DAYS = 4 * 7
LIFECYCLE_LAPSING_DAYS = 13 * 7
LIFECYCLES = ("new", "active", "lapsing", "churned")

COLUMNS = [
    "customer_id",
    "plan_week",
    "recency_days",
    "tenure_days",
    "frequency_orders_52w",
    "monetary_value_52w",
    "basket_units",
    "price_index",
    "price_tier",
    "promo_share",
    "promo_depth",
    "web_share",
    "app_share",
    "store_share",
    "category_shares",
    "top_category",
    "lifecycle",
]


def price_tier(index: F.Column) -> F.Column:
    """The price tier of a price_index (PRICE_TIERS); null for a null index."""
    (budget, _), (mid, _), _ = PRICE_TIERS
    return (F.when(index < budget, "budget").when(index < mid, "mid")
            .when(index.isNotNull(), "premium"))


def build_customer_profiles(
    order_lines: DataFrame, customers: DataFrame, plan_week: date
) -> DataFrame:
    """One profile per customer as of `plan_week` (columns COLUMNS) from marts.order_lines and
    marts.customers."""
    plan = F.lit(plan_week)
    window_start = plan_week - timedelta(weeks=WINDOW_WEEKS)
    past = order_lines.where(F.col("week_start") < plan)
    is_purchase = ~F.col("is_return") & (F.col("quantity") > 0)
    in_window = F.col("week_start") >= F.lit(window_start)
    bought = past.where(is_purchase)
    bought_52w = bought.where(in_window)

    # each category's average list price over the units sold in the window (guests included)
    category_price = bought_52w.groupBy("category").agg(
        (F.sum(F.col("quantity") * F.col("unit_list_price")) / F.sum("quantity"))
        .alias("category_list_price"))

    lines = bought_52w.where(F.col("customer_id").isNotNull()).join(
        category_price, "category")
    is_promoted = F.col("is_promoted")
    per_customer = lines.groupBy("customer_id").agg(
        F.countDistinct("order_id").alias("orders"),
        F.sum("quantity").alias("units"),
        F.sum(F.when(is_promoted, F.col("quantity"))).alias("promo_units"),
        F.sum(F.when(is_promoted, F.col("quantity") * F.col("discount_depth")))
        .alias("promo_depth_units"),
        F.sum(F.col("quantity") * F.col("unit_paid_price") / F.col("category_list_price"))
        .alias("price_index_units"),
        F.countDistinct(F.when(F.col("channel").isNotNull(), F.col("order_id")))
        .alias("channel_orders"),
        *[F.countDistinct(F.when(F.col("channel") == c, F.col("order_id"))).alias(f"{c}_orders")
          for c in CHANNELS],
    )
    spent = (past.where(in_window & F.col("customer_id").isNotNull())
             .groupBy("customer_id").agg(F.sum("revenue").alias("monetary")))
    purchase_day = F.coalesce(F.col("order_date"), F.col("week_start"))
    history = bought.where(F.col("customer_id").isNotNull()).groupBy("customer_id").agg(
        F.max(purchase_day).alias("last_purchase"), F.min(purchase_day).alias("first_purchase"))

    profiles = (
        customers.select("customer_id", "signup_date")
        .join(history, "customer_id", "left")
        .where((F.col("signup_date") < plan) | F.col("last_purchase").isNotNull())
        .join(per_customer, "customer_id", "left")
        .join(spent, "customer_id", "left")
        .join(_category_shares(lines), "customer_id", "left")
    )

    def share(part: str, whole: str) -> F.Column:
        return F.when(F.col(whole) > 0, F.coalesce(F.col(part), F.lit(0)) / F.col(whole)
                      ).otherwise(F.lit(0.0))

    recency = F.datediff(plan, F.col("last_purchase"))
    tenure = F.greatest(F.datediff(plan, F.least("signup_date", "first_purchase")), F.lit(0))
    index = F.col("price_index_units") / F.col("units")
    lifecycle = (
        F.when(tenure <= LIFECYCLE_NEW_DAYS, "new")
        .when(recency <= LIFECYCLE_ACTIVE_DAYS, "active")
        .when(recency <= LIFECYCLE_LAPSING_DAYS, "lapsing")
        .otherwise("churned")
    )
    return profiles.select(
        F.col("customer_id").cast("long"),
        plan.alias("plan_week"),
        recency.cast("long").alias("recency_days"),
        tenure.cast("long").alias("tenure_days"),
        F.coalesce("orders", F.lit(0)).cast("long").alias("frequency_orders_52w"),
        F.coalesce("monetary", F.lit(0.0)).cast("double").alias("monetary_value_52w"),
        share("units", "orders").cast("double").alias("basket_units"),
        index.cast("double").alias("price_index"),
        price_tier(index).alias("price_tier"),
        share("promo_units", "units").cast("double").alias("promo_share"),
        share("promo_depth_units", "promo_units").cast("double").alias("promo_depth"),
        *[share(f"{c}_orders", "channel_orders").cast("double").alias(f"{c}_share")
          for c in CHANNELS],
        F.coalesce("category_shares", F.create_map().cast("map<string,double>"))
        .alias("category_shares"),
        F.coalesce("top_category", F.lit(NO_CATEGORY)).alias("top_category"),
        lifecycle.alias("lifecycle"),
    )


def _category_shares(lines: DataFrame) -> DataFrame:
    """(customer_id, category_shares, top_category) of the customers with purchases in `lines`."""
    units = lines.groupBy("customer_id", "category").agg(F.sum("quantity").alias("units"))
    by_customer = Window.partitionBy("customer_id")
    ranked = units.withColumn(
        "share", F.col("units") / F.sum("units").over(by_customer)
    ).withColumn(
        "rank", F.row_number().over(by_customer.orderBy(F.desc("units"), F.asc("category"))))
    return ranked.groupBy("customer_id").agg(
        # sorted by category, so the map is the same whatever order the rows came in
        F.map_from_entries(F.array_sort(F.collect_list(F.struct("category", "share"))))
        .cast("map<string,double>").alias("category_shares"),
        F.max(F.when(F.col("rank") == 1, F.col("category"))).alias("top_category"),
    )
