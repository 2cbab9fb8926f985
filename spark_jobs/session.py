"""The Spark session and the warehouse reader shared by the feature jobs."""

from __future__ import annotations

import logging
import os

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DecimalType

from promoflow.settings import Settings

log = logging.getLogger(__name__)

APP_NAME = "promoflow-features"
SHUFFLE_PARTITIONS = 4


class FeatureJobError(ValueError):
    """An input of a feature job is missing or wrong."""


def get_spark(settings: Settings, app_name: str = APP_NAME) -> SparkSession:
    """A local Spark session with the JDBC driver, UTC time and scratch space in the work folder."""
    if not os.path.exists(settings.jdbc_jar):
        raise FeatureJobError(
            f"PostgreSQL JDBC driver {settings.jdbc_jar} not found; install it "
            "(Debian: apt-get install libpostgresql-jdbc-java) or set PROMO_JDBC_JAR to its path."
        )
    scratch = settings.tmp_dir / "spark"
    scratch.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    java_options = f"-Djava.io.tmpdir={scratch} -Duser.timezone=UTC"
    spark = (
        SparkSession.builder.master(settings.spark_master)
        .appName(app_name)
        .config("spark.jars", settings.jdbc_jar)
        .config("spark.local.dir", str(scratch))
        .config("spark.driver.extraJavaOptions", java_options)
        .config("spark.executor.extraJavaOptions", java_options)
        .config("spark.sql.shuffle.partitions", str(SHUFFLE_PARTITIONS))
        .config("spark.default.parallelism", str(SHUFFLE_PARTITIONS))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.adaptive.enabled", "true")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def read_mart(spark: SparkSession, settings: Settings, table: str) -> DataFrame:
    """A table of the `marts` schema over JDBC, with numeric (decimal) columns as doubles."""
    df = (
        spark.read.format("jdbc")
        .option("url", settings.jdbc_url)
        .option("dbtable", f"marts.{table}")
        .option("user", settings.pg_user)
        .option("password", settings.pg_password)
        .option("driver", "org.postgresql.Driver")
        .option("fetchsize", "10000")
        .load()
    )
    return df.select(
        [
            F.col(field.name).cast("double").alias(field.name)
            if isinstance(field.dataType, DecimalType)
            else F.col(field.name)
            for field in df.schema.fields
        ]
    )
