"""The Spark session and the mart reader shared by the feature jobs.

The master comes from the settings (PROMO_SPARK_MASTER): `local[N]` runs in this process, and a
cluster URL (`spark://host:7077`, `yarn`, `k8s://...`) runs the same jobs there. Scratch space
and the shuffle width are set here only for local masters; a cluster's own configuration
(spark-defaults.conf, spark-submit --conf) decides them there.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from promoflow.settings import Settings
from spark_jobs.handoff import MartHandoff

log = logging.getLogger(__name__)

APP_NAME = "promoflow-features"
#: shuffle partitions of a local session: enough for 10M order lines (preset xl); adaptive
#: execution merges them on small data
SHUFFLE_PARTITIONS = 32


class FeatureJobError(ValueError):
    """An input of a feature job is missing or wrong."""


def is_local(master: str) -> bool:
    """Whether the master runs Spark inside this process (local, local[N], local[*])."""
    return master == "local" or master.startswith("local[")


#: tries of a task before its job fails, on a local master as on a cluster (spark.task.maxFailures
#: is 4 there): a task lost with its Python worker or executor runs again
TASK_TRIES = 4


def with_task_retries(master: str) -> str:
    """A local master that tries a failed task again: local[N] runs each task once (a lost Python
    worker fails the job), local[N,F] up to F times. Other masters are returned unchanged."""
    if master == "local":
        return f"local[1,{TASK_TRIES}]"
    if is_local(master) and "," not in master:
        return f"{master[:-1]},{TASK_TRIES}]"
    return master


def session_conf(settings: Settings) -> dict[str, str]:
    """The Spark configuration of the feature jobs for the settings' master."""
    conf = {
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.adaptive.enabled": "true",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }
    if is_local(settings.spark_master):
        scratch = settings.tmp_dir / "spark"
        java_options = f"-Djava.io.tmpdir={scratch} -Duser.timezone=UTC"
        conf.update({
            "spark.local.dir": str(scratch),
            "spark.driver.memory": settings.spark_driver_memory,
            "spark.driver.extraJavaOptions": java_options,
            "spark.executor.extraJavaOptions": java_options,
            "spark.sql.shuffle.partitions": str(SHUFFLE_PARTITIONS),
            "spark.default.parallelism": "4",
        })
    return conf


def get_spark(settings: Settings, app_name: str = APP_NAME) -> SparkSession:
    """The Spark session of the settings' master, UTC time; a running one is reused."""
    if is_local(settings.spark_master):
        (settings.tmp_dir / "spark").mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        # Python workers run in this interpreter (its packages), not the first python3 on PATH
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(with_task_retries(settings.spark_master)).appName(
        app_name)
    for key, value in session_conf(settings).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def stop_spark(spark: SparkSession) -> None:
    """Stop the session and end the JVM this process started for it: a stopped session's JVM
    otherwise lives as long as the process and keeps its heap (gigabytes at xl) through the
    later stages of a run that executes every task in one process (`airflow dags test`)."""
    from pyspark import SparkContext

    spark.stop()
    gateway = SparkContext._gateway
    if gateway is None:
        return
    proc = getattr(gateway, "proc", None)  # set when pyspark launched the JVM itself
    gateway.shutdown()
    if proc is not None and proc.stdin is not None:
        proc.stdin.close()  # the JVM exits when its stdin closes
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    SparkContext._gateway = None  # the next session launches a new JVM
    SparkContext._jvm = None


def uri(path: Path) -> str:
    """A local path as a file: URI, so that a cluster with another default file system (HDFS)
    still reads and writes the shared work folder."""
    return path.resolve().as_uri()


def read_mart(spark: SparkSession, source: Settings | MartHandoff, table: str) -> DataFrame:
    """A table of the `marts` schema, read in parallel from its Parquet handoff: from `source`
    when it is a handoff (exported there once), else exported now to the settings' lake/marts/."""
    handoff = source if isinstance(source, MartHandoff) else MartHandoff(source)
    return spark.read.parquet(uri(handoff.path(table)))
