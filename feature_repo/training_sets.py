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
"""

from __future__ import annotations

import logging
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from promoflow.run import RECOMMENDER_HOLDOUT_WEEKS, Run, RunFolder
from promoflow.settings import Settings, get_settings
from promoflow.warehouse import engine
from promoflow.weeks import week_timestamp

log = logging.getLogger(__name__)

PRODUCT_KEYS = ["product_id", "event_timestamp"]


class TrainingSetError(RuntimeError):
    """A training set cannot be built from the current marts and features."""


def _plan_timestamp(plan_week: date) -> pd.Timestamp:
    return pd.Timestamp(week_timestamp(plan_week))


def _read_sql(settings: Settings, sql: str, params: dict) -> pd.DataFrame:
    from sqlalchemy import text

    eng = engine(settings)
    try:
        with eng.connect() as conn:
            return pd.read_sql(text(sql), conn, params=params)
    finally:
        eng.dispose()


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


def _snapshot(store, view: str, key: str, ids: pd.Series, at: pd.Timestamp,
              keep_stamp: bool) -> pd.DataFrame:
    """Every feature of `view` for every id as of `at`; the stamp column kept if asked."""
    entities = pd.DataFrame({key: ids.to_numpy(), "event_timestamp": at})
    frame = historical_features(store, entities, _view_refs(store, view), [key, "event_timestamp"])
    return frame if keep_stamp else frame.drop(columns="event_timestamp")


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
    paths["forecaster_train"] = _write(
        historical_features(store, train_entities, forecaster, PRODUCT_KEYS),
        folder.forecaster_train, ["product_id", "event_timestamp"],
    )
    paths["forecaster_score"] = _write(
        historical_features(store, score_entities, forecaster, PRODUCT_KEYS),
        folder.forecaster_score, ["product_id"],
    )
    paths["recommender_interactions"] = _write(
        recommender_interactions(settings, plan_week),
        folder.recommender_interactions, ["customer_id", "product_id", "week_start"],
    )
    customers = _read_sql(settings, "select customer_id from marts.customers", {})
    customer_ids = customers["customer_id"].astype("int64")
    product_ids = score_entities["product_id"]
    at_holdout = _plan_timestamp(recommender_holdout_start(plan_week))
    for suffix, at, keep_stamp in (("", at_plan_week, False), ("_at_holdout", at_holdout, True)):
        paths[f"recommender_customers{suffix}"] = _write(
            _snapshot(store, "customer_features", "customer_id", customer_ids, at, keep_stamp),
            getattr(folder, f"recommender_customers{suffix}"), ["customer_id"],
        )
        paths[f"recommender_products{suffix}"] = _write(
            _snapshot(store, "product_features", "product_id", product_ids, at, keep_stamp),
            getattr(folder, f"recommender_products{suffix}"), ["product_id"],
        )
    log.info("Training sets for the plan week %s written to %s in %.1f s",
             plan_week, folder.path, time.time() - started)
    return paths
