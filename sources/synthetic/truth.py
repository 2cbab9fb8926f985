"""The ground-truth oracle: true expected demand of the synthetic market.

Reads the truth files written by `sources.synthetic.generate` (never read by the pipeline itself) and
evaluates the same demand model the generator sampled from (docs/market.md), so plans and
forecasts can be scored against what the market would really have done:

- `expected_units`: a product's own expected units at a discount and promotion type, with the dip
  that the history's last promotions still cause in that week (no cannibalization: that depends
  on the whole plan);
- `plan_outcome`: what a whole plan does in truth: every product's units after the category's
  cannibalization and the stock cap, and the dip its promotion causes in the next weeks;
- `market`: the effect parameters (dip share per product; saturation, visibility,
  cannibalization rate and cap per category).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from sources.synthetic import market as model


@dataclass(frozen=True)
class Market:
    products: pd.DataFrame  # indexed by product_id
    categories: pd.DataFrame  # indexed by category
    seasonality: pd.DataFrame
    holiday_lifts: pd.DataFrame
    carryover: pd.DataFrame  # product_id, week_start (date), dip_units


@lru_cache(maxsize=8)
def _load(truth_dir: str, mtime: float) -> Market:
    folder = Path(truth_dir)
    carryover = pd.read_csv(folder / "carryover_truth.csv")
    carryover["week_start"] = pd.to_datetime(carryover["week_start"]).dt.date
    return Market(
        products=pd.read_csv(folder / "products_truth.csv").set_index("product_id"),
        categories=pd.read_csv(folder / "categories_truth.csv").set_index("category"),
        seasonality=pd.read_csv(folder / "seasonality_truth.csv"),
        holiday_lifts=pd.read_csv(folder / "holiday_lifts_truth.csv"),
        carryover=carryover,
    )


def market(truth_dir: Path) -> Market:
    """The truth tables of a generated market."""
    path = Path(truth_dir) / "products_truth.csv"
    if not path.exists() or not (Path(truth_dir) / "carryover_truth.csv").exists():
        raise FileNotFoundError(
            f"No ground truth at {truth_dir}; generate it with python -m sources.synthetic.generate."
        )
    # a simulated week rewrites the carryover: a newer one reloads the market
    stamp = max(path.stat().st_mtime_ns, (Path(truth_dir) / "carryover_truth.csv").stat().st_mtime_ns)
    return _load(str(Path(truth_dir).resolve()), stamp)


def _monday(week_start: dt.date | str) -> dt.date:
    week = pd.Timestamp(week_start).date()
    if week.weekday() != 0:
        raise ValueError(f"week_start {week} is not a Monday; pass the Monday the week starts on.")
    return week


def _rows(truth: Market, product_ids) -> pd.DataFrame:
    ids = np.asarray(product_ids, dtype=np.int64)
    unknown = ~np.isin(ids, truth.products.index.to_numpy())
    if unknown.any():
        raise KeyError(f"Unknown product ids in the ground truth: {ids[unknown][:5].tolist()}.")
    return truth.products.loc[ids]


def baseline_units(truth_dir: Path, product_ids, week_start: dt.date | str) -> np.ndarray:
    """True expected units of each product without promotion (before any history dip)."""
    truth = market(truth_dir)
    week = _monday(week_start)
    rows = _rows(truth, product_ids)
    season = truth.seasonality
    season_of = season[season["week_of_year"] == model.iso_week(week)].set_index("category")
    categories = sorted(set(rows["category"]))
    lifts = model.holiday_lift_matrix(truth.holiday_lifts, categories, [week])[:, 0]
    lift_of = dict(zip(categories, lifts, strict=True))
    return model.baseline_units(
        rows["base_weekly_units"].to_numpy(),
        season_of["multiplier"].loc[rows["category"]].to_numpy(),
        np.array([lift_of[c] for c in rows["category"]]),
    )


def _own(truth: Market, rows: pd.DataFrame, baseline: np.ndarray, depth, promo_type: str):
    cats = truth.categories.loc[rows["category"]]
    return baseline * model.own_multiplier(
        rows["elasticity"].to_numpy(), cats["saturation"].to_numpy(),
        cats["visibility"].to_numpy(), np.asarray(depth, dtype=float),
        model.TYPE_BUMP[promo_type],
    )


def _carryover(truth: Market, product_ids, week: dt.date) -> np.ndarray:
    due = truth.carryover[truth.carryover["week_start"] == week].set_index("product_id")
    return pd.Series(np.asarray(product_ids)).map(due["dip_units"]).fillna(0.0).to_numpy()


def _after_dip(units: np.ndarray, due: np.ndarray) -> np.ndarray:
    return np.maximum(model.DIP_FLOOR * units, units - due)


def expected_units(
    truth_dir: Path,
    product_ids: np.ndarray | list[int],
    week_start: dt.date | str,
    discount_depth: np.ndarray | list[float] | float = 0.0,
    promo_type: str = "price_cut",
) -> np.ndarray:
    """True expected units of each product in the Monday-start week at the discount depth.

    discount_depth is a scalar or one value per product (1 - paid / list, in [0, 1)). The dip the
    history's promotions still cause in that week is included; cannibalization is not (it
    depends on the siblings' discounts: see `plan_outcome`).
    """
    truth = market(truth_dir)
    week = _monday(week_start)
    rows = _rows(truth, product_ids)
    own = _own(truth, rows, baseline_units(truth_dir, product_ids, week), discount_depth,
               promo_type)
    return _after_dip(own, _carryover(truth, product_ids, week))


def plan_outcome(
    truth_dir: Path,
    week_start: dt.date | str,
    depths: pd.Series,
    stock: pd.Series | None = None,
    promo_type: str = "price_cut",
) -> pd.DataFrame:
    """What a plan (discount per product_id; missing = none) truly does in its week.

    One row per product of the market: baseline_units (no plan, history dip included),
    own_units (the product's own response), extra_units (own - baseline before the history
    dip, after the stock cap: what drives the dip and the cannibalization), cannibalized_units
    (lost to the category's promotions), units (sold: own minus the cannibalized share, capped
    by stock) and dip_units (units its promotion takes from the next weeks). Stock per product_id caps sold units (missing = unlimited).
    """
    truth = market(truth_dir)
    week = _monday(week_start)
    ids = truth.products.index.to_numpy()
    rows = truth.products
    depth = pd.Series(ids).map(depths).fillna(0.0).to_numpy(dtype=float)
    cap_units = (np.full(len(ids), np.inf) if stock is None
                 else pd.Series(ids).map(stock).fillna(np.inf).to_numpy(dtype=float))
    due = _carryover(truth, ids, week)
    raw_baseline = baseline_units(truth_dir, ids, week)
    raw_own = _own(truth, rows, raw_baseline, depth, promo_type)
    extra = np.minimum(raw_own, cap_units) - np.minimum(raw_baseline, cap_units)
    category = rows["category"].to_numpy()
    codes, names = pd.factorize(category)
    cats = truth.categories.loc[names]
    share = model.cannibalization_share(
        np.bincount(codes, extra, len(names)), np.bincount(codes, raw_baseline, len(names)),
        cats["cannibalization_rate"].to_numpy(), cats["cannibalization_cap"].to_numpy(),
    )[codes]
    own = np.minimum(_after_dip(raw_own, due), cap_units)
    units = np.minimum(_after_dip(raw_own - share * raw_baseline, due), cap_units)
    return pd.DataFrame({
        "product_id": ids, "category": category, "discount_depth": depth,
        "baseline_units": np.minimum(_after_dip(raw_baseline, due), cap_units),
        "own_units": own, "extra_units": extra, "cannibalized_units": own - units,
        "units": units, "dip_units": rows["dip_share"].to_numpy() * extra,
    })
