"""The tiny market through ingest, dbt and the Spark feature jobs, once per test database."""

from __future__ import annotations

from pathlib import Path

from promoflow.settings import Settings
from spark_jobs.run_all import run_all
from spark_jobs.session import get_spark
from tests.dbt.marts import build_marts

_features: dict[tuple[str, Path], dict[str, int]] = {}


def build_features(settings: Settings, landing: Path) -> dict[str, int]:
    """Marts from the landing folder, then run_all in the process's Spark session (rows per table)."""
    run = build_marts(settings, landing)
    assert run.returncode == 0, f"dbt build failed:\n{run.output[-3000:]}"
    key = (settings.pg_db, settings.lake_dir)
    if key not in _features:
        _features[key] = run_all(settings, spark=get_spark(settings))
    return _features[key]
