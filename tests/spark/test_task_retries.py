"""A task whose Python worker dies is run again on a local master, as on a cluster."""

from __future__ import annotations

import os

import pytest
from pyspark import TaskContext
from pyspark.sql import SparkSession

from promoflow.settings import Settings
from spark_jobs.session import TASK_TRIES, with_task_retries


@pytest.mark.parametrize(("master", "expected"), [
    ("local[2]", f"local[2,{TASK_TRIES}]"),
    ("local[*]", f"local[*,{TASK_TRIES}]"),
    ("local", f"local[1,{TASK_TRIES}]"),
    ("local[4,2]", "local[4,2]"),  # the user's own number of tries
    ("spark://10.0.0.1:7077", "spark://10.0.0.1:7077"),  # spark.task.maxFailures decides there
    ("yarn", "yarn"),
])
def test_local_masters_try_a_task_again(master: str, expected: str) -> None:
    assert with_task_retries(master) == expected


def _dies_on_its_first_try(value: int) -> int:
    context = TaskContext.get()
    if context.partitionId() == 1 and context.attemptNumber() == 0:
        os._exit(1)  # the Python worker process is gone, with the task it ran
    return value * value


def test_a_task_whose_worker_died_runs_again(spark: SparkSession, settings: Settings) -> None:
    assert spark.sparkContext.master == with_task_retries(settings.spark_master)
    squares = spark.sparkContext.parallelize(range(8), 2).map(_dies_on_its_first_try).collect()
    assert squares == [v * v for v in range(8)]
