"""Recommender inputs: interactions split in time, customer and product feature matrices.

Customers are those of recommender_customers.parquet plus any seen in the interactions; products
likewise. Feature columns are standardized over the whole universe (they are snapshots as of
the plan week, not labels). The product's `popularity_units_12w` is left out on purpose: it
covers the holdout weeks, and the product tower learns popularity from the training
interactions through its bias instead.
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
PRODUCT_LOG_COLUMNS = ["list_price", "unit_cost"]
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
class RecommenderData:
    """Index maps, feature tensors and the time-split interactions (as index arrays)."""

    customer_ids: np.ndarray  # original ids, position = index
    product_ids: np.ndarray
    customer_features: torch.Tensor
    customer_category: torch.Tensor
    product_features: torch.Tensor
    product_category: torch.Tensor
    n_categories: int
    train: pd.DataFrame  # customer_idx, product_idx, week_start, units
    holdout: pd.DataFrame

    @property
    def n_customers(self) -> int:
        return len(self.customer_ids)

    @property
    def n_products(self) -> int:
        return len(self.product_ids)


def load(run_dir: Path, holdout_weeks: int) -> RecommenderData:
    """Read the three recommender files and split interactions at the holdout start."""
    folder = RunFolder(Path(run_dir))
    interactions = read_training_set(folder.recommender_interactions,
                                     ["customer_id", "product_id", "week_start", "units"])
    customers = read_training_set(folder.recommender_customers, ["customer_id"])
    products = read_training_set(folder.recommender_products, ["product_id"])
    interactions = interactions.dropna(subset=["customer_id", "product_id"])
    interactions = interactions[pd.to_numeric(interactions["units"], errors="coerce") > 0].copy()
    interactions["week_start"] = pd.to_datetime(interactions["week_start"])
    if interactions["week_start"].dt.tz is not None:
        interactions["week_start"] = interactions["week_start"].dt.tz_localize(None)

    customer_ids = np.array(
        sorted(set(customers["customer_id"]) | set(interactions["customer_id"]))
    )
    product_ids = np.array(sorted(set(products["product_id"]) | set(interactions["product_id"])))
    customers = (customers.drop_duplicates("customer_id").set_index("customer_id")
                 .reindex(customer_ids).reset_index())
    products = (products.drop_duplicates("product_id").set_index("product_id")
                .reindex(product_ids).reset_index())

    top = customers.get("top_category", pd.Series(None, index=customers.index, dtype=object))
    cat = products.get("category", pd.Series(None, index=products.index, dtype=object))
    categories = sorted(set(top.dropna().astype(str)) | set(cat.dropna().astype(str)))
    category_index = {c: i + 1 for i, c in enumerate(categories)}  # 0: unknown

    def categories_of(values: pd.Series) -> torch.Tensor:
        index = values.map(lambda v: category_index.get(str(v), 0) if pd.notna(v) else 0)
        return torch.tensor(index.to_numpy(dtype=np.int64))

    customer_position = pd.Series(np.arange(len(customer_ids)), index=customer_ids)
    product_position = pd.Series(np.arange(len(product_ids)), index=product_ids)
    indexed = pd.DataFrame({
        "customer_idx": customer_position.loc[interactions["customer_id"]].to_numpy(),
        "product_idx": product_position.loc[interactions["product_id"]].to_numpy(),
        "week_start": interactions["week_start"].to_numpy(),
        "units": pd.to_numeric(interactions["units"]).to_numpy(dtype=float),
    })
    weeks = np.sort(indexed["week_start"].unique())
    if len(weeks) <= holdout_weeks:
        raise ValueError(f"the interactions span {len(weeks)} weeks, not more than the "
                         f"{holdout_weeks} holdout weeks; lower --holdout-weeks.")
    cutoff = weeks[-holdout_weeks]
    return RecommenderData(
        customer_ids=customer_ids,
        product_ids=product_ids,
        customer_features=torch.from_numpy(
            _numeric_block(customers, CUSTOMER_LOG_COLUMNS, CUSTOMER_PLAIN_COLUMNS)),
        customer_category=categories_of(top),
        product_features=torch.from_numpy(
            _numeric_block(products, PRODUCT_LOG_COLUMNS, PRODUCT_PLAIN_COLUMNS)),
        product_category=categories_of(cat),
        n_categories=len(categories),
        train=indexed[indexed["week_start"] < cutoff].reset_index(drop=True),
        holdout=indexed[indexed["week_start"] >= cutoff].reset_index(drop=True),
    )
