"""A seeded fake market in the exact training-set schemas, for the training tests.

Products belong to categories with a known price elasticity; weekly units are Poisson around
    base * seasonality * holiday_lift * (1 - discount_depth) ** (-elasticity);
customers buy mostly in one favourite category. `build_fake_market` writes the five training-set
Parquet files of docs/architecture.md ("Training sets") into a run folder.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from promoflow.run import RunFolder

FIRST_WEEK = dt.date(2025, 1, 6)  # a Monday
HOLIDAY_WEEKS = {26, 47, 52}
DISCOUNT_CHOICES = np.array([0.1, 0.2, 0.3, 0.4])


@dataclass(frozen=True)
class FakeMarket:
    """Where the files are and the truth they were drawn from."""

    run_dir: Path
    plan_week: dt.date
    category_elasticity: dict[str, float]
    customer_favourite: dict[int, str]


def _weeks(n: int) -> list[dt.date]:
    return [FIRST_WEEK + dt.timedelta(weeks=i) for i in range(n)]


def _utc(days: list[dt.date] | pd.Series) -> pd.Series:
    return pd.Series(pd.to_datetime(list(days))).dt.tz_localize("UTC")


def _products(rng: np.random.Generator, n_products: int, n_categories: int) -> pd.DataFrame:
    categories = [f"cat_{c}" for c in range(n_categories)]
    list_price = np.round(rng.uniform(5, 80, n_products), 2)
    unit_cost = np.round(list_price * rng.uniform(0.3, 0.6, n_products), 2)
    return pd.DataFrame({
        "product_id": np.arange(1, n_products + 1, dtype=np.int64),
        "category": [categories[i % n_categories] for i in range(n_products)],
        "category_idx": np.arange(n_products) % n_categories,
        "list_price": list_price,
        "unit_cost": unit_cost,
        "margin_rate": (list_price - unit_cost) / list_price,
        "base_units": rng.lognormal(np.log(8.0), 0.6, n_products),
        "appeal": rng.lognormal(0.0, 0.7, n_products),
    })


def _product_weeks(
    rng: np.random.Generator, products: pd.DataFrame, elasticity: dict[str, float], n_weeks: int
) -> pd.DataFrame:
    weeks = _weeks(n_weeks + 1)  # the last one is the plan week
    frame = products.merge(pd.DataFrame({"week_start": weeks}), how="cross")
    frame["week_of_year"] = [w.isocalendar()[1] for w in frame["week_start"]]
    frame["is_holiday_week"] = frame["week_of_year"].isin(HOLIDAY_WEEKS)
    is_plan = frame["week_start"] == weeks[-1]
    promoted = (rng.random(len(frame)) < 0.25) & ~is_plan
    frame["discount_depth"] = np.where(promoted, rng.choice(DISCOUNT_CHOICES, len(frame)), 0.0)
    frame["is_promoted"] = promoted
    phase = frame["category_idx"].to_numpy() * 13
    season = 1.0 + 0.35 * np.sin(2 * np.pi * (frame["week_of_year"].to_numpy() + phase) / 52)
    lift = np.where(frame["is_holiday_week"], 1.8, 1.0)
    elast = frame["category"].map(elasticity).to_numpy()
    mean = frame["base_units"] * season * lift * (1 - frame["discount_depth"]) ** (-elast)
    frame["units"] = rng.poisson(mean.to_numpy()).astype(np.int64)
    frame = frame.sort_values(["product_id", "week_start"]).reset_index(drop=True)
    past = frame.groupby("product_id")["units"]
    shifted = past.shift(1)
    frame["units_lag_1"] = shifted
    frame["units_lag_2"] = past.shift(2)
    frame["units_lag_4"] = past.shift(4)
    frame["units_lag_52"] = past.shift(52)
    by_product = shifted.groupby(frame["product_id"])
    frame["units_roll_mean_4"] = by_product.transform(lambda s: s.rolling(4, min_periods=1).mean())
    frame["units_roll_mean_12"] = by_product.transform(
        lambda s: s.rolling(12, min_periods=1).mean()
    )
    frame["units_roll_std_12"] = by_product.transform(lambda s: s.rolling(12, min_periods=2).std())
    frame["popularity_units_12w"] = by_product.transform(
        lambda s: s.rolling(12, min_periods=1).sum()
    ).fillna(0.0)
    frame["promo_lift"] = 1.0 + 0.1 * frame["category_idx"]  # a static, slightly informative hint
    frame.loc[is_plan, "units"] = -1
    return frame


FORECASTER_FEATURES = [
    "category_idx", "week_of_year", "is_holiday_week", "units_lag_1", "units_lag_2",
    "units_lag_4", "units_lag_52", "units_roll_mean_4", "units_roll_mean_12",
    "units_roll_std_12", "discount_depth", "is_promoted", "list_price",
    "category", "unit_cost", "margin_rate", "popularity_units_12w", "promo_lift",
]
PRODUCT_FEATURES = ["category", "list_price", "unit_cost", "margin_rate",
                    "popularity_units_12w", "promo_lift"]


def _interactions(
    rng: np.random.Generator, products: pd.DataFrame, n_customers: int, n_weeks: int
) -> tuple[pd.DataFrame, dict[int, str]]:
    categories = sorted(products["category"].unique())
    customer_ids = np.arange(1001, 1001 + n_customers, dtype=np.int64)
    favourite = rng.integers(0, len(categories), n_customers)
    taste = np.full((n_customers, len(categories)), 0.15 / max(len(categories) - 1, 1))
    taste[np.arange(n_customers), favourite] = 0.85
    activity = rng.lognormal(np.log(0.5), 0.5, n_customers)
    appeal = products["appeal"].to_numpy()
    product_cat = products["category"].map({c: i for i, c in enumerate(categories)}).to_numpy()
    rows = []
    for week in _weeks(n_weeks):
        counts = rng.poisson(activity)
        for c in np.flatnonzero(counts):
            cats = rng.choice(len(categories), counts[c], p=taste[c])
            for cat in cats:
                in_cat = np.flatnonzero(product_cat == cat)
                p = appeal[in_cat] / appeal[in_cat].sum()
                rows.append((customer_ids[c], products["product_id"].iloc[rng.choice(in_cat, p=p)],
                             week, int(rng.integers(1, 3))))
    frame = pd.DataFrame(rows, columns=["customer_id", "product_id", "week_start", "units"])
    keys = ["customer_id", "product_id", "week_start"]
    frame = frame.groupby(keys, as_index=False)["units"].sum()
    return frame, {int(customer_ids[i]): categories[favourite[i]] for i in range(n_customers)}


def _customer_features(
    rng: np.random.Generator, interactions: pd.DataFrame, products: pd.DataFrame,
    customer_ids: list[int], plan_week: dt.date,
) -> pd.DataFrame:
    lines = interactions.merge(products[["product_id", "category", "list_price"]], on="product_id")
    lines["value"] = lines["units"] * lines["list_price"]
    grouped = lines.groupby("customer_id")
    last = grouped["week_start"].max()
    top = lines.groupby(["customer_id", "category"])["units"].sum().reset_index()
    top = top.sort_values(["customer_id", "units"], ascending=[True, False])
    top = top.drop_duplicates("customer_id").set_index("customer_id")["category"]
    frame = pd.DataFrame({"customer_id": np.asarray(customer_ids, dtype=np.int64)})
    frame["event_timestamp"] = _utc([plan_week] * len(frame))
    recency = frame["customer_id"].map(last).map(
        lambda d: (plan_week - d).days if isinstance(d, dt.date) else np.nan
    )
    frame["recency_days"] = recency.astype(float)
    frame["frequency_orders_52w"] = frame["customer_id"].map(grouped.size()).fillna(0).astype(float)
    frame["monetary_value_52w"] = frame["customer_id"].map(grouped["value"].sum()).fillna(0.0)
    frame["avg_discount_depth"] = np.round(rng.uniform(0, 0.2, len(frame)), 3)
    frame["promo_share"] = np.round(rng.uniform(0, 0.5, len(frame)), 3)
    frame["top_category"] = frame["customer_id"].map(top)
    # a few customers without any features, as the feature store returns them
    frame.loc[frame.index[-3:], ["recency_days", "top_category"]] = [np.nan, None]
    return frame


def build_fake_market(
    run_dir: Path,
    *,
    seed: int = 7,
    n_products: int = 24,
    n_categories: int = 4,
    n_customers: int = 300,
    n_weeks: int = 80,
) -> FakeMarket:
    """Write the five training-set Parquet files into `run_dir` and return the truth."""
    rng = np.random.default_rng(seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    products = _products(rng, n_products, n_categories)
    names = sorted(products["category"].unique(), key=lambda c: int(c.split("_")[1]))
    elasticity = {c: 1.0 + 2.4 * i / max(len(names) - 1, 1) for i, c in enumerate(names)}
    weeks = _product_weeks(rng, products, elasticity, n_weeks)
    plan_week = FIRST_WEEK + dt.timedelta(weeks=n_weeks)
    weeks["event_timestamp"] = _utc(weeks["week_start"])
    columns = ["product_id", "event_timestamp", "units", *FORECASTER_FEATURES]
    train = weeks[weeks["week_start"] < plan_week][columns].reset_index(drop=True)
    score = weeks[weeks["week_start"] == plan_week][[c for c in columns if c != "units"]]
    folder = RunFolder(run_dir)
    train.to_parquet(folder.forecaster_train, index=False)
    score.reset_index(drop=True).to_parquet(folder.forecaster_score, index=False)

    interactions, favourite = _interactions(rng, products, n_customers, n_weeks)
    interactions.to_parquet(folder.recommender_interactions, index=False)
    customers = _customer_features(rng, interactions, products, sorted(favourite), plan_week)
    customers.to_parquet(folder.recommender_customers, index=False)
    latest = weeks[weeks["week_start"] == plan_week]
    product_rows = latest[["product_id", "event_timestamp", *PRODUCT_FEATURES]]
    product_rows.reset_index(drop=True).to_parquet(folder.recommender_products, index=False)
    return FakeMarket(run_dir, plan_week, elasticity, favourite)
