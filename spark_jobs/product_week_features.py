"""Product-week features: one row per product and week, the plan week included (forecaster).

The row of week `w` is stamped `event_timestamp = w` (00:00 UTC). Lags and rolling statistics
use only weeks before `w`; the week's own covariates (discount_depth, is_promoted, the promo
type flags, the category's promotions, the stock-out flag and the contacted customers) are
realized values in the past and 0 / false in the plan week, which the planner varies. Weeks
before the first week of data count as zero sales, no discount, no promotion, no stock-out and
no contact.

- category_idx: 0-based position of the category in the sorted list of categories.
- week_of_year, is_holiday_week: from marts.calendar_weeks (ISO week when missing there).
- units_lag_k: units sold k weeks before.
- units_roll_mean_4/12, units_roll_std_12: over the 4/12 weeks before (0 when undefined).
- list_price: the week's average list price, the catalogue price in the plan week.
- discount_depth_lag_k (k = 1, 2, 3): the realized discount depth k weeks before (post-promotion
  dips).
- promo_display, promo_mailer, promo_coupon: 1.0 when a promotion of that promo_type overlaps
  the week (marts.product_week_sales), else 0.
- category_promo_pressure: sum, over the other products q of the category promoted in the
  week, of share_q * discount_depth_q, where share_q is q's share of the category's units in
  the 12 weeks before the week (0 when the category sold nothing then): cannibalization.
- category_promo_count: the number of other products of the category promoted in the week.
- is_stocked_out: 1.0 when an inventory snapshot dated inside the week shows 0 units on hand.
- stocked_out_lag_1: is_stocked_out of the week before.
- contacted_customers: the distinct customers sent a campaign message about the product in the
  week (marts.product_week_sales, from the send log raw.campaign_contacts), so that the
  forecaster can tell the units a contact drove from those the price drove.
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

NAME = "product_week_features"
MARTS = ("products", "product_week_sales", "calendar_weeks")  # the marts `run` reads
LAGS = (1, 2, 4, 52)
DISCOUNT_LAGS = (1, 2, 3)
PROMO_TYPES = ("display", "mailer", "coupon")
SHARE_WEEKS = 12
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
    *[f"discount_depth_lag_{k}" for k in DISCOUNT_LAGS],
    *[f"promo_{kind}" for kind in PROMO_TYPES],
    "category_promo_pressure",
    "category_promo_count",
    "is_stocked_out",
    "stocked_out_lag_1",
    "contacted_customers",
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


def _as_double(column: str) -> F.Column:
    """A boolean mart column as 1.0 / 0.0; 0.0 where the week has no mart row."""
    return F.coalesce(F.col(column).cast("double"), F.lit(0.0))


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
        *[F.col(f"promo_{kind}").alias(f"week_promo_{kind}") for kind in PROMO_TYPES],
        F.col("is_stocked_out").alias("week_is_stocked_out"),
        F.col("contacted_customers").cast("double").alias("week_contacted_customers"),
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
        .withColumn("realized_depth", F.coalesce("week_discount_depth", F.lit(0.0)))
        .withColumn("stocked_out", _as_double("week_is_stocked_out"))
    )
    by_week = Window.partitionBy("product_id").orderBy("week_idx")
    by_category_week = Window.partitionBy("category", "week_idx")

    def over_weeks(agg: F.Column, first: int, last: int) -> F.Column:
        return F.coalesce(agg.over(by_week.rangeBetween(first, last)), F.lit(0.0))

    is_plan_week = F.col("week_start") == F.lit(plan_week)

    def own_week(value: F.Column, plan_value: object = 0.0) -> F.Column:
        """A covariate of the week itself: realized in the past, `plan_value` in the plan week."""
        return F.when(is_plan_week, F.lit(plan_value)).otherwise(value)

    # Cannibalization: the promotions of the other products of the category in the week, each
    # weighted by the product's share of the category's units in the 12 weeks before it.
    promoted = own_week(_as_double("week_is_promoted"))
    depth = own_week(F.col("realized_depth"))
    units_before = over_weeks(F.sum("units"), -SHARE_WEEKS, -1)
    category = (
        grid.withColumn("promoted", promoted)
        .withColumn("units_before", units_before)
        .withColumn("category_units_before", F.sum("units_before").over(by_category_week))
        .withColumn(
            "pressure_term",
            F.when(
                F.col("category_units_before") > 0,
                F.col("promoted") * depth * F.col("units_before") / F.col("category_units_before"),
            ).otherwise(F.lit(0.0)),
        )
        .withColumn(
            "others_pressure",
            F.greatest(
                F.sum("pressure_term").over(by_category_week) - F.col("pressure_term"), F.lit(0.0)
            ),
        )
        .withColumn("others_promoted", F.sum("promoted").over(by_category_week) - F.col("promoted"))
    )
    lags = [
        over_weeks(F.sum("units"), -k, -k).cast("long").alias(f"units_lag_{k}") for k in LAGS
    ]
    discount_lags = [
        over_weeks(F.sum("realized_depth"), -k, -k).alias(f"discount_depth_lag_{k}")
        for k in DISCOUNT_LAGS
    ]
    promo_types = [
        own_week(_as_double(f"week_promo_{kind}")).alias(f"promo_{kind}") for kind in PROMO_TYPES
    ]
    rows = category.select(
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
        depth.alias("discount_depth"),
        own_week(F.coalesce("week_is_promoted", F.lit(False)), False).alias("is_promoted"),
        F.when(is_plan_week, F.col("list_price"))
        .otherwise(F.coalesce("week_list_price", "list_price"))
        .alias("list_price"),
        *discount_lags,
        *promo_types,
        own_week(F.col("others_pressure")).alias("category_promo_pressure"),
        own_week(F.col("others_promoted")).alias("category_promo_count"),
        own_week(F.col("stocked_out")).alias("is_stocked_out"),
        over_weeks(F.max("stocked_out"), -1, -1).alias("stocked_out_lag_1"),
        own_week(F.coalesce("week_contacted_customers", F.lit(0.0))).alias("contacted_customers"),
    )
    return with_event_timestamp(rows).select(COLUMNS)


def run(spark: SparkSession, marts: MartHandoff, plan_week: date, path: Path) -> int:
    """Read the marts, build the rows and overwrite the Parquet folder `path`."""
    features = build_product_week_features(
        read_mart(spark, marts, "products"),
        sales := read_mart(spark, marts, "product_week_sales").cache(),
        read_mart(spark, marts, "calendar_weeks"),
        plan_week,
    )
    features.write.mode("overwrite").parquet(uri(path))
    sales.unpersist()
    return spark.read.parquet(uri(path)).count()
