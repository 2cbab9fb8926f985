"""The ground-truth oracle: true expected demand of the synthetic market.

Reads the truth files written by `sources.synthetic.generate` (never read by the pipeline itself) and
evaluates the same demand formula the generator sampled from, so plans and forecasts can be
scored against what the market would really have done.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from sources.synthetic import market


@lru_cache(maxsize=8)
def _load(truth_dir: str, mtime: float) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    folder = Path(truth_dir)
    products = pd.read_csv(folder / "products_truth.csv").set_index("product_id")
    season = pd.read_csv(folder / "seasonality_truth.csv")
    lifts = pd.read_csv(folder / "holiday_lifts_truth.csv")
    return products, season, lifts


def load_truth(truth_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(products indexed by product_id, seasonality, holiday lifts) from a truth folder."""
    path = Path(truth_dir) / "products_truth.csv"
    if not path.exists():
        raise FileNotFoundError(
            f"No ground truth at {truth_dir}; generate it with python -m sources.synthetic.generate."
        )
    return _load(str(Path(truth_dir).resolve()), path.stat().st_mtime)


def expected_units(
    truth_dir: Path,
    product_ids: np.ndarray | list[int],
    week_start: dt.date | str,
    discount_depth: np.ndarray | list[float] | float = 0.0,
) -> np.ndarray:
    """True expected units of each product in the Monday-start week at the discount depth.

    discount_depth is a scalar or one value per product (1 - paid / list, in [0, 1)).
    """
    products, season, lifts = load_truth(truth_dir)
    week = pd.Timestamp(week_start).date()
    if week.weekday() != 0:
        raise ValueError(f"week_start {week} is not a Monday; pass the Monday the week starts on.")
    ids = np.asarray(product_ids, dtype=np.int64)
    unknown = ~np.isin(ids, products.index.to_numpy())
    if unknown.any():
        raise KeyError(f"Unknown product ids in the ground truth: {ids[unknown][:5].tolist()}.")
    rows = products.loc[ids]
    woy = market.iso_week(week)
    season_of = season[season["week_of_year"] == woy].set_index("category")["multiplier"]
    categories = sorted(set(rows["category"]))
    lift_matrix = market.holiday_lift_matrix(lifts, categories, [week])[:, 0]
    lift_of = dict(zip(categories, lift_matrix))
    return market.expected_units(
        rows["base_weekly_units"].to_numpy(),
        rows["elasticity"].to_numpy(),
        season_of.loc[rows["category"]].to_numpy(),
        np.array([lift_of[c] for c in rows["category"]]),
        np.asarray(discount_depth, dtype=float),
    )
