"""A seeded fake market in the exact training-set schemas, for the training tests.

Products belong to categories with a known price elasticity and a saturating price response.
A product's expected weekly units are

    base * seasonality * holiday_lift * own_multiplier * (1 - dip) * (1 - cannibalized)

    own_multiplier = exp(elasticity * s * tanh(x / s)) * (1 + type_bump)   (x = -log(1 - depth))

where `type_bump` is the visibility bump of a display, mailer or coupon promotion (0 for a plain
price cut), `dip` the share of the product's extra units of the last three weeks taken from this
week (DIP_WEIGHTS x dip_share, at most DIP_CAP of the week) and `cannibalized` the share its
category loses to the extra units of its promoted siblings (cannibalization_rate x their extra
units / the category's baseline, at most CANNIBALIZATION_CAP). Realized units are Poisson around
that mean; some weeks run out of stock (more often when promoted), and then the recorded units
are the stock, a lower bound of demand (`is_stocked_out`). Promotions go more often to popular
products and deeper in and before holiday weeks. From CONTACT_FROM_WEEK on, half of the
promoted products are also targeted: `contacted_customers` were contacted about the product that
week, and each adds a Poisson CONTACT_UNITS to its units (a contact adds units whatever the
product's level). `build_fake_market(..., effects=False)` draws the same market without dip,
cannibalization, type bumps and contacts (a control for the model's signs).
Customers buy mostly in one favourite category; with `sequential=True` they instead walk a
hidden cycle of the catalogue, buying the next product of the cycle most weeks (a pattern only
a model of the purchase order can learn). `build_fake_market` writes the seven training-set
Parquet files of docs/architecture.md ("Training sets") into a run folder: the recommender's
customer and product snapshots as of the plan week and as of its holdout start.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from promoflow.run import RECOMMENDER_HOLDOUT_WEEKS, RunFolder

FIRST_WEEK = dt.date(2025, 1, 6)  # a Monday
HOLIDAY_WEEKS = {26, 47, 52}
DISCOUNT_CHOICES = np.array([0.1, 0.2, 0.3, 0.4])
SATURATION = 0.35
PROMO_TYPES = ("price_cut", "display", "mailer", "coupon")
TYPE_PROBABILITY = np.array([0.4, 0.25, 0.2, 0.15])
TYPE_BUMP = {"price_cut": 0.0, "display": 0.35, "mailer": 0.5, "coupon": 0.1}
DIP_WEIGHTS = np.array([0.6, 0.3, 0.1])
DIP_SHARE = 0.4
DIP_CAP = 0.35
CANNIBALIZATION_RATE = 0.8
CANNIBALIZATION_CAP = 0.35
SHARE_WEEKS = 12
CONTACT_FROM_WEEK = 30
CONTACT_UNITS = 0.08


@dataclass(frozen=True)
class FakeMarket:
    """Where the files are and the truth they were drawn from."""

    run_dir: Path
    plan_week: dt.date
    category_elasticity: dict[str, float]
    customer_favourite: dict[int, str]
    #: the product following each product in the cycle of a sequential market (else empty)
    next_product: dict[int, int] | None = None
    saturation: float = SATURATION
    type_bump: dict[str, float] | None = None
    dip_share: float = 0.0
    cannibalization_rate: float = 0.0
    contact_units: float = 0.0


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


def own_multiplier(elasticity: np.ndarray, depth: np.ndarray, type_bump: np.ndarray
                   ) -> np.ndarray:
    """Demand multiplier of a product's own promotion (1 at depth 0)."""
    x = -np.log1p(-np.clip(depth, 0.0, 0.95))
    price = np.exp(elasticity * SATURATION * np.tanh(x / SATURATION))
    return np.where(depth > 0, price * (1.0 + type_bump), 1.0)


def _lagged(values: np.ndarray, k: int) -> np.ndarray:
    """[products, weeks] values k weeks before (0 before the first week)."""
    out = np.zeros_like(values)
    out[:, k:] = values[:, :-k]
    return out


def _product_weeks(
    rng: np.random.Generator, products: pd.DataFrame, elasticity: dict[str, float], n_weeks: int,
    effects: bool,
) -> pd.DataFrame:
    weeks = _weeks(n_weeks + 1)  # the last one is the plan week
    n_p, n_w = len(products), len(weeks)
    week_of_year = np.array([w.isocalendar()[1] for w in weeks])
    holiday = np.isin(week_of_year, list(HOLIDAY_WEEKS))
    event_soon = holiday | np.append(holiday[1:], False)
    cat_idx = products["category_idx"].to_numpy()
    base_units = products["base_units"].to_numpy()

    # promotions: popular products more often, deeper in and before holiday weeks
    popularity = base_units / np.median(base_units)
    chance = np.clip(0.25 * popularity ** 0.4, 0.1, 0.5)[:, None]
    promoted = rng.random((n_p, n_w)) < chance
    promoted[:, -1] = False
    normal = rng.choice(DISCOUNT_CHOICES, (n_p, n_w), p=[0.35, 0.3, 0.2, 0.15])
    deep = rng.choice(DISCOUNT_CHOICES, (n_p, n_w), p=[0.1, 0.2, 0.3, 0.4])
    depth = np.where(promoted, np.where(event_soon[None, :], deep, normal), 0.0)
    kind = np.where(promoted, rng.choice(len(PROMO_TYPES), (n_p, n_w), p=TYPE_PROBABILITY), 0)
    bump = np.array([TYPE_BUMP[t] for t in PROMO_TYPES]) if effects else np.zeros(4)

    phase = cat_idx[:, None] * 13
    season = 1.0 + 0.35 * np.sin(2 * np.pi * (week_of_year[None, :] + phase) / 52)
    lift = np.where(holiday, 1.8, 1.0)[None, :]
    baseline = base_units[:, None] * season * lift
    elast = products["category"].map(elasticity).to_numpy()[:, None]
    own = baseline * own_multiplier(elast, depth, bump[kind])
    extra = own - baseline
    if effects:
        due = sum(w * _lagged(extra, k) for k, w in enumerate(DIP_WEIGHTS, start=1))
        dip = np.minimum(DIP_CAP, DIP_SHARE * due / baseline)
        cannibalized = np.zeros_like(own)
        for c in np.unique(cat_idx):
            members = cat_idx == c
            others_extra = extra[members].sum(axis=0, keepdims=True) - extra[members]
            share = CANNIBALIZATION_RATE * others_extra / baseline[members].sum(axis=0)
            cannibalized[members] = np.minimum(CANNIBALIZATION_CAP, share)
    else:
        dip = cannibalized = np.zeros_like(own)
    demand = rng.poisson(own * (1 - dip) * (1 - cannibalized))
    # targeted campaigns (their own generator: the rest of the market is drawn as without them)
    contact_rng = np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0])
    targeted = (promoted & (np.arange(n_w)[None, :] >= CONTACT_FROM_WEEK)
                & (contact_rng.random((n_p, n_w)) < 0.5) & effects)
    contacts = np.where(targeted, contact_rng.integers(40, 160, (n_p, n_w)), 0)
    demand = demand + contact_rng.poisson(CONTACT_UNITS * contacts)

    # stock-outs: some weeks have less stock than usual (promoted ones more often)
    short = rng.random((n_p, n_w)) < np.where(promoted, 0.3, 0.12)
    stock = np.ceil(own * rng.uniform(0.4, 1.0, (n_p, n_w)))
    stocked_out = short & (demand >= stock)
    units = np.where(stocked_out, np.minimum(demand, stock), demand).astype(np.int64)
    stocked_out[:, -1] = False

    # category pressure: the other promoted products' share of the category's units in the
    # 12 weeks before, times their depth (the spark feature's definition)
    cumulative = np.concatenate([np.zeros((n_p, 1)), np.cumsum(units, axis=1)], axis=1)
    start = np.clip(np.arange(n_w) - SHARE_WEEKS, 0, None)
    before = cumulative[:, np.arange(n_w)] - cumulative[:, start]
    pressure = np.zeros((n_p, n_w))
    count = np.zeros((n_p, n_w))
    for c in np.unique(cat_idx):
        members = cat_idx == c
        total = before[members].sum(axis=0)
        share = np.where(total > 0, before[members] / np.where(total > 0, total, 1.0), 0.0)
        term = share * depth[members]
        pressure[members] = term.sum(axis=0) - term
        count[members] = promoted[members].sum(axis=0) - promoted[members]

    frame = products.merge(pd.DataFrame({"week_start": weeks}), how="cross")
    frame["week_of_year"] = np.tile(week_of_year, n_p)
    frame["is_holiday_week"] = np.tile(holiday, n_p)
    frame["discount_depth"] = depth.reshape(-1)
    frame["is_promoted"] = promoted.reshape(-1)
    frame["units"] = units.reshape(-1)
    for k in (1, 2, 3):
        frame[f"discount_depth_lag_{k}"] = _lagged(depth, k).reshape(-1)
    for i, name in enumerate(PROMO_TYPES[1:], start=1):
        frame[f"promo_{name}"] = (kind == i).astype(float).reshape(-1)
    frame["category_promo_pressure"] = pressure.reshape(-1)
    frame["category_promo_count"] = count.reshape(-1)
    frame["is_stocked_out"] = stocked_out.astype(float).reshape(-1)
    frame["stocked_out_lag_1"] = _lagged(stocked_out.astype(float), 1).reshape(-1)
    frame["contacted_customers"] = contacts.astype(float).reshape(-1)
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
    frame.loc[frame["week_start"] == weeks[-1], "units"] = -1
    return frame


FORECASTER_FEATURES = [
    "category_idx", "week_of_year", "is_holiday_week", "units_lag_1", "units_lag_2",
    "units_lag_4", "units_lag_52", "units_roll_mean_4", "units_roll_mean_12",
    "units_roll_std_12", "discount_depth", "is_promoted", "list_price",
    "discount_depth_lag_1", "discount_depth_lag_2", "discount_depth_lag_3",
    "promo_display", "promo_mailer", "promo_coupon", "category_promo_pressure",
    "category_promo_count", "is_stocked_out", "stocked_out_lag_1", "contacted_customers",
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


def _sequential_interactions(
    rng: np.random.Generator, products: pd.DataFrame, n_customers: int, n_weeks: int
) -> tuple[pd.DataFrame, dict[int, str], dict[int, int]]:
    """Each customer walks one hidden cycle of the catalogue from their own starting point:
    most weeks they buy the next product of the cycle, now and then a random one as well."""
    product_ids = products["product_id"].to_numpy()
    cycle = product_ids[rng.permutation(len(product_ids))]
    following = {int(cycle[i]): int(cycle[(i + 1) % len(cycle)]) for i in range(len(cycle))}
    customer_ids = np.arange(1001, 1001 + n_customers, dtype=np.int64)
    position = rng.integers(0, len(cycle), n_customers)
    rows = []
    for week in _weeks(n_weeks):
        moves = rng.random(n_customers) < 0.9
        position = position + moves
        for c in np.flatnonzero(moves):
            rows.append((customer_ids[c], cycle[position[c] % len(cycle)], week, 1))
        for c in np.flatnonzero(rng.random(n_customers) < 0.1):
            rows.append((customer_ids[c], product_ids[rng.integers(len(product_ids))], week, 1))
    frame = pd.DataFrame(rows, columns=["customer_id", "product_id", "week_start", "units"])
    keys = ["customer_id", "product_id", "week_start"]
    frame = frame.groupby(keys, as_index=False)["units"].sum()
    category = products.set_index("product_id")["category"]
    first = frame.sort_values("week_start").drop_duplicates("customer_id")
    favourite = dict(zip(first["customer_id"].astype(int), first["product_id"].map(category),
                         strict=True))
    return frame, favourite, following


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
    effects: bool = True,
    sequential: bool = False,
) -> FakeMarket:
    """Write the seven training-set Parquet files into `run_dir` and return the truth
    (`effects=False`: no dip, no cannibalization, no promotion-type bumps; `sequential=True`:
    customers buy along a hidden cycle of the catalogue)."""
    rng = np.random.default_rng(seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    products = _products(rng, n_products, n_categories)
    names = sorted(products["category"].unique(), key=lambda c: int(c.split("_")[1]))
    elasticity = {c: 1.0 + 2.4 * i / max(len(names) - 1, 1) for i, c in enumerate(names)}
    weeks = _product_weeks(rng, products, elasticity, n_weeks, effects)
    plan_week = FIRST_WEEK + dt.timedelta(weeks=n_weeks)
    weeks["event_timestamp"] = _utc(weeks["week_start"])
    columns = ["product_id", "event_timestamp", "units", *FORECASTER_FEATURES]
    train = weeks[weeks["week_start"] < plan_week][columns].reset_index(drop=True)
    score = weeks[weeks["week_start"] == plan_week][[c for c in columns if c != "units"]]
    folder = RunFolder(run_dir)
    train.to_parquet(folder.forecaster_train, index=False)
    score.reset_index(drop=True).to_parquet(folder.forecaster_score, index=False)

    following: dict[int, int] | None = None
    if sequential:
        interactions, favourite, following = _sequential_interactions(
            rng, products, n_customers, n_weeks)
    else:
        interactions, favourite = _interactions(rng, products, n_customers, n_weeks)
    interactions.to_parquet(folder.recommender_interactions, index=False)
    customers = _customer_features(rng, interactions, products, sorted(favourite), plan_week)
    customers.to_parquet(folder.recommender_customers, index=False)
    latest = weeks[weeks["week_start"] == plan_week]
    product_rows = latest[["product_id", "event_timestamp", *PRODUCT_FEATURES]]
    product_rows.reset_index(drop=True).to_parquet(folder.recommender_products, index=False)
    write_holdout_snapshots(rng, folder, interactions, products, weeks, sorted(favourite),
                            plan_week - dt.timedelta(weeks=RECOMMENDER_HOLDOUT_WEEKS))
    return FakeMarket(
        run_dir, plan_week, elasticity, favourite, following, SATURATION,
        type_bump=dict(TYPE_BUMP) if effects else dict.fromkeys(TYPE_BUMP, 0.0),
        dip_share=DIP_SHARE if effects else 0.0,
        cannibalization_rate=CANNIBALIZATION_RATE if effects else 0.0,
        contact_units=CONTACT_UNITS if effects else 0.0,
    )


def write_holdout_snapshots(
    rng: np.random.Generator, folder: RunFolder, interactions: pd.DataFrame,
    products: pd.DataFrame, weeks: pd.DataFrame, customer_ids: list[int], holdout_start: dt.date,
) -> None:
    """The customer and product snapshots as of `holdout_start`, stamped with it (as the
    training-set stage writes them): computed from the interactions before it only."""
    before = interactions[interactions["week_start"] < holdout_start]
    customers = _customer_features(rng, before, products, customer_ids, holdout_start)
    customers.to_parquet(folder.recommender_customers_at_holdout, index=False)
    at_start = weeks[weeks["week_start"] == holdout_start]
    rows = at_start[["product_id", "event_timestamp", *PRODUCT_FEATURES]].reset_index(drop=True)
    rows.to_parquet(folder.recommender_products_at_holdout, index=False)
