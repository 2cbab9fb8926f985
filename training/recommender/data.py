"""Recommender inputs: interactions split at the holdout start, and two feature snapshots.

The holdout starts `holdout_weeks` before the plan week (the run's plan week from run.json; the
week after the last interaction without one). Interactions before it train the evaluated
models, those from it on are the holdout. Nothing the evaluated models see may come from the
holdout weeks, features included: they read the customer and product snapshots as of the
holdout start (recommender_*_at_holdout.parquet, stamped with that week in event_timestamp and
checked here), and the final models the snapshots as of the plan week.

Customers are those of either snapshot plus any seen in the interactions; products likewise.
Numeric columns are standardized within each snapshot (they are inputs, not labels).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from promoflow.run import RunFolder
from training.common.io import read_training_set

CUSTOMER_LOG_COLUMNS = ["recency_days", "frequency_orders_52w", "monetary_value_52w"]
CUSTOMER_PLAIN_COLUMNS = ["avg_discount_depth", "promo_share"]
PRODUCT_LOG_COLUMNS = ["list_price", "unit_cost", "popularity_units_12w"]
PRODUCT_PLAIN_COLUMNS = ["margin_rate", "promo_lift"]


def _numeric_block(frame: pd.DataFrame, log_columns: list[str], plain: list[str]) -> np.ndarray:
    """log1p/plain numeric columns plus missing flags, median-filled and standardized."""
    parts = {}
    for column in log_columns + plain:
        values = (pd.to_numeric(frame[column], errors="coerce").astype(float)
                  if column in frame.columns else pd.Series(np.nan, index=frame.index))
        if column in log_columns:
            values = np.log1p(values.clip(lower=0))
        parts[f"missing_{column}"] = values.isna().astype(float)
        parts[column] = values.fillna(values.median() if values.notna().any() else 0.0)
    block = pd.DataFrame(parts).to_numpy(dtype=float)
    std = block.std(axis=0)
    return ((block - block.mean(axis=0)) / np.where(std > 1e-9, std, 1.0)).astype(np.float32)


@dataclass
class FeatureTables:
    """One snapshot's feature tensors, rows in the index order of `RecommenderData`."""

    customer_features: torch.Tensor
    customer_category: torch.Tensor  # top category index, 0: unknown
    product_features: torch.Tensor
    product_category: torch.Tensor


@dataclass
class RecommenderData:
    """Index maps, the two feature snapshots and the time-split interactions (index arrays)."""

    customer_ids: np.ndarray  # original ids, position = index
    product_ids: np.ndarray
    n_categories: int
    at_holdout: FeatureTables  # as of the holdout start: the evaluated models' inputs
    at_plan_week: FeatureTables  # as of the plan week: the final model's inputs
    train: pd.DataFrame  # customer_idx, product_idx, week_start, units
    holdout: pd.DataFrame
    holdout_start: pd.Timestamp
    plan_week: pd.Timestamp
    categories: tuple[str, ...] = ()  # category names; index i + 1 (0: unknown)

    @property
    def n_customers(self) -> int:
        return len(self.customer_ids)

    @property
    def n_products(self) -> int:
        return len(self.product_ids)

    @property
    def interactions(self) -> pd.DataFrame:
        """Every week's interactions (the final model's)."""
        return pd.concat([self.train, self.holdout], ignore_index=True)


def _naive_weeks(values: pd.Series) -> pd.Series:
    weeks = pd.to_datetime(values)
    return weeks.dt.tz_convert(None) if weeks.dt.tz is not None else weeks


def _plan_week(folder: RunFolder, interactions: pd.DataFrame) -> pd.Timestamp:
    """The run's plan week, or the week after the last interaction without a run.json."""
    if folder.run_file.exists():
        plan_week = folder.read_run().params.plan_week
        if plan_week is not None:
            return pd.Timestamp(plan_week)
    return interactions["week_start"].max() + pd.Timedelta(weeks=1)


def _read_holdout_snapshot(path: Path, key: str, holdout_start: pd.Timestamp,
                           plan_week: pd.Timestamp) -> pd.DataFrame:
    """A snapshot as of the holdout start; a one-sentence error when it is absent or another."""
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist; this run folder predates the recommender's holdout "
            "snapshots, so rebuild the training sets (feature_repo.training_sets) before training.")
    frame = read_training_set(path, [key])
    stamps = (sorted(_naive_weeks(frame["event_timestamp"]).dt.normalize().unique())
              if "event_timestamp" in frame.columns else [])
    if len(stamps) != 1 or pd.Timestamp(stamps[0]) != holdout_start:
        found = ("no event_timestamp stamp" if not stamps else "features as of " + ", ".join(
            f"{pd.Timestamp(s).date()} ({(plan_week - pd.Timestamp(s)).days / 7:g} weeks before "
            "the plan week)" for s in stamps[:3]))
        raise ValueError(
            f"{path.name} holds {found}, not the holdout start {holdout_start.date()} that "
            f"{(plan_week - holdout_start).days // 7} holdout weeks before the plan week "
            f"{plan_week.date()} give; rebuild the training sets or train with the holdout "
            "weeks they were built for.")
    return frame.drop(columns="event_timestamp")


def _category_index(values: pd.Series, index: dict[str, int]) -> torch.Tensor:
    codes = values.map(lambda v: index.get(str(v), 0) if pd.notna(v) else 0)
    return torch.tensor(codes.to_numpy(dtype=np.int64))


def _tables(customers: pd.DataFrame, products: pd.DataFrame, customer_ids: np.ndarray,
            product_ids: np.ndarray, categories: dict[str, int]) -> FeatureTables:
    customers = (customers.drop_duplicates("customer_id").set_index("customer_id")
                 .reindex(customer_ids).reset_index())
    products = (products.drop_duplicates("product_id").set_index("product_id")
                .reindex(product_ids).reset_index())
    return FeatureTables(
        customer_features=torch.from_numpy(
            _numeric_block(customers, CUSTOMER_LOG_COLUMNS, CUSTOMER_PLAIN_COLUMNS)),
        customer_category=_category_index(_column(customers, "top_category"), categories),
        product_features=torch.from_numpy(
            _numeric_block(products, PRODUCT_LOG_COLUMNS, PRODUCT_PLAIN_COLUMNS)),
        product_category=_category_index(_column(products, "category"), categories),
    )


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame.get(name, pd.Series(None, index=frame.index, dtype=object))


def load(run_dir: Path, holdout_weeks: int) -> RecommenderData:
    """Read the recommender files and split the interactions at the holdout start."""
    folder = RunFolder(Path(run_dir))
    interactions = read_training_set(folder.recommender_interactions,
                                     ["customer_id", "product_id", "week_start", "units"])
    interactions = interactions.dropna(subset=["customer_id", "product_id"])
    interactions = interactions[pd.to_numeric(interactions["units"], errors="coerce") > 0].copy()
    interactions["week_start"] = _naive_weeks(interactions["week_start"])
    plan_week = _plan_week(folder, interactions)
    holdout_start = plan_week - pd.Timedelta(weeks=holdout_weeks)
    snapshots = {
        "plan_week": (read_training_set(folder.recommender_customers, ["customer_id"]),
                      read_training_set(folder.recommender_products, ["product_id"])),
        "holdout": (
            _read_holdout_snapshot(folder.recommender_customers_at_holdout, "customer_id",
                                   holdout_start, plan_week),
            _read_holdout_snapshot(folder.recommender_products_at_holdout, "product_id",
                                   holdout_start, plan_week)),
    }

    customer_ids = np.array(sorted(
        set(interactions["customer_id"]).union(*(c["customer_id"] for c, _ in snapshots.values()))
    ))
    product_ids = np.array(sorted(
        set(interactions["product_id"]).union(*(p["product_id"] for _, p in snapshots.values()))
    ))
    names: set[str] = set()
    for customers, products in snapshots.values():
        names |= set(_column(customers, "top_category").dropna().astype(str))
        names |= set(_column(products, "category").dropna().astype(str))
    categories = {c: i + 1 for i, c in enumerate(sorted(names))}  # 0: unknown

    customer_position = pd.Series(np.arange(len(customer_ids)), index=customer_ids)
    product_position = pd.Series(np.arange(len(product_ids)), index=product_ids)
    indexed = pd.DataFrame({
        "customer_idx": customer_position.loc[interactions["customer_id"]].to_numpy(),
        "product_idx": product_position.loc[interactions["product_id"]].to_numpy(),
        "week_start": interactions["week_start"].to_numpy(),
        "units": pd.to_numeric(interactions["units"]).to_numpy(dtype=float),
    })
    train = indexed[indexed["week_start"] < holdout_start].reset_index(drop=True)
    holdout = indexed[indexed["week_start"] >= holdout_start].reset_index(drop=True)
    if train.empty or holdout.empty:
        raise ValueError(
            f"the holdout start {holdout_start.date()} ({holdout_weeks} weeks before the plan "
            f"week {plan_week.date()}) leaves {len(train)} training and {len(holdout)} holdout "
            "interactions; both must be some, so change --holdout-weeks.")
    return RecommenderData(
        customer_ids=customer_ids,
        product_ids=product_ids,
        n_categories=len(categories),
        at_holdout=_tables(*snapshots["holdout"], customer_ids, product_ids, categories),
        at_plan_week=_tables(*snapshots["plan_week"], customer_ids, product_ids, categories),
        train=train,
        holdout=holdout,
        holdout_start=holdout_start,
        plan_week=plan_week,
        categories=tuple(sorted(names)),
    )
