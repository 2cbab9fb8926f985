"""Customer features: weekly RFM-style snapshots of every customer for the recommender.

A snapshot stamped at the Monday `t` (00:00 UTC) uses only order lines of weeks before `t`.
Snapshots run from the first week of data to the plan week, for every customer who signed up
(or ordered) before `t`.

- recency_days: days from the last purchase before `t` to `t`; without any purchase, the days
  since signup (0 at the earliest).
- frequency_orders_52w: purchase orders (returns excluded) in the 52 weeks before `t`.
- monetary_value_52w: net revenue (returns subtract) in the 52 weeks before `t`.
- avg_discount_depth: 1 - paid / list value of the units bought in the 52 weeks (0 if none).
- promo_share: share of those units that were promoted (0 if none).
- top_category: category with the most units bought in the 52 weeks (ties: first by name),
  'none' without purchases.

Money sums are kept in millionths (longs), so the 52-week sums are exact differences of running
totals and a window without purchases sums to exactly 0.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from spark_jobs.handoff import MartHandoff
from spark_jobs.session import read_mart, uri
from spark_jobs.weeks import week_index, weeks_until, with_event_timestamp

log = logging.getLogger(__name__)

NAME = "customer_features"
MARTS = ("order_lines", "customers")  # the marts `run` reads
WINDOW_WEEKS = 52
NO_CATEGORY = "none"
MICROS = 1_000_000
CATEGORY_SLOTS = 1 << 20  # more categories than any catalogue has
COLUMNS = [
    "customer_id",
    "event_timestamp",
    "recency_days",
    "frequency_orders_52w",
    "monetary_value_52w",
    "avg_discount_depth",
    "promo_share",
    "top_category",
]


def build_customer_features(
    order_lines: DataFrame, customers: DataFrame, plan_week: date
) -> DataFrame:
    """Weekly customer snapshots (columns COLUMNS) from marts.order_lines and marts.customers."""
    lines = order_lines.where(F.col("customer_id").isNotNull())
    is_purchase = ~F.col("is_return") & (F.col("quantity") > 0)
    weekly = lines.groupBy("customer_id", "week_start").agg(
        F.size(F.collect_set(F.when(is_purchase, F.col("order_id")))).alias("orders"),
        _micros(F.sum("revenue")).alias("revenue"),
        _micros(F.sum(F.when(is_purchase, F.col("quantity") * F.col("unit_list_price")))).alias(
            "list_value"
        ),
        _micros(
            F.sum(
                F.when(
                    is_purchase,
                    F.col("quantity") * F.col("unit_list_price") * F.col("discount_depth"),
                )
            )
        ).alias("discount_value"),
        F.sum(F.when(is_purchase, F.col("quantity"))).alias("units"),
        F.sum(F.when(is_purchase & F.col("is_promoted"), F.col("quantity"))).alias(
            "promo_units"
        ),
        F.max(F.when(is_purchase, F.col("order_date"))).alias("last_order_date"),
    )

    grid = (
        customers.select("customer_id", "signup_date")
        .crossJoin(weeks_until(order_lines, plan_week))
        .join(weekly, ["customer_id", "week_start"], "left")
        .withColumn("week_idx", week_index())
    )
    by_week = Window.partitionBy("customer_id").orderBy("week_idx")
    running = by_week.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    history = by_week.rangeBetween(Window.unboundedPreceding, -1)
    sums = ("orders", "revenue", "list_value", "discount_value", "units", "promo_units")

    # The grid has every week of every customer, so the sum over the WINDOW_WEEKS weeks before
    # a row is the difference of two earlier running totals: linear in the rows, exact in longs.
    def trailing_sum(column: str) -> F.Column:
        total = F.col(f"{column}_total")
        return F.lag(total, 1, 0).over(by_week) - F.lag(total, WINDOW_WEEKS + 1, 0).over(by_week)

    snapshots = (
        grid.select(
            "*",
            F.max("last_order_date").over(history).alias("last_purchase"),
            *[F.coalesce(F.sum(c).over(running), F.lit(0)).alias(f"{c}_total") for c in sums],
        )
        .select("customer_id", "week_start", "signup_date", "last_purchase",
                *[trailing_sum(c).alias(f"{c}_52w") for c in sums])
        .where((F.col("signup_date") < F.col("week_start")) | F.col("last_purchase").isNotNull())
    )

    features = snapshots.select(
        F.col("customer_id").cast("long"),
        "week_start",
        F.greatest(
            F.datediff("week_start", F.coalesce("last_purchase", "signup_date")), F.lit(0)
        ).cast("long").alias("recency_days"),
        F.col("orders_52w").cast("long").alias("frequency_orders_52w"),
        (F.col("revenue_52w") / MICROS).alias("monetary_value_52w"),
        F.when(F.col("list_value_52w") > 0, F.col("discount_value_52w") / F.col("list_value_52w"))
        .otherwise(F.lit(0.0))
        .cast("double")
        .alias("avg_discount_depth"),
        F.when(F.col("units_52w") > 0, F.col("promo_units_52w") / F.col("units_52w"))
        .otherwise(F.lit(0.0))
        .cast("double")
        .alias("promo_share"),
    )
    top = _top_category(lines.where(is_purchase), plan_week)
    return with_event_timestamp(
        features.join(top, ["customer_id", "week_start"], "left").fillna(
            NO_CATEGORY, subset=["top_category"]
        )
    ).select(COLUMNS)


def _micros(amount: F.Column) -> F.Column:
    """A money amount in millionths as a long, so that window sums and differences are exact."""
    return F.round(amount * MICROS).cast("long")


def _top_category(purchases: DataFrame, plan_week: date) -> DataFrame:
    """(customer_id, week_start, top_category) for snapshots with purchases in the window.

    A week's units enter the window of the snapshot one week later and leave it WINDOW_WEEKS
    weeks after that, so each (customer, category) holds constant units between such changes:
    the spans are expanded to their snapshot weeks (only where units > 0) and the top category
    is taken per snapshot. Work grows with the categories bought in each window, not 52-fold.
    """
    categories = (
        purchases.select("category")
        .distinct()
        .withColumn("category_rank", F.dense_rank().over(Window.orderBy("category")) - 1)
    )
    weekly = (
        purchases.select("customer_id", "category", "week_start", "quantity")
        .repartition("customer_id")  # every step below is per customer: no further shuffle
        .groupBy("customer_id", "category", "week_start")
        .agg(F.sum("quantity").alias("units"))
        .join(F.broadcast(categories), "category")
    )
    enter = F.struct(F.date_add("week_start", 7).alias("at"), F.col("units").alias("change"))
    leave = F.struct(
        F.date_add("week_start", 7 * (WINDOW_WEEKS + 1)).alias("at"),
        (-F.col("units")).alias("change"),
    )
    changes = (
        weekly.select("customer_id", "category_rank", F.explode(F.array(enter, leave)).alias("c"))
        .groupBy("customer_id", "category_rank", F.col("c.at").alias("week_start"))
        .agg(F.sum("c.change").alias("change"))
    )
    by_pair = Window.partitionBy("customer_id", "category_rank").orderBy("week_start")
    spans = (
        changes.withColumn(
            "units",
            F.sum("change").over(by_pair.rowsBetween(Window.unboundedPreceding, Window.currentRow)),
        )
        .withColumn("until", F.lead("week_start").over(by_pair))
        .where((F.col("units") > 0) & (F.col("week_start") <= F.lit(plan_week)))
    )
    last_week = F.least(F.date_sub("until", 7), F.lit(plan_week))
    # one long per candidate, largest for the most units, then for the first category by name
    key = F.col("units") * CATEGORY_SLOTS + (CATEGORY_SLOTS - 1 - F.col("category_rank"))
    weeks = spans.select(
        key.alias("key"),
        "customer_id",
        F.explode(F.sequence("week_start", last_week, F.expr("interval 7 days"))).alias(
            "week_start"
        ),
    )
    top = weeks.groupBy("customer_id", "week_start").agg(
        (CATEGORY_SLOTS - 1 - F.max("key") % CATEGORY_SLOTS).alias("category_rank")
    )
    return top.join(F.broadcast(categories), "category_rank").select(
        "customer_id", "week_start", F.col("category").alias("top_category")
    )


def run(spark: SparkSession, marts: MartHandoff, plan_week: date, path: Path) -> int:
    """Read the marts, build the snapshots and overwrite the Parquet folder `path`."""
    order_lines = read_mart(spark, marts, "order_lines").cache()  # read by three branches
    features = build_customer_features(order_lines, read_mart(spark, marts, "customers"), plan_week)
    features.write.mode("overwrite").parquet(uri(path))
    order_lines.unpersist()
    return spark.read.parquet(uri(path)).count()
