"""The Feast store of the platform: config from settings, apply, materialize.

DuckDB offline store over the lake's Parquet (point-in-time joins and materialization run in
DuckDB, out of Python's memory), SQLite online store and a file registry, both under
settings.feast_dir. `import feast` happens inside the functions (it is slow).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from promoflow.run import Run
from promoflow.settings import Settings, get_settings
from promoflow.weeks import WEEK, week_timestamp

if TYPE_CHECKING:
    from feast import FeatureStore

log = logging.getLogger(__name__)


class FeatureStoreError(RuntimeError):
    """The feature store cannot be built or loaded."""


def repo_config(settings: Settings):
    """The RepoConfig of the project, with every path inside settings.feast_dir."""
    from feast.infra.offline_stores.duckdb import DuckDBOfflineStoreConfig
    from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig
    from feast.repo_config import RegistryConfig, RepoConfig

    from feature_repo.definitions import PROJECT

    settings.feast_dir.mkdir(parents=True, exist_ok=True)
    return RepoConfig(
        project=PROJECT,
        provider="local",
        registry=RegistryConfig(path=str(settings.feast_dir / "registry.db")),
        online_store=SqliteOnlineStoreConfig(path=str(settings.feast_dir / "online_store.db")),
        offline_store=DuckDBOfflineStoreConfig(),
        entity_key_serialization_version=3,
        repo_path=settings.feast_dir,
    )


def get_store(settings: Settings) -> FeatureStore:
    """A FeatureStore on the project's registry and online store."""
    from feast import FeatureStore

    return FeatureStore(config=repo_config(settings))


def feature_time_range(settings: Settings) -> tuple[datetime, datetime]:
    """Earliest and latest event_timestamp over the feature Parquet folders."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    from feature_repo.definitions import FEATURE_VIEW_NAMES

    lows, highs = [], []
    for name in FEATURE_VIEW_NAMES:
        path = settings.feature_dir(name)
        if not path.is_dir():
            raise FeatureStoreError(
                f"Feature folder {path} does not exist; run the Spark jobs first "
                "(python -m spark_jobs.run_all)."
            )
        column = ds.dataset(str(path), format="parquet").to_table(
            columns=["event_timestamp"]
        )["event_timestamp"]
        bounds = pc.min_max(column)
        if bounds["min"].as_py() is None:
            raise FeatureStoreError(f"Feature folder {path} holds no rows; rerun the Spark jobs.")
        lows.append(bounds["min"].as_py())
        highs.append(bounds["max"].as_py())
    as_utc = [
        value if value.tzinfo else value.replace(tzinfo=UTC) for value in lows + highs
    ]
    return min(as_utc[: len(lows)]), max(as_utc[len(lows) :])


def materialize_run(run: Run, settings: Settings | None = None) -> dict:
    """The Feast stage of a weekly run: apply, and load the features up to its plan week."""
    return apply_and_materialize(settings or get_settings(), week_timestamp(run.plan_week + WEEK))


def apply_and_materialize(settings: Settings, end: datetime) -> dict:
    """Register every definition, then load the latest feature rows up to `end` online.

    An explicit materialize(start, end) over the longest time-to-live before `end` (older rows
    are expired online; loading them all costs gigabytes on a year of 20,000 products): the
    first materialize-incremental would start at now - ttl of the wall clock and load nothing
    from historical data.
    """
    from feast import FeatureView

    from feature_repo.definitions import FEATURE_SERVICE_NAMES, FEATURE_VIEW_NAMES, all_objects

    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    first, latest = feature_time_range(settings)
    objects = all_objects(settings)
    longest_ttl = max(o.ttl for o in objects if isinstance(o, FeatureView))
    start = max(first, end - longest_ttl)
    if start > end:
        raise FeatureStoreError(
            f"The materialization end {end.isoformat()} is before the first feature row "
            f"({start.isoformat()}); pass an end at or after the plan week."
        )
    store = get_store(settings)
    began = time.time()
    store.apply(objects)
    applied_s = time.time() - began
    log.info("Applied %d feature views and %d services in %.1f s",
             len(FEATURE_VIEW_NAMES), len(FEATURE_SERVICE_NAMES), applied_s)
    began = time.time()
    store.materialize(start_date=start, end_date=end)
    materialized_s = time.time() - began
    log.info("Materialized %s .. %s into the online store in %.1f s",
             start.isoformat(), end.isoformat(), materialized_s)
    return {
        "project": store.project,
        "feature_views": list(FEATURE_VIEW_NAMES),
        "feature_services": list(FEATURE_SERVICE_NAMES),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "latest_feature_row": latest.isoformat(),
        "apply_seconds": round(applied_s, 1),
        "materialize_seconds": round(materialized_s, 1),
    }
