"""Forecaster inputs: read the training sets, fill gaps, standardize, split the weeks.

Numeric inputs are built from `product_week_features` and `product_features`; counts enter on a
log1p scale, missing lags (the first weeks of a product) are filled with the product's recent
level, and everything is standardized with statistics of the fitting rows only.

The promotion inputs are kept apart from the network body, which never sees them; the model
uses each only through its own sign-constrained term (model.py):

- discount_depth: the week's own (planned) discount, through the monotone price response only
  (is_promoted marks the promoted rows for the calibration and the evaluation);
- promo_display, promo_mailer, promo_coupon: the week's promotion type (0 in the plan week,
  whose promotions are plain price cuts), through non-negative visibility bumps;
- discount_depth_lag_1..3: the product's discount 1-3 weeks before, through the dip term;
- category_promo_pressure: the other promoted products of the category this week (share of the
  category's units x depth), through the cannibalization term;
- is_stocked_out: the week ended out of stock, so its units are a lower bound of demand (the
  label is censored; the loss and the calibration treat it so);
- contacted_customers: customers contacted about the product in the week (the campaign send
  log; the treatment of the measured plan weeks), through the additive contact term.

`holiday_sin` and `holiday_cos` (is_holiday_week x the week's position in the year) let the body
tell one holiday from another: their lifts differ, and one flag would give them all the same.
`stocked_out_lag_1` is a body input (last week's units may be censored). category_promo_count is
read but not used (the pressure carries the category's promotions). Columns absent from a
training set (older data, other datasets) count as 0.

Weeks are split in time: the last `holdout_weeks` weeks are held out (evaluation, backtest);
the `validation_weeks` weeks before them are the validation slice (early stopping and
calibration); the model is fitted on the weeks before that.
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
PROMO_TYPE_COLUMNS = ["promo_display", "promo_mailer", "promo_coupon"]
DISCOUNT_LAG_COLUMNS = ["discount_depth_lag_1", "discount_depth_lag_2", "discount_depth_lag_3"]
#: optional inputs; absent (or missing) values count as 0
OPTIONAL = [*DISCOUNT_LAG_COLUMNS, *PROMO_TYPE_COLUMNS, "category_promo_pressure",
            "category_promo_count", "is_stocked_out", "stocked_out_lag_1", "contacted_customers"]
FEATURE_NAMES = [
    "log_units_lag_1", "log_units_lag_2", "log_units_lag_4", "log_units_lag_52",
    "log_units_roll_mean_4", "log_units_roll_mean_12", "log_units_roll_std_12",
    "log_popularity_units_12w", "has_lag_1", "has_lag_52", "is_holiday_week",
    "week_sin", "week_cos", "log_list_price", "log_unit_cost", "margin_rate", "promo_lift",
    "stocked_out_lag_1", "holiday_sin", "holiday_cos",
]
#: body inputs that carry the product's recent level and may include past promotions: the
#: model deflates them by its own estimate of the lift of the promotions 1-3 weeks before
#: (model.DemandForecaster, `level_index`); (feature, first week back, weeks averaged)
LEVEL_FEATURES = (("log_units_lag_1", 1, 1), ("log_units_lag_2", 2, 1),
                  ("log_units_roll_mean_4", 1, 4), ("log_units_roll_mean_12", 1, 12))


def read_frame(path: Path, *, label: bool) -> pd.DataFrame:
    """Read a training-set file (Feast prefixes undone, columns checked), sorted by week."""
    frame = read_training_set(path, REQUIRED + (["units"] if label else []))
    frame["week_start"] = pd.to_datetime(frame["event_timestamp"], utc=True).dt.tz_localize(None)
    frame["week_start"] = frame["week_start"].dt.normalize()
    if "category" not in frame.columns:
        frame["category"] = frame["category_idx"].astype(str) if "category_idx" in frame else "all"
    for column in OPTIONAL:
        frame[column] = _num(frame, column, 0.0).fillna(0.0)
    return frame.sort_values(["week_start", "product_id"]).reset_index(drop=True)


def _num(frame: pd.DataFrame, column: str, default: float = np.nan) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(default, index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce").astype(float)


def raw_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Unstandardized body inputs (no promotion input); NaN left where unknown."""
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
    out["stocked_out_lag_1"] = _num(frame, "stocked_out_lag_1", 0.0).fillna(0.0).clip(0, 1)
    out["holiday_sin"] = out["is_holiday_week"] * out["week_sin"]
    out["holiday_cos"] = out["is_holiday_week"] * out["week_cos"]
    return out[FEATURE_NAMES]


@dataclass
class Standardizer:
    """Fill-then-scale statistics computed on training rows.

    A feature that is constant on the training rows (no lag_52 in the first year, no
    stock-outs in a data set) gets scale 0: it is 0 for every row, also where it later varies,
    since the model never learned what it means."""

    median: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, raw: pd.DataFrame) -> Standardizer:
        median = raw.median().fillna(0.0).to_numpy()
        filled = raw.fillna(dict(zip(raw.columns, median, strict=True)))
        return cls(median=median, mean=filled.mean().to_numpy(),
                   std=filled.std(ddof=0).to_numpy())

    @property
    def scale(self) -> np.ndarray:
        """1 / std, and 0 for the features constant on the training rows."""
        varies = self.std > 1e-9
        return np.where(varies, 1.0 / np.where(varies, self.std, 1.0), 0.0)

    def transform(self, raw: pd.DataFrame) -> np.ndarray:
        filled = raw.fillna(dict(zip(raw.columns, self.median, strict=True)))
        filled = filled.to_numpy(dtype=float)
        return ((filled - self.mean) * self.scale).astype(np.float32)

    def to_dict(self) -> dict[str, list[float]]:
        return {"median": self.median.tolist(), "mean": self.mean.tolist(),
                "std": self.std.tolist()}

    def level_inputs(self) -> dict[str, list]:
        """Where the LEVEL_FEATURES sit, 1/std of each, and which of the last 3 weeks each
        averages over (weights [feature, lag]): the model's deflation of past promotions."""
        index = [FEATURE_NAMES.index(name) for name, _, _ in LEVEL_FEATURES]
        window = [[1.0 / weeks if first <= lag < first + weeks else 0.0
                   for lag in range(1, len(DISCOUNT_LAG_COLUMNS) + 1)]
                  for _, first, weeks in LEVEL_FEATURES]
        return {"level_index": index, "level_scale": [float(self.scale[i]) for i in index],
                "level_window": window}


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


#: the model's inputs in the order of DemandForecaster.forward
MODEL_INPUTS = ("features", "product", "category", "discount", "promo_type",
                "lag_depth", "pressure", "contacts")


@dataclass
class Batch:
    """Model inputs of a set of rows as tensors (target and censoring where the label is known)."""

    features: torch.Tensor
    product: torch.Tensor
    category: torch.Tensor
    discount: torch.Tensor
    promo_type: torch.Tensor  # [rows, 3] display, mailer, coupon flags
    lag_depth: torch.Tensor  # [rows, 3] discount depth 1, 2, 3 weeks before
    pressure: torch.Tensor  # category_promo_pressure
    contacts: torch.Tensor  # contacted_customers
    target: torch.Tensor | None
    censored: torch.Tensor | None  # 1.0 where the week ended out of stock

    def inputs(self) -> tuple[torch.Tensor, ...]:
        """The model's inputs (MODEL_INPUTS)."""
        return tuple(getattr(self, name) for name in MODEL_INPUTS)

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """Inputs, then target and censoring flags where known (a TensorDataset's columns)."""
        labels = (self.target, self.censored) if self.target is not None else ()
        return self.inputs() + labels


N_INPUTS = len(MODEL_INPUTS)


def price_inputs(discount: np.ndarray | pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Discount depth clipped to [0, 0.95] and the promotion flag it implies (>= 1%)."""
    depth = np.clip(np.nan_to_num(np.asarray(discount, dtype=float)), 0.0, 0.95)
    return depth.astype(np.float32), (depth >= 0.01).astype(np.float32)


def _columns(frame: pd.DataFrame, columns: list[str], low: float, high: float) -> np.ndarray:
    values = np.stack([_num(frame, c, 0.0).fillna(0.0).to_numpy() for c in columns], axis=1)
    return np.clip(values, low, high).astype(np.float32)


def make_batch(
    frame: pd.DataFrame, standardizer: Standardizer, vocab: Vocab,
    discount: np.ndarray | None = None, contacts: np.ndarray | None = None,
) -> Batch:
    """Tensors for `frame`; `discount` overrides the realized discount (scoring candidates,
    which are plain price cuts: no promotion type) and then `contacts` the contacted customers
    (none when not given)."""
    if discount is None:
        depth, _ = price_inputs(_num(frame, "discount_depth").fillna(0.0))
        promo_type = _columns(frame, PROMO_TYPE_COLUMNS, 0.0, 1.0)
        contacts = _columns(frame, ["contacted_customers"], 0.0, np.inf)[:, 0]
    else:
        depth, _ = price_inputs(discount)
        promo_type = np.zeros((len(frame), len(PROMO_TYPE_COLUMNS)), dtype=np.float32)
        contacts = (np.zeros(len(frame)) if contacts is None
                    else np.clip(np.asarray(contacts, dtype=float), 0.0, None))
    target = censored = None
    if "units" in frame.columns:
        units = _num(frame, "units").fillna(0.0).clip(lower=0).to_numpy()
        target = torch.tensor(np.log1p(units), dtype=torch.float32)
        censored = torch.from_numpy(stocked_out(frame).astype(np.float32))
    return Batch(
        features=torch.from_numpy(standardizer.transform(raw_features(frame))),
        product=torch.from_numpy(vocab.product_index(frame)),
        category=torch.from_numpy(vocab.category_index(frame)),
        discount=torch.from_numpy(depth.astype(np.float32)),
        promo_type=torch.from_numpy(promo_type),
        lag_depth=torch.from_numpy(_columns(frame, DISCOUNT_LAG_COLUMNS, 0.0, 0.95)),
        pressure=torch.from_numpy(
            _num(frame, "category_promo_pressure", 0.0).fillna(0.0).clip(lower=0)
            .to_numpy(dtype=np.float32)
        ),
        contacts=torch.from_numpy(np.asarray(contacts, dtype=np.float32)),
        target=target,
        censored=censored,
    )


def stocked_out(frame: pd.DataFrame) -> np.ndarray:
    """True where the week ended out of stock (its units are a lower bound of demand)."""
    return _num(frame, "is_stocked_out", 0.0).fillna(0.0).to_numpy() >= 0.5


def promoted_rows(frame: pd.DataFrame) -> np.ndarray:
    """True where the week was promoted (a flag or a discount of at least 1%)."""
    flag = _num(frame, "is_promoted", 0.0).fillna(0.0).to_numpy() > 0
    return flag | (_num(frame, "discount_depth", 0.0).fillna(0.0).to_numpy() >= 0.01)


def split_holdout(frame: pd.DataFrame, holdout_weeks: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The last `holdout_weeks` weeks of the file are held out (at least one week stays in)."""
    weeks = np.sort(frame["week_start"].unique())
    if len(weeks) <= holdout_weeks:
        raise ValueError(f"the training file has {len(weeks)} weeks, not more than the "
                         f"{holdout_weeks} holdout weeks; lower --holdout-weeks.")
    cutoff = weeks[-holdout_weeks] if holdout_weeks > 0 else weeks[-1] + np.timedelta64(1, "D")
    return frame[frame["week_start"] < cutoff], frame[frame["week_start"] >= cutoff]


def split_validation(
    rows: pd.DataFrame, validation_weeks: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The last `validation_weeks` weeks of `rows` (the weeks before the holdout) as the
    validation slice, fewer when the data is short: at least half of the weeks stay for
    fitting. An empty slice (one week of data, or 0 asked) turns early stopping and
    calibration off."""
    weeks = np.sort(rows["week_start"].unique())
    n = max(0, min(validation_weeks, len(weeks) // 2))
    if n == 0:
        return rows, rows.iloc[0:0]
    cutoff = weeks[-n]
    return rows[rows["week_start"] < cutoff], rows[rows["week_start"] >= cutoff]
