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
"""

from __future__ import annotations

import logging
from datetime import date

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from promoflow.settings import Settings
from spark_jobs.session import read_mart
from spark_jobs.weeks import week_index, weeks_until, with_event_timestamp

log = logging.getLogger(__name__)

NAME = "customer_features"
WINDOW_WEEKS = 52
NO_CATEGORY = "none"
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
        F.countDistinct(F.when(is_purchase, F.col("order_id"))).alias("orders"),
        F.sum("revenue").alias("revenue"),
        F.sum(F.when(is_purchase, F.col("quantity") * F.col("unit_list_price"))).alias(
            "list_value"
        ),
        F.sum(
            F.when(
                is_purchase,
                F.col("quantity") * F.col("unit_list_price") * F.col("discount_depth"),
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
    trailing = by_week.rangeBetween(-WINDOW_WEEKS, -1)
    history = by_week.rangeBetween(Window.unboundedPreceding, -1)

    def trailing_sum(column: str) -> F.Column:
        return F.coalesce(F.sum(column).over(trailing), F.lit(0))

    snapshots = (
        grid.withColumn("last_purchase", F.max("last_order_date").over(history))
        .withColumn("orders_52w", trailing_sum("orders"))
        .withColumn("revenue_52w", trailing_sum("revenue"))
        .withColumn("list_52w", trailing_sum("list_value"))
        .withColumn("discount_52w", trailing_sum("discount_value"))
        .withColumn("units_52w", trailing_sum("units"))
        .withColumn("promo_units_52w", trailing_sum("promo_units"))
        .where((F.col("signup_date") < F.col("week_start")) | F.col("last_purchase").isNotNull())
    )

    features = snapshots.select(
        F.col("customer_id").cast("long"),
        "week_start",
        F.greatest(
            F.datediff("week_start", F.coalesce("last_purchase", "signup_date")), F.lit(0)
        ).cast("long").alias("recency_days"),
        F.col("orders_52w").cast("long").alias("frequency_orders_52w"),
        F.col("revenue_52w").cast("double").alias("monetary_value_52w"),
        F.when(F.col("list_52w") > 0, F.col("discount_52w") / F.col("list_52w"))
        .otherwise(F.lit(0.0))
        .cast("double")
        .alias("avg_discount_depth"),
        F.when(F.col("units_52w") > 0, F.col("promo_units_52w") / F.col("units_52w"))
        .otherwise(F.lit(0.0))
        .cast("double")
        .alias("promo_share"),
    )
    top = _top_category(lines.where(is_purchase))
    return with_event_timestamp(
        features.join(top, ["customer_id", "week_start"], "left").fillna(
            NO_CATEGORY, subset=["top_category"]
        )
    ).select(COLUMNS)


def _top_category(purchases: DataFrame) -> DataFrame:
    """(customer_id, week_start, top_category) for snapshots with purchases in the window."""
    contributions = (
        purchases.groupBy("customer_id", "category", "week_start")
        .agg(F.sum("quantity").alias("units"))
        .select(
            "customer_id",
            "category",
            "units",
            F.explode(
                F.transform(
                    F.sequence(F.lit(1), F.lit(WINDOW_WEEKS)),
                    lambda k: F.date_add(F.col("week_start"), k * 7),
                )
            ).alias("snapshot_week"),
        )
    )
    ranked = (
        contributions.groupBy("customer_id", "snapshot_week", "category")
        .agg(F.sum("units").alias("units"))
        .withColumn(
            "rank",
            F.row_number().over(
                Window.partitionBy("customer_id", "snapshot_week").orderBy(
                    F.desc("units"), F.asc("category")
                )
            ),
        )
    )
    return ranked.where(F.col("rank") == 1).select(
        "customer_id",
        F.col("snapshot_week").alias("week_start"),
        F.col("category").alias("top_category"),
    )


def run(spark: SparkSession, settings: Settings, plan_week: date) -> int:
    """Read the marts, build the snapshots and overwrite lake/features/customer_features."""
    order_lines = read_mart(spark, settings, "order_lines").cache()  # read by three branches
    features = build_customer_features(
        order_lines, read_mart(spark, settings, "customers"), plan_week
    )
    path = settings.feature_dir(NAME)
    features.write.mode("overwrite").parquet(str(path))
    order_lines.unpersist()
    return spark.read.parquet(str(path)).count()
