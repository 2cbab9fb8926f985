"""One local Spark session for all Spark tests (start-up takes several seconds)."""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession

from promoflow.settings import Settings
from spark_jobs.session import get_spark


@pytest.fixture(scope="session")
def spark(settings: Settings) -> SparkSession:
    """The process's Spark session (get_spark reuses a running one), stopped at the end."""
    session = get_spark(settings)
    yield session
    session.stop()
