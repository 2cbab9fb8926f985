"""Forecaster inputs: read the training sets, fill gaps, standardize, split off the holdout.

Numeric inputs are built from `product_week_features` and `product_features`; counts enter on a
log1p scale, missing lags (the first weeks of a product) are filled with the product's recent
level, and everything is standardized with statistics of the training rows only. The price
inputs (discount_depth, is_promoted) are kept apart: the model uses them only through its
monotone price term.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from training.common.io import read_training_set

LAG_COLUMNS = ["units_lag_1", "units_lag_2", "units_lag_4", "units_lag_52"]
LEVEL_COLUMNS = ["units_roll_mean_4", "units_roll_mean_12"]
REQUIRED = ["product_id", "event_timestamp", "week_of_year", "discount_depth", "is_promoted",
            *LAG_COLUMNS, *LEVEL_COLUMNS]
FEATURE_NAMES = [
    "log_units_lag_1", "log_units_lag_2", "log_units_lag_4", "log_units_lag_52",
    "log_units_roll_mean_4", "log_units_roll_mean_12", "log_units_roll_std_12",
    "log_popularity_units_12w", "has_lag_1", "has_lag_52", "is_holiday_week",
    "week_sin", "week_cos", "log_list_price", "log_unit_cost", "margin_rate", "promo_lift",
]


def read_frame(path: Path, *, label: bool) -> pd.DataFrame:
    """Read a training-set file (Feast prefixes undone, columns checked), sorted by week."""
    frame = read_training_set(path, REQUIRED + (["units"] if label else []))
    frame["week_start"] = pd.to_datetime(frame["event_timestamp"], utc=True).dt.tz_localize(None)
    frame["week_start"] = frame["week_start"].dt.normalize()
    if "category" not in frame.columns:
        frame["category"] = frame["category_idx"].astype(str) if "category_idx" in frame else "all"
    return frame.sort_values(["week_start", "product_id"]).reset_index(drop=True)


def _num(frame: pd.DataFrame, column: str, default: float = np.nan) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(default, index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce").astype(float)


def raw_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Unstandardized model inputs (without the price inputs); NaN left where unknown."""
    level = _num(frame, "units_roll_mean_4")
    for fallback in ("units_roll_mean_12", "units_lag_1"):
        level = level.fillna(_num(frame, fallback))
    level = level.fillna(0.0).clip(lower=0)
    out = pd.DataFrame(index=frame.index)
    for column in LAG_COLUMNS + LEVEL_COLUMNS:
        out[f"log_{column}"] = np.log1p(_num(frame, column).fillna(level).clip(lower=0))
    spread = _num(frame, "units_roll_std_12").fillna(0).clip(lower=0)
    out["log_units_roll_std_12"] = np.log1p(spread)
    out["log_popularity_units_12w"] = np.log1p(
        _num(frame, "popularity_units_12w").fillna(0).clip(lower=0)
    )
    out["has_lag_1"] = _num(frame, "units_lag_1").notna().astype(float)
    out["has_lag_52"] = _num(frame, "units_lag_52").notna().astype(float)
    out["is_holiday_week"] = _num(frame, "is_holiday_week", 0.0).fillna(0.0)
    angle = 2 * np.pi * _num(frame, "week_of_year").fillna(26) / 52.0
    out["week_sin"] = np.sin(angle)
    out["week_cos"] = np.cos(angle)
    out["log_list_price"] = np.log1p(_num(frame, "list_price").clip(lower=0))
    out["log_unit_cost"] = np.log1p(_num(frame, "unit_cost").clip(lower=0))
    out["margin_rate"] = _num(frame, "margin_rate")
    out["promo_lift"] = _num(frame, "promo_lift").clip(0, 10)
    return out[FEATURE_NAMES]


@dataclass
class Standardizer:
    """Fill-then-scale statistics computed on training rows."""

    median: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, raw: pd.DataFrame) -> Standardizer:
        median = raw.median().fillna(0.0).to_numpy()
        filled = raw.fillna(dict(zip(raw.columns, median, strict=True)))
        std = filled.std(ddof=0).to_numpy()
        return cls(median=median, mean=filled.mean().to_numpy(), std=np.where(std > 1e-9, std, 1.0))

    def transform(self, raw: pd.DataFrame) -> np.ndarray:
        filled = raw.fillna(dict(zip(raw.columns, self.median, strict=True)))
        filled = filled.to_numpy(dtype=float)
        return ((filled - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict[str, list[float]]:
        return {"median": self.median.tolist(), "mean": self.mean.tolist(),
                "std": self.std.tolist()}


@dataclass
class Vocab:
    """Index of each product and category; 0 stands for one never seen in training."""

    products: dict
    categories: dict

    @classmethod
    def fit(cls, train: pd.DataFrame, score: pd.DataFrame) -> Vocab:
        products = sorted(train["product_id"].unique().tolist())
        categories = sorted(set(train["category"].astype(str)) | set(score["category"].astype(str)))
        return cls({p: i + 1 for i, p in enumerate(products)},
                   {c: i + 1 for i, c in enumerate(categories)})

    def product_index(self, frame: pd.DataFrame) -> np.ndarray:
        return frame["product_id"].map(self.products).fillna(0).to_numpy(dtype=np.int64)

    def category_index(self, frame: pd.DataFrame) -> np.ndarray:
        return frame["category"].astype(str).map(self.categories).fillna(0).to_numpy(dtype=np.int64)


@dataclass
class Batch:
    """Model inputs of a set of rows as tensors (target only where the label is known)."""

    features: torch.Tensor
    product: torch.Tensor
    category: torch.Tensor
    discount: torch.Tensor
    promoted: torch.Tensor
    target: torch.Tensor | None

    def tensors(self) -> tuple[torch.Tensor, ...]:
        parts = (self.features, self.product, self.category, self.discount, self.promoted)
        return parts + ((self.target,) if self.target is not None else ())


def price_inputs(discount: np.ndarray | pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Discount depth clipped to [0, 0.95] and the promotion flag it implies (>= 1%)."""
    depth = np.clip(np.nan_to_num(np.asarray(discount, dtype=float)), 0.0, 0.95)
    return depth.astype(np.float32), (depth >= 0.01).astype(np.float32)


def make_batch(
    frame: pd.DataFrame, standardizer: Standardizer, vocab: Vocab,
    discount: np.ndarray | None = None,
) -> Batch:
    """Tensors for `frame`; `discount` overrides the realized discount (scoring candidates)."""
    if discount is None:
        depth, promoted = price_inputs(_num(frame, "discount_depth").fillna(0.0))
        promoted = np.maximum(promoted, _num(frame, "is_promoted", 0.0).fillna(0.0).to_numpy())
    else:
        depth, promoted = price_inputs(discount)
    target = None
    if "units" in frame.columns:
        units = _num(frame, "units").fillna(0.0).clip(lower=0).to_numpy()
        target = torch.tensor(np.log1p(units), dtype=torch.float32)
    return Batch(
        features=torch.from_numpy(standardizer.transform(raw_features(frame))),
        product=torch.from_numpy(vocab.product_index(frame)),
        category=torch.from_numpy(vocab.category_index(frame)),
        discount=torch.from_numpy(depth.astype(np.float32)),
        promoted=torch.from_numpy(promoted.astype(np.float32)),
        target=target,
    )


def split_holdout(frame: pd.DataFrame, holdout_weeks: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The last `holdout_weeks` weeks of the file are held out (at least one week stays in)."""
    weeks = np.sort(frame["week_start"].unique())
    if len(weeks) <= holdout_weeks:
        raise ValueError(f"the training file has {len(weeks)} weeks, not more than the "
                         f"{holdout_weeks} holdout weeks; lower --holdout-weeks.")
    cutoff = weeks[-holdout_weeks] if holdout_weeks > 0 else weeks[-1] + np.timedelta64(1, "D")
    return frame[frame["week_start"] < cutoff], frame[frame["week_start"] >= cutoff]
