"""Product-week features: one row per product and week, the plan week included (forecaster).

The row of week `w` is stamped `event_timestamp = w` (00:00 UTC). Lags and rolling statistics
use only weeks before `w`; the week's own discount_depth and is_promoted are the planned
covariates (realized values in the past, 0 / false in the plan week, which the planner varies).
Weeks before the first week of data count as zero sales.

- category_idx: 0-based position of the category in the sorted list of categories.
- week_of_year, is_holiday_week: from marts.calendar_weeks (ISO week when missing there).
- units_lag_k: units sold k weeks before.
- units_roll_mean_4/12, units_roll_std_12: over the 4/12 weeks before (0 when undefined).
- list_price: the week's average list price, the catalogue price in the plan week.
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

NAME = "product_week_features"
LAGS = (1, 2, 4, 52)
COLUMNS = [
    "product_id",
    "event_timestamp",
    "category_idx",
    "week_of_year",
    "is_holiday_week",
    *[f"units_lag_{k}" for k in LAGS],
    "units_roll_mean_4",
    "units_roll_mean_12",
    "units_roll_std_12",
    "discount_depth",
    "is_promoted",
    "list_price",
]


def category_index(products: DataFrame) -> DataFrame:
    """(category, category_idx): 0-based rank of each category name (a handful of rows)."""
    return (
        products.select("category")
        .distinct()
        .withColumn(
            "category_idx",
            (F.dense_rank().over(Window.orderBy("category")) - 1).cast("long"),
        )
    )


def build_product_week_features(
    products: DataFrame,
    product_week_sales: DataFrame,
    calendar_weeks: DataFrame,
    plan_week: date,
) -> DataFrame:
    """Product-week rows (columns COLUMNS) from the products, sales and calendar marts."""
    sales = product_week_sales.select(
        "product_id",
        "week_start",
        F.col("units").cast("double").alias("units"),
        F.col("discount_depth").cast("double").alias("week_discount_depth"),
        F.col("is_promoted").alias("week_is_promoted"),
        F.col("avg_list_price").cast("double").alias("week_list_price"),
    )
    calendar = calendar_weeks.select(
        "week_start",
        F.col("week_of_year").cast("long").alias("calendar_week_of_year"),
        F.col("is_holiday_week").alias("calendar_is_holiday_week"),
    )
    grid = (
        products.select("product_id", "category", F.col("list_price").cast("double"))
        .crossJoin(weeks_until(product_week_sales, plan_week))
        .join(category_index(products), "category")
        .join(sales, ["product_id", "week_start"], "left")
        .join(calendar, "week_start", "left")
        .withColumn("week_idx", week_index())
        .withColumn("units", F.coalesce("units", F.lit(0.0)))
    )
    by_week = Window.partitionBy("product_id").orderBy("week_idx")

    def over_weeks(agg: F.Column, first: int, last: int) -> F.Column:
        return F.coalesce(agg.over(by_week.rangeBetween(first, last)), F.lit(0.0))

    is_plan_week = F.col("week_start") == F.lit(plan_week)
    lags = [
        over_weeks(F.sum("units"), -k, -k).cast("long").alias(f"units_lag_{k}") for k in LAGS
    ]
    rows = grid.select(
        F.col("product_id").cast("long"),
        "week_start",
        "category_idx",
        F.coalesce("calendar_week_of_year", F.weekofyear("week_start")).cast("long").alias(
            "week_of_year"
        ),
        F.coalesce("calendar_is_holiday_week", F.lit(False)).alias("is_holiday_week"),
        *lags,
        over_weeks(F.avg("units"), -4, -1).alias("units_roll_mean_4"),
        over_weeks(F.avg("units"), -12, -1).alias("units_roll_mean_12"),
        over_weeks(F.stddev_samp("units"), -12, -1).alias("units_roll_std_12"),
        F.when(is_plan_week, F.lit(0.0))
        .otherwise(F.coalesce("week_discount_depth", F.lit(0.0)))
        .alias("discount_depth"),
        F.when(is_plan_week, F.lit(False))
        .otherwise(F.coalesce("week_is_promoted", F.lit(False)))
        .alias("is_promoted"),
        F.when(is_plan_week, F.col("list_price"))
        .otherwise(F.coalesce("week_list_price", "list_price"))
        .alias("list_price"),
    )
    return with_event_timestamp(rows).select(COLUMNS)


def run(spark: SparkSession, settings: Settings, plan_week: date) -> int:
    """Read the marts, build the rows and overwrite lake/features/product_week_features."""
    features = build_product_week_features(
        read_mart(spark, settings, "products"),
        sales := read_mart(spark, settings, "product_week_sales").cache(),
        read_mart(spark, settings, "calendar_weeks"),
        plan_week,
    )
    path = settings.feature_dir(NAME)
    features.write.mode("overwrite").parquet(str(path))
    sales.unpersist()
    return spark.read.parquet(str(path)).count()
