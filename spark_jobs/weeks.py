"""Week arithmetic of the feature jobs as Spark expressions; the rules are promoflow.weeks'."""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from promoflow.weeks import EPOCH_MONDAY, WeekError, check_monday, plan_week_after
from spark_jobs.session import FeatureJobError


def week_index(column: str = "week_start") -> F.Column:
    """Weeks since EPOCH_MONDAY: an integer axis for range windows over weeks."""
    return F.floor(F.datediff(F.col(column), F.lit(EPOCH_MONDAY)) / 7).cast("long")


def weeks_until(weeks_of_data: DataFrame, plan_week: date) -> DataFrame:
    """One row per Monday `week_start` from the first week in `weeks_of_data` to the plan week.

    Lazy: the first week is an aggregate inside the plan, nothing is collected.
    """
    return weeks_of_data.agg(F.min("week_start").alias("first_week")).select(
        F.explode(
            F.sequence(F.col("first_week"), F.lit(plan_week), F.expr("interval 7 days"))
        ).alias("week_start")
    )


def with_event_timestamp(df: DataFrame, week_col: str = "week_start") -> DataFrame:
    """Adds `event_timestamp`: midnight UTC of the week's Monday (session time zone is UTC)."""
    return df.withColumn("event_timestamp", F.to_timestamp(F.col(week_col)))


def last_data_week(product_week_sales: DataFrame) -> date:
    """The last week_start of marts.product_week_sales (a one-row aggregate)."""
    row = product_week_sales.agg(F.max("week_start").alias("last")).first()
    if row is None or row["last"] is None:
        raise FeatureJobError(
            "marts.product_week_sales is empty; load the landing files and run dbt build first."
        )
    return row["last"]


def resolve_plan_week(last_week: date, plan_week: date | None) -> date:
    """The explicit plan week (a Monday), or the week after the last week of data."""
    if plan_week is None:
        return plan_week_after(last_week)
    try:
        return check_monday(plan_week)
    except WeekError as error:
        raise FeatureJobError(str(error)) from None
