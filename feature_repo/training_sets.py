"""Training and scoring sets for the models, built point-in-time correct with Feast.

Writes seven Parquet files into the run folder (docs/architecture.md, "Training sets"):
forecaster_train, forecaster_score, recommender_interactions, recommender_customers and
recommender_products (snapshots as of the plan week), and recommender_customers_at_holdout and
recommender_products_at_holdout (the same snapshots as of the recommender's holdout start,
RECOMMENDER_HOLDOUT_WEEKS before the plan week, each row stamped with it in event_timestamp:
the evaluated recommender must not see features computed from its holdout weeks). Entity frames
come from the marts (small aggregated tables, read with pandas); features come from
`get_historical_features`, so a row stamped t sees only feature rows stamped at or before t
(and those are computed from data strictly before their stamp).

Memory: the joins run in DuckDB (Feast's DuckDB offline store) on slices of keys
(`ENTITY_CHUNK_ROWS` entity rows at most, whole keys) whose results are appended to the Parquet
file (through part files, so one schema holds them all); the entity frames and the interactions
are read from the warehouse in batches (a server-side cursor); no whole joined frame is held.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from promoflow.run import RECOMMENDER_HOLDOUT_WEEKS, Run, RunFolder
from promoflow.settings import Settings, get_settings
from promoflow.warehouse import engine
from promoflow.weeks import week_timestamp

log = logging.getLogger(__name__)

PRODUCT_KEYS = ["product_id", "event_timestamp"]
#: entity rows per point-in-time join (module docstring): a slice's result is about 0.3 GB in
#: pandas; each join scans the feature files once
ENTITY_CHUNK_ROWS = 250_000
#: rows fetched from the warehouse at a time
FETCH_ROWS = 500_000


class TrainingSetError(RuntimeError):
    """A training set cannot be built from the current marts and features."""


def _plan_timestamp(plan_week: date) -> pd.Timestamp:
    return pd.Timestamp(week_timestamp(plan_week))


def _read_sql(settings: Settings, sql: str, params: dict) -> pd.DataFrame:
    from sqlalchemy import text

    eng = engine(settings)
    try:
        with eng.connect().execution_options(stream_results=True) as conn:
            parts = list(pd.read_sql(text(sql), conn, params=params, chunksize=FETCH_ROWS))
    finally:
        eng.dispose()
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def _view_refs(store, view_name: str) -> list[str]:
    """Feature references `<view>:<feature>` of every feature of a registered view."""
    view = store.get_feature_view(view_name)
    return [f"{view_name}:{feature.name}" for feature in view.features]


def historical_features(store, entity_df: pd.DataFrame, features, keys: list[str]) -> pd.DataFrame:
    """Point-in-time features for every row of entity_df, in its order, nulls where none.

    The file offline store drops entity rows that see no feature row (an entity timestamp
    before the entity's first row or past the ttl), so the result is joined back on `keys`
    (join keys and event_timestamp).
    """
    entity_df = entity_df.assign(
        event_timestamp=pd.to_datetime(entity_df["event_timestamp"], utc=True).astype(
            "datetime64[ns, UTC]"
        )
    )
    found = store.get_historical_features(entity_df=entity_df, features=features).to_df()
    found["event_timestamp"] = pd.to_datetime(found["event_timestamp"], utc=True).astype(
        "datetime64[ns, UTC]"
    )
    feature_columns = [c for c in found.columns if c not in entity_df.columns]
    result = entity_df.merge(
        found[keys + feature_columns].drop_duplicates(keys), on=keys, how="left", validate="1:1"
    )
    missing = int(result[feature_columns].isna().all(axis=1).sum()) if feature_columns else 0
    if missing:
        log.warning("%d of %d entity rows have no feature row in their time window",
                    missing, len(result))
    return result


def key_chunks(entity_df: pd.DataFrame, key: str, max_rows: int = ENTITY_CHUNK_ROWS
               ) -> Iterator[pd.DataFrame]:
    """`entity_df` sorted by `key` in slices of whole keys of at most `max_rows` rows each (a
    key with more rows is a slice of its own)."""
    if max_rows < 1:
        raise ValueError(f"a chunk must hold at least one entity row, not {max_rows}.")
    frame = entity_df.sort_values(key, kind="stable").reset_index(drop=True)
    counts = frame[key].value_counts(sort=False).sort_index().to_numpy()
    start = rows = 0
    for count in counts:
        if rows and rows + count > max_rows:
            yield frame.iloc[start:start + rows]
            start, rows = start + rows, 0
        rows += count
    if rows:
        yield frame.iloc[start:start + rows]


def write_historical_features(store, entity_df: pd.DataFrame, features, keys: list[str],
                              path: Path, max_rows: int = ENTITY_CHUNK_ROWS) -> Path:
    """`historical_features` of `entity_df` joined a slice of keys (`keys[0]`) at a time and
    written to `path` sorted by `keys`: each slice goes to a part file, then the parts are
    copied into one file under the schema that holds them all (a column all null in one slice
    and integer or text in another, integers in one and floats where another has nulls)."""
    parts_dir = path.with_name(f".{path.name}.parts")
    shutil.rmtree(parts_dir, ignore_errors=True)
    parts_dir.mkdir(parents=True)
    try:
        parts = []
        for number, chunk in enumerate(key_chunks(entity_df, keys[0], max_rows)):
            frame = historical_features(store, chunk, features, keys)
            frame = frame.sort_values(keys, kind="stable")
            parts.append(parts_dir / f"part-{number:05d}.parquet")
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), parts[-1])
        if not parts:
            raise TrainingSetError(f"no entity rows for {path.name}; nothing to join.")
        schema = pa.unify_schemas([pq.read_schema(part) for part in parts],
                                  promote_options="permissive").remove_metadata()
        rows = 0
        tmp = path.with_name(f".{path.name}.tmp")
        with pq.ParquetWriter(tmp, schema) as writer:
            for part in parts:
                table = pq.read_table(part).replace_schema_metadata(None).cast(schema)
                writer.write_table(table)
                rows += table.num_rows
        os.replace(tmp, path)
    finally:
        shutil.rmtree(parts_dir, ignore_errors=True)
    log.info("%s: %d rows, %d columns (%d joins of at most %d entity rows)", path.name, rows,
             len(schema), len(parts), max_rows)
    return path


def _write(frame: pd.DataFrame, path: Path, keys: list[str]) -> Path:
    frame = frame.sort_values(keys, kind="stable").reset_index(drop=True)
    frame.to_parquet(path, index=False)
    log.info("%s: %d rows, %d columns", path.name, len(frame), frame.shape[1])
    return path


def forecaster_entities(settings: Settings, plan_week: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, score) entity frames: labelled product-weeks before the plan week; the plan week."""
    train = _read_sql(
        settings,
        "select product_id, week_start, units from marts.product_week_sales "
        "where week_start < :plan_week",
        {"plan_week": plan_week},
    )
    if train.empty:
        raise TrainingSetError(
            f"marts.product_week_sales has no week before the plan week {plan_week}; "
            "choose a later plan week or load more history."
        )
    train = pd.DataFrame({
        "product_id": train["product_id"].astype("int64"),
        "event_timestamp": pd.to_datetime(train["week_start"]).dt.tz_localize("UTC"),
        "units": train["units"].astype("int64"),
    })
    products = _read_sql(settings, "select product_id from marts.products", {})
    score = pd.DataFrame({
        "product_id": products["product_id"].astype("int64"),
        "event_timestamp": _plan_timestamp(plan_week),
    })
    return train, score


def recommender_interactions(settings: Settings, plan_week: date) -> pd.DataFrame:
    """Units per customer, product and week of registered customers, before the plan week."""
    frame = _read_sql(
        settings,
        "select customer_id, product_id, week_start, sum(quantity) as units "
        "from marts.order_lines "
        "where not is_guest and customer_id is not null and quantity > 0 "
        "and week_start < :plan_week "
        "group by customer_id, product_id, week_start",
        {"plan_week": plan_week},
    )
    return frame.astype({"customer_id": "int64", "product_id": "int64", "units": "int64"})


def recommender_holdout_start(plan_week: date,
                              holdout_weeks: int = RECOMMENDER_HOLDOUT_WEEKS) -> date:
    """The first week of the recommender's holdout: `holdout_weeks` before the plan week."""
    return plan_week - timedelta(weeks=holdout_weeks)


def _write_snapshot(store, view: str, key: str, ids: pd.Series, at: pd.Timestamp,
                    keep_stamp: bool, path: Path) -> Path:
    """Every feature of `view` for every id as of `at` (the stamp column kept if asked),
    joined a slice of ids at a time (`write_historical_features`)."""
    entities = pd.DataFrame({key: ids.to_numpy(), "event_timestamp": at})
    write_historical_features(store, entities, _view_refs(store, view),
                              [key, "event_timestamp"], path)
    if not keep_stamp:  # one row per id: small enough to rewrite whole
        frame = pd.read_parquet(path).drop(columns="event_timestamp")
        frame.to_parquet(path, index=False)
    return path


def build_run_training_sets(run: Run, settings: Settings | None = None) -> dict[str, str]:
    """The training-sets stage of a weekly run: the seven files into its folder, by name."""
    settings = settings or get_settings()
    paths = build_training_sets(settings, run.folder(settings), run.plan_week)
    return {name: str(path) for name, path in paths.items()}


def build_training_sets(settings: Settings, folder: RunFolder, plan_week: date) -> dict[str, Path]:
    """Write the seven training/scoring files into the run folder; returns their paths by name."""
    from feature_repo.store import feature_time_range, get_store

    started = time.time()
    folder.path.mkdir(parents=True, exist_ok=True)
    _, latest = feature_time_range(settings)
    at_plan_week = _plan_timestamp(plan_week)
    if latest < at_plan_week:
        raise TrainingSetError(
            f"The feature tables end at {latest.date()}, before the plan week {plan_week}; "
            f"rerun python -m spark_jobs.run_all --plan-week {plan_week} and materialize."
        )
    store = get_store(settings)
    paths: dict[str, Path] = {}

    train_entities, score_entities = forecaster_entities(settings, plan_week)
    forecaster = store.get_feature_service("forecaster_v1")
    paths["forecaster_train"] = write_historical_features(
        store, train_entities, forecaster, PRODUCT_KEYS, folder.forecaster_train)
    del train_entities
    paths["forecaster_score"] = write_historical_features(
        store, score_entities, forecaster, PRODUCT_KEYS, folder.forecaster_score)
    paths["recommender_interactions"] = _write(
        recommender_interactions(settings, plan_week),
        folder.recommender_interactions, ["customer_id", "product_id", "week_start"],
    )
    customers = _read_sql(settings, "select customer_id from marts.customers", {})
    customer_ids = customers["customer_id"].astype("int64")
    product_ids = score_entities["product_id"]
    at_holdout = _plan_timestamp(recommender_holdout_start(plan_week))
    for suffix, at, keep_stamp in (("", at_plan_week, False), ("_at_holdout", at_holdout, True)):
        paths[f"recommender_customers{suffix}"] = _write_snapshot(
            store, "customer_features", "customer_id", customer_ids, at, keep_stamp,
            getattr(folder, f"recommender_customers{suffix}"))
        paths[f"recommender_products{suffix}"] = _write_snapshot(
            store, "product_features", "product_id", product_ids, at, keep_stamp,
            getattr(folder, f"recommender_products{suffix}"))
    log.info("Training sets for the plan week %s written to %s in %.1f s",
             plan_week, folder.path, time.time() - started)
    return paths
