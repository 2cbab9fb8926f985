"""Product features: weekly snapshots of every product for the recommender and the forecaster.

A snapshot stamped at the Monday `t` (00:00 UTC) uses only sales of weeks before `t`; the
catalogue attributes (category, list_price, unit_cost, margin_rate) come from marts.products.
Snapshots run from the first week of sales to the plan week.

- popularity_units_12w: units sold in the 12 weeks before `t`.
- promo_lift: (mean weekly units in promoted weeks + 1) / (mean in other weeks + 1), over all
  weeks before `t`; 1.0 until both kinds of week have been seen.
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

NAME = "product_features"
MARTS = ("products", "product_week_sales")  # the marts `run` reads
POPULARITY_WEEKS = 12
COLUMNS = [
    "product_id",
    "event_timestamp",
    "category",
    "list_price",
    "unit_cost",
    "margin_rate",
    "popularity_units_12w",
    "promo_lift",
]


def build_product_features(
    products: DataFrame, product_week_sales: DataFrame, plan_week: date
) -> DataFrame:
    """Weekly product snapshots (columns COLUMNS) from marts.products and product_week_sales."""
    sales = product_week_sales.select(
        "product_id", "week_start", F.col("units").cast("double"), "is_promoted"
    )
    grid = (
        products.select("product_id", "category", "list_price", "unit_cost", "margin_rate")
        .crossJoin(weeks_until(product_week_sales, plan_week))
        .join(sales, ["product_id", "week_start"], "left")
        .withColumn("week_idx", week_index())
    )
    by_week = Window.partitionBy("product_id").orderBy("week_idx")
    trailing = by_week.rangeBetween(-POPULARITY_WEEKS, -1)
    history = by_week.rangeBetween(Window.unboundedPreceding, -1)
    promoted = F.col("is_promoted")
    snapshots = (
        grid.withColumn("popularity", F.coalesce(F.sum("units").over(trailing), F.lit(0.0)))
        .withColumn("promo_mean", F.avg(F.when(promoted, F.col("units"))).over(history))
        .withColumn("base_mean", F.avg(F.when(~promoted, F.col("units"))).over(history))
    )
    lift = F.when(
        F.col("promo_mean").isNotNull() & F.col("base_mean").isNotNull(),
        (F.col("promo_mean") + 1.0) / (F.col("base_mean") + 1.0),
    ).otherwise(F.lit(1.0))
    return with_event_timestamp(
        snapshots.select(
            F.col("product_id").cast("long"),
            "week_start",
            "category",
            F.col("list_price").cast("double"),
            F.col("unit_cost").cast("double"),
            F.col("margin_rate").cast("double"),
            F.col("popularity").cast("long").alias("popularity_units_12w"),
            lift.cast("double").alias("promo_lift"),
        )
    ).select(COLUMNS)


def run(spark: SparkSession, marts: MartHandoff, plan_week: date, path: Path) -> int:
    """Read the marts, build the snapshots and overwrite the Parquet folder `path`."""
    features = build_product_features(
        read_mart(spark, marts, "products"),
        sales := read_mart(spark, marts, "product_week_sales").cache(),
        plan_week,
    )
    features.write.mode("overwrite").parquet(uri(path))
    sales.unpersist()
    return spark.read.parquet(uri(path)).count()
