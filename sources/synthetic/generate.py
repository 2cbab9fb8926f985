"""Seeded synthetic e-commerce market: landing files in the raw contract plus ground truth.

    python -m sources.synthetic.generate --preset tiny|demo|large|xl --out DIR --truth DIR --seed N

The market (see synthetic/market.py for the demand formula): products in categories with
list prices and costs, per-product base demand, per-category seasonality, holiday lifts and
price elasticity, random past promotions, customers with category tastes and a discount
sensitivity, guest orders, returns and one inventory snapshot at the end of history.
Demand is drawn per product and week, then split into order lines and allocated to customers
and orders, all with numpy. Same seed, same bytes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sources.synthetic.market import (
    CATEGORY_NAMES,
    DIP_FLOOR,
    DIP_WEIGHTS,
    HISTORY_END,
    HOLIDAY_BASE_LIFT,
    PRESETS,
    TYPE_BUMP,
    Preset,
    baseline_units,
    cannibalization_share,
    holiday_calendar,
    holiday_lift_matrix,
    iso_week,
    own_multiplier,
)

log = logging.getLogger("sources.synthetic.generate")

PROMO_DEPTHS = np.array([0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40])
PROMO_DEPTH_PROBS = [0.12, 0.2, 0.2, 0.18, 0.12, 0.08, 0.05, 0.05]
PROMO_DEPTH_PROBS_EVENT = [0.04, 0.08, 0.12, 0.16, 0.18, 0.16, 0.13, 0.13]  # deeper near events
PROMO_TYPES = np.array(["price_cut", "display", "mailer"])
PROMO_TYPE_PROBS = [0.6, 0.25, 0.15]
PROMO_TYPE_PROBS_POPULAR = [0.4, 0.35, 0.25]
PROMO_START_PROB = 0.05  # per product and week, for a product of median popularity
PROMO_HOLIDAY_FACTOR = 2.5  # promotions are more frequent in and just before event weeks
PROMO_OVERSTOCK_FACTOR = 1.8  # ... and for products that ended last week overstocked
OVERSTOCK_WEEKS = 2.5  # overstocked: more than this many weeks of baseline demand left
SHORT_STOCK_SHARE = 0.1  # products kept chronically short of stock
NB_SHAPE = 4.0  # gamma-Poisson shape: smaller is noisier
NEW_LINE_PROB = 0.75  # each further unit starts a new line with this probability
GUEST_SHARE = 0.07
RETURN_SHARE = 0.04
WEEKDAY_WEIGHTS = np.array([0.13, 0.13, 0.13, 0.14, 0.15, 0.17, 0.15])
REGIONS = np.array(["north", "south", "east", "west", "central"])
AGE_BANDS = np.array(["18-24", "25-34", "35-44", "45-54", "55-64", "65+"])
CONTACT_CHANNELS = np.array(["email", "app_push", "sms", ""])
ORDER_CHANNELS = np.array(["web", "app", "store"])
BRANDS = np.array(
    [
        "Acme",
        "Nordic",
        "Luma",
        "Vertex",
        "Orchid",
        "Kestrel",
        "Pioneer",
        "Zenith",
        "Harbor",
        "Maple",
        "Quill",
        "Solace",
    ]
)
ADJECTIVES = np.array(["Classic", "Pro", "Lite", "Plus", "Mini", "Max", "Eco", "Prime"])

TABLE_COLUMNS: dict[str, list[str]] = {
    "customers": ["customer_id", "signup_date", "region", "age_band", "preferred_channel"],
    "products": ["product_id", "product_name", "category", "brand", "list_price", "unit_cost"],
    "stores": ["store_id", "store_name", "region", "timezone"],
    "orders": ["order_id", "customer_id", "ordered_at", "channel", "store_id"],
    "order_lines": [
        "order_id",
        "line_number",
        "product_id",
        "quantity",
        "unit_list_price",
        "unit_paid_price",
        "promotion_id",
    ],
    "promotions": [
        "promotion_id",
        "product_id",
        "start_date",
        "end_date",
        "discount_depth",
        "promo_type",
    ],
    "inventory": ["product_id", "snapshot_date", "on_hand_units"],
    "holidays": ["holiday_date", "holiday_name"],
    # written by the plan-week simulation only (simulate.py): the history targeted nobody
    "campaign_contacts": ["customer_id", "product_id", "sent_at", "channel"],
    "contact_consents": ["customer_id", "channel", "consented_at", "withdrawn_at"],
}


class GenerateError(ValueError):
    pass


def _money(values: np.ndarray) -> np.ndarray:
    return np.char.mod("%.2f", np.round(values, 2))


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    df.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")


def _category_names(n: int) -> list[str]:
    """The first n names; past the list, numbered sub-categories (`home 2`, ...)."""
    return [CATEGORY_NAMES[i % len(CATEGORY_NAMES)]
            + (f" {i // len(CATEGORY_NAMES) + 1}" if i >= len(CATEGORY_NAMES) else "")
            for i in range(n)]


def _categories(rng: np.random.Generator, preset: Preset) -> pd.DataFrame:
    n = preset.categories
    return pd.DataFrame(
        {
            "category": _category_names(n),
            "elasticity": rng.uniform(2.0, 4.5, n),
            "season_amplitude": rng.uniform(0.1, 0.45, n),
            "season_peak_week": rng.integers(1, 53, n),
            "price_scale": np.exp(rng.normal(np.log(30.0), 0.7, n)),
            "saturation": rng.uniform(0.3, 0.7, n),
            "visibility": rng.uniform(0.3, 1.2, n),
            "cannibalization_rate": rng.uniform(0.1, 0.4, n),
            "cannibalization_cap": rng.uniform(0.2, 0.4, n),
        }
    )


def _seasonality(cats: pd.DataFrame) -> np.ndarray:
    """Multiplier [category, iso week 0..53] (index 0 unused), mean 1 over weeks 1-52."""
    weeks = np.arange(54)
    amp = cats["season_amplitude"].to_numpy()[:, None]
    peak = cats["season_peak_week"].to_numpy()[:, None]
    raw = np.exp(amp * np.cos(2 * np.pi * (weeks[None, :] - peak) / 52.0))
    return raw / raw[:, 1:53].mean(axis=1, keepdims=True)


def _holiday_lifts(rng: np.random.Generator, cats: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for holiday, base in HOLIDAY_BASE_LIFT.items():
        factors = rng.uniform(0.3, 1.5, len(cats))
        rows += [(c, holiday, 1.0 + base * f) for c, f in zip(cats["category"], factors)]
    return pd.DataFrame(rows, columns=["category", "holiday_name", "lift"])


def _products(rng: np.random.Generator, preset: Preset, cats: pd.DataFrame) -> pd.DataFrame:
    n = preset.products
    cat_idx = rng.permutation(np.arange(n) % preset.categories)
    raw_price = cats["price_scale"].to_numpy()[cat_idx] * np.exp(rng.normal(0.0, 0.5, n))
    list_price = np.maximum(np.floor(raw_price), 1.0) + 0.99
    margin = rng.uniform(0.2, 0.6, n)
    unit_cost = np.maximum(np.round(list_price * (1.0 - margin), 2), 0.01)
    elasticity = np.clip(
        cats["elasticity"].to_numpy()[cat_idx] + rng.normal(0.0, 0.3, n), 1.5, 5.5
    )
    base_units = np.exp(rng.normal(np.log(preset.base_units_median), 0.8, n))
    dip_share = rng.uniform(0.05, 0.35, n)
    short = rng.random(n) < SHORT_STOCK_SHARE
    stock_cover = np.where(short, rng.uniform(0.7, 1.2, n), rng.uniform(1.6, 4.5, n))
    brand = BRANDS[rng.integers(0, len(BRANDS), n)].astype(object)
    brand[rng.random(n) < 0.05] = ""
    adjective = ADJECTIVES[rng.integers(0, len(ADJECTIVES), n)]
    ids = np.arange(n) + 10001
    category = np.array(cats["category"])[cat_idx]
    names = [f"{b or 'Generic'} {c} {a} {i}" for b, c, a, i in zip(brand, category, adjective, ids)]
    return pd.DataFrame(
        {
            "product_id": ids,
            "product_name": names,
            "category": category,
            "cat_idx": cat_idx,
            "brand": brand,
            "list_price": list_price,
            "unit_cost": unit_cost,
            "elasticity": elasticity,
            "base_weekly_units": base_units,
            "dip_share": dip_share,
            "stock_cover": stock_cover,
        }
    )


#: The market's hidden customer segments: (name, share, discount sensitivity beta(a, b),
#: log-activity mean and sd, order-channel Dirichlet over web/app/store, taste concentration
#: around the segment's own category profile). They shape who buys what, never how much of a
#: product sells (product demand is drawn per product and week), so they are the truth that
#: segmentation is scored against.
SEGMENTS = (
    ("deal_hunters", 0.25, (6.0, 2.5), (-0.2, 0.5), (1.0, 6.0, 1.0), 8.0),
    ("premium_loyal", 0.20, (1.2, 9.0), (0.7, 0.4), (7.0, 1.5, 1.0), 8.0),
    ("store_regulars", 0.25, (2.0, 5.0), (0.3, 0.5), (1.0, 1.0, 8.0), 8.0),
    ("occasional", 0.30, (2.0, 4.0), (-1.3, 0.4), (3.0, 2.0, 2.0), 3.0),
)
#: Consent log: the preferred channel is consented at signup; each other channel with this
#: chance (a customer without a preferred channel consents to none); a consent is withdrawn
#: before the end of history with the second.
EXTRA_CONSENT_PROB = 0.3
WITHDRAW_PROB = 0.05


def _customers(
    rng: np.random.Generator, preset: Preset, history_start: dt.date, history_end: dt.date,
    n_categories: int, seed: int = 0,
) -> pd.DataFrame:
    n = preset.customers
    history_days = (history_end - history_start).days + 1
    before = rng.random(n) < 0.6
    offset = np.where(before, -rng.integers(1, 3 * 365, n), rng.integers(0, history_days, n))
    signup = np.sort(np.datetime64(history_start) + offset.astype("timedelta64[D]"))
    # drawn from the main stream and left unused (the segments below replace them): the draws
    # keep the product market of a seed the same as before segments existed
    rng.dirichlet(np.full(n_categories, 0.4), n)
    customers = pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1),
            "signup_date": signup,
            "region": REGIONS[rng.choice(len(REGIONS), n, p=[0.22, 0.22, 0.2, 0.2, 0.16])],
            "age_band": np.where(
                rng.random(n) < 0.06,
                "",
                AGE_BANDS[rng.choice(len(AGE_BANDS), n, p=[0.12, 0.27, 0.24, 0.18, 0.12, 0.07])],
            ),
            "preferred_channel": CONTACT_CHANNELS[rng.choice(4, n, p=[0.45, 0.3, 0.12, 0.13])],
        }
    )
    rng.beta(2.0, 5.0, n), rng.normal(0.0, 0.8, n), rng.dirichlet([3.0, 2.0, 1.0], n)
    return customers.assign(**_segment_traits(np.random.default_rng([seed, 0x5E6]), n,
                                              n_categories))


def _segment_traits(rng: np.random.Generator, n: int, n_categories: int) -> dict:
    """Each customer's hidden segment and the traits it draws: taste, discount sensitivity,
    activity and order-channel mix."""
    shares = np.array([s[1] for s in SEGMENTS])
    segment = rng.choice(len(SEGMENTS), n, p=shares / shares.sum())
    centers = rng.dirichlet(np.full(n_categories, 0.5), len(SEGMENTS))
    sensitivity, activity = np.empty(n), np.empty(n)
    taste, channel = np.empty((n, n_categories)), np.empty((n, 3))
    for k, (_, _, (a, b), (mu, sd), mix, concentration) in enumerate(SEGMENTS):
        members = np.flatnonzero(segment == k)
        m = len(members)
        sensitivity[members] = rng.beta(a, b, m)
        activity[members] = np.exp(rng.normal(mu, sd, m))
        alpha = concentration * n_categories * centers[k] + 0.05
        taste[members] = rng.dirichlet(alpha, m)
        channel[members] = rng.dirichlet(mix, m)
    return {
        "segment": np.array([s[0] for s in SEGMENTS])[segment],
        "discount_sensitivity": sensitivity,
        "activity": activity,
        "taste": list(taste),
        "channel_probs": list(channel),
    }


def _consents(rng: np.random.Generator, customers: pd.DataFrame,
              history_end: dt.date) -> pd.DataFrame:
    """The consent log (contact_consents): per customer and channel, when consent was given
    and, for a few, when it was withdrawn."""
    channels = CONTACT_CHANNELS[CONTACT_CHANNELS != ""]
    preferred = customers["preferred_channel"].to_numpy()
    has_any = preferred != ""
    given = (preferred[:, None] == channels[None, :]) | (
        has_any[:, None] & (rng.random((len(customers), len(channels))) < EXTRA_CONSENT_PROB))
    row, col = np.nonzero(given)
    signup = customers["signup_date"].to_numpy().astype("datetime64[s]")[row]
    at = signup + rng.integers(8 * 3600, 20 * 3600, len(row)).astype("timedelta64[s]")
    end = np.datetime64(history_end, "s") + np.timedelta64(86399, "s")
    span = np.maximum((end - at).astype(np.int64), 1)
    withdrawn = rng.random(len(row)) < WITHDRAW_PROB
    off = (rng.random(len(row)) * span).astype(np.int64).astype("timedelta64[s]")
    withdrawn_at = np.where(withdrawn, pd.Series(at + off).dt.strftime("%Y-%m-%d %H:%M:%S"), "")
    return pd.DataFrame({
        "customer_id": customers["customer_id"].to_numpy()[row],
        "channel": channels[col],
        "consented_at": pd.Series(at).dt.strftime("%Y-%m-%d %H:%M:%S"),
        "withdrawn_at": withdrawn_at,
    }, columns=TABLE_COLUMNS["contact_consents"])


def _promotion_starts(
    rng: np.random.Generator,
    free: np.ndarray,
    popularity: np.ndarray,
    overstocked: np.ndarray,
    event_soon: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Products starting a promotion this week: (starts, duration, depth, type index).

    Confounded like a real history: popular and overstocked products are promoted more often,
    more of them on display or in the mailer, and promotions are more frequent and deeper in
    and just before event weeks.
    """
    n = len(free)
    prob = PROMO_START_PROB * np.clip(popularity, 0.3, 3.0) ** 0.5
    prob = prob * np.where(overstocked, PROMO_OVERSTOCK_FACTOR, 1.0)
    prob = prob * (PROMO_HOLIDAY_FACTOR if event_soon else 1.0)
    start = free & (rng.random(n) < prob)
    duration = np.where(rng.random(n) < 0.7, 1, 2)
    depth_probs = PROMO_DEPTH_PROBS_EVENT if event_soon else PROMO_DEPTH_PROBS
    depth = PROMO_DEPTHS[rng.choice(len(PROMO_DEPTHS), n, p=depth_probs)]
    popular = popularity > 1.5
    kind = np.where(
        popular,
        rng.choice(len(PROMO_TYPES), n, p=PROMO_TYPE_PROBS_POPULAR),
        rng.choice(len(PROMO_TYPES), n, p=PROMO_TYPE_PROBS),
    )
    return start, duration, depth, kind


@dataclass
class History:
    """The simulated weeks: what sold, what the market expected, the stock, the promotions."""

    sold: np.ndarray  # [P, W] units sold (demand censored by stock)
    expected: np.ndarray  # [P, W] expected demand after dips and cannibalization
    stocked_out: np.ndarray  # [P, W] demand reached the stock on hand
    end_stock: np.ndarray  # [P, W] on hand at the end of the week
    depth: np.ndarray  # [P, W] discount depth of the week (0 = none)
    promo_idx: np.ndarray  # [P, W] index into `promotions` (-1 = none)
    promotions: pd.DataFrame  # product, week, duration, discount_depth, promo_type
    carryover: np.ndarray  # [P, len(DIP_WEIGHTS)] dip units still due after the history


def _simulate(
    rng: np.random.Generator,
    products: pd.DataFrame,
    cats: pd.DataFrame,
    season: np.ndarray,
    hol: np.ndarray,
    week_of_year: np.ndarray,
) -> History:
    """Week by week: promotions, own response, cannibalization, dips, demand, stock-outs."""
    n, n_weeks = len(products), hol.shape[1]
    cat_idx = products["cat_idx"].to_numpy()
    n_cats = len(cats)
    base = products["base_weekly_units"].to_numpy()
    elasticity = products["elasticity"].to_numpy()
    dip_share = products["dip_share"].to_numpy()
    cover = products["stock_cover"].to_numpy()
    saturation = cats["saturation"].to_numpy()[cat_idx]
    visibility = cats["visibility"].to_numpy()[cat_idx]
    rate = cats["cannibalization_rate"].to_numpy()
    cap = cats["cannibalization_cap"].to_numpy()
    popularity = base / np.median(base)
    bumps = np.array([TYPE_BUMP[t] for t in PROMO_TYPES])
    is_event = (hol != 1.0).any(axis=0)

    shape = (n, n_weeks)
    sold, expected = np.zeros(shape, dtype=np.int64), np.zeros(shape)
    stocked_out, end_stock = np.zeros(shape, dtype=bool), np.zeros(shape, dtype=np.int64)
    depth, promo_idx = np.zeros(shape), np.full(shape, -1)
    dip_due = np.zeros((n, n_weeks + len(DIP_WEIGHTS)))
    remaining = np.zeros(n, dtype=int)
    current_depth, current_kind, current_idx = np.zeros(n), np.zeros(n, dtype=int), np.full(n, -1)
    overstocked = np.zeros(n, dtype=bool)
    rows: list[pd.DataFrame] = []
    counter = 0
    for w in range(n_weeks):
        baseline = baseline_units(base, season[cat_idx, week_of_year[w]], hol[cat_idx, w])
        event_soon = bool(is_event[w] or (w + 1 < n_weeks and is_event[w + 1]))
        start, duration, new_depth, new_kind = _promotion_starts(
            rng, remaining == 0, popularity, overstocked, event_soon
        )
        started = np.flatnonzero(start)
        duration = np.minimum(duration, n_weeks - w)
        remaining[start] = duration[start]
        current_depth[start], current_kind[start] = new_depth[start], new_kind[start]
        current_idx[start] = counter + np.arange(len(started))
        counter += len(started)
        rows.append(pd.DataFrame({
            "product": started, "week": w, "duration": duration[started],
            "discount_depth": new_depth[started], "promo_type": PROMO_TYPES[new_kind[started]],
        }))
        active = remaining > 0
        d = np.where(active, current_depth, 0.0)
        depth[:, w], promo_idx[:, w] = d, np.where(active, current_idx, -1)
        remaining[active] -= 1

        multiplier = own_multiplier(elasticity, saturation, visibility, d,
                                    np.where(active, bumps[current_kind], 0.0))
        own = baseline * multiplier
        extra = own - baseline
        category_extra = np.bincount(cat_idx, extra, n_cats)
        category_baseline = np.bincount(cat_idx, baseline, n_cats)
        share = cannibalization_share(category_extra, category_baseline, rate, cap)
        mean = own - share[cat_idx] * baseline
        mean = np.maximum(DIP_FLOOR * mean, mean - dip_due[:, w])
        dip_due[:, w + 1 : w + 1 + len(DIP_WEIGHTS)] += (dip_share * extra)[:, None] * DIP_WEIGHTS
        demand = rng.poisson(mean * rng.gamma(NB_SHAPE, 1.0 / NB_SHAPE, n))
        # order-up-to stock; the retailer foresees a promotion's lift only in part
        foresight = np.where(active, rng.uniform(0.3, 1.1, n), 0.0)
        level = cover * rng.uniform(0.8, 1.25, n) * baseline * (1.0 + (multiplier - 1) * foresight)
        stock = np.maximum(np.ceil(level), 1).astype(np.int64)
        sold[:, w] = np.minimum(demand, stock)
        stocked_out[:, w] = demand >= stock
        end_stock[:, w] = stock - sold[:, w]
        expected[:, w] = mean
        overstocked = end_stock[:, w] > OVERSTOCK_WEEKS * baseline
    return History(
        sold=sold, expected=expected, stocked_out=stocked_out, end_stock=end_stock, depth=depth,
        promo_idx=promo_idx, promotions=pd.concat(rows, ignore_index=True),
        carryover=dip_due[:, n_weeks:],
    )


def _assign_customers(
    rng: np.random.Generator,
    customers: pd.DataFrame,
    line_cat: np.ndarray,
    line_promo: np.ndarray,
    line_day: np.ndarray,
    n_categories: int,
) -> np.ndarray:
    """Customer index per line (-1 for none eligible), drawn by taste, activity and promo pull."""
    signup = customers["signup_date"].to_numpy().astype("datetime64[D]")
    n_eligible = np.searchsorted(signup, line_day, side="right")
    taste = np.stack(customers["taste"].to_numpy())
    activity = customers["activity"].to_numpy()
    pull = 1.0 + 4.0 * customers["discount_sensitivity"].to_numpy()
    out = np.full(len(line_cat), -1)
    for c in range(n_categories):
        for promo in (False, True):
            idx = np.flatnonzero((line_cat == c) & (line_promo == promo) & (n_eligible > 0))
            if len(idx) == 0:
                continue
            cdf = np.cumsum(activity * taste[:, c] * (pull if promo else 1.0))
            totals = cdf[n_eligible[idx] - 1]
            drawn = np.searchsorted(cdf, rng.random(len(idx)) * totals, side="right")
            out[idx] = np.minimum(drawn, n_eligible[idx] - 1)
    return out


def _sell_lines(rng: np.random.Generator, units: np.ndarray, depth: np.ndarray,
                start: dt.date, cat_idx: np.ndarray, customers: pd.DataFrame,
                n_categories: int) -> pd.DataFrame:
    """Units [P, W] sold -> lines: consecutive units of a product-week share a line, each line a
    weekday and a customer (by taste, activity and promo pull; -1 for a guest)."""
    n_weeks = units.shape[1]
    flat_units = units.ravel()
    unit_pw = np.repeat(np.arange(flat_units.size), flat_units)
    new_line = rng.random(unit_pw.size) < NEW_LINE_PROB
    new_line[np.r_[0, np.flatnonzero(np.diff(unit_pw)) + 1]] = True
    line_of_unit = np.cumsum(new_line) - 1
    line_pw = unit_pw[new_line]
    line_qty = np.bincount(line_of_unit)
    line_product = line_pw // n_weeks
    line_week = line_pw % n_weeks
    n_lines = line_pw.size
    weekday = rng.choice(7, n_lines, p=WEEKDAY_WEIGHTS)
    line_day = np.datetime64(start) + (7 * line_week + weekday).astype("timedelta64[D]")
    line_promo = depth.ravel()[line_pw] > 0

    customer_idx = _assign_customers(
        rng, customers, cat_idx[line_product], line_promo, line_day, n_categories
    )
    guest = (rng.random(n_lines) < GUEST_SHARE) | (customer_idx < 0)
    customer_idx[guest] = -1
    return pd.DataFrame({"pw": line_pw, "product": line_product, "quantity": line_qty,
                         "customer": customer_idx,
                         "day": (line_day - np.datetime64(start)).astype(int)})


def _orders(rng: np.random.Generator, lines: pd.DataFrame, customers: pd.DataFrame,
            n_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Lines -> orders (one per customer and day, each guest line its own order) with a
    channel and a time, and returns (a later order with the negated quantity) within n_days.
    Order ids count from 1 in time order; lines get their order_id and line_number."""
    n_lines = len(lines)
    guest = lines["customer"].to_numpy() < 0
    day_number = lines["day"].to_numpy()
    order_key = np.where(
        guest, -(np.arange(n_lines) + 1),
        lines["customer"].to_numpy().astype(np.int64) * 10_000 + day_number
    )
    lines = pd.DataFrame(
        {
            "order_key": order_key,
            "product": lines["product"].to_numpy(),
            "pw": lines["pw"].to_numpy(),
            "quantity": lines["quantity"].to_numpy(),
            "customer": lines["customer"].to_numpy(),
            "day": day_number,
        }
    )
    lines = lines.groupby(["order_key", "product"], sort=True, as_index=False).agg(
        pw=("pw", "first"),
        quantity=("quantity", "sum"),
        customer=("customer", "first"),
        day=("day", "first"),
    )
    orders = lines.groupby("order_key", sort=True, as_index=False).agg(
        customer=("customer", "first"), day=("day", "first")
    )
    channel_cum = np.cumsum(np.stack(customers["channel_probs"].to_numpy()), axis=1)
    guest_cum = np.array([0.6, 0.8, 1.0])
    probs = np.where(
        (orders["customer"] >= 0).to_numpy()[:, None],
        channel_cum[orders["customer"].clip(lower=0)],
        guest_cum,
    )
    orders["channel"] = (rng.random(len(orders))[:, None] > probs).sum(axis=1).clip(max=2)
    orders["seconds"] = rng.integers(7 * 3600, 23 * 3600, len(orders))
    orders["is_return"] = False

    # --- returns: a later order with the negated quantity at the original prices -----------
    sold = lines.merge(orders[["order_key", "channel"]], on="order_key")
    picked = sold[rng.random(len(sold)) < RETURN_SHARE].copy()
    picked["day"] = picked["day"] + rng.integers(3, 31, len(picked))
    picked["quantity"] = -(1 + (rng.random(len(picked)) * picked["quantity"]).astype(int))
    picked = picked[picked["day"] < n_days]
    picked["order_key"] = -(10**12) - np.arange(len(picked))
    return_orders = picked[["order_key", "customer", "day", "channel"]].copy()
    return_orders["seconds"] = rng.integers(9 * 3600, 21 * 3600, len(return_orders))
    return_orders["is_return"] = True
    orders = pd.concat([orders, return_orders], ignore_index=True)
    lines = pd.concat([lines, picked[lines.columns]], ignore_index=True)

    orders["ts"] = orders["day"] * 86400 + orders["seconds"]
    orders = orders.sort_values(["ts", "order_key"], kind="stable").reset_index(drop=True)
    orders["order_id"] = np.arange(1, len(orders) + 1)
    lines = lines.merge(orders[["order_key", "order_id"]], on="order_key")
    lines = lines.sort_values(["order_id", "product"], kind="stable").reset_index(drop=True)
    lines["line_number"] = lines.groupby("order_id").cumcount() + 1
    return orders, lines


def generate(preset: str, out_dir: Path, truth_dir: Path, seed: int = 42,
             history_end: dt.date = HISTORY_END) -> dict[str, int]:
    """Write the landing files to out_dir and the ground truth to truth_dir; rows per table.

    history_end is the last day of history (a Sunday); the plan week is the Monday after.
    """
    if preset not in PRESETS:
        raise GenerateError(f"Unknown preset '{preset}'; choose one of {', '.join(PRESETS)}.")
    if history_end.weekday() != 6:
        raise GenerateError(f"history_end {history_end} is not a Sunday; the plan week starts "
                            "on the Monday after it.")
    started = time.perf_counter()
    cfg = PRESETS[preset]
    out_dir, truth_dir = Path(out_dir), Path(truth_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    history_start = history_end - dt.timedelta(days=7 * cfg.weeks - 1)
    week_starts = [history_start + dt.timedelta(days=7 * k) for k in range(cfg.weeks)]
    week_of_year = np.array([iso_week(w) for w in week_starts])

    cats = _categories(rng, cfg)
    categories = list(cats["category"])
    season = _seasonality(cats)
    lifts = _holiday_lifts(rng, cats)
    products = _products(rng, cfg, cats)
    customers = _customers(rng, cfg, history_start, history_end, cfg.categories, seed)

    # --- product-week demand, week by week (dips, cannibalization and stock carry over) -----
    hol = holiday_lift_matrix(lifts, categories, week_starts)  # [C, W]
    history = _simulate(rng, products, cats, season, hol, week_of_year)
    depth, promo_idx, promos, units = (
        history.depth, history.promo_idx, history.promotions, history.sold
    )
    cat_idx = products["cat_idx"].to_numpy()

    lines = _sell_lines(rng, units, depth, history_start, cat_idx, customers, cfg.categories)
    orders, lines = _orders(rng, lines, customers, 7 * cfg.weeks)

    # --- promotions table --------------------------------------------------------------------
    promos = promos.reset_index(drop=True)
    promos["start"] = np.datetime64(history_start) + (7 * promos["week"]).to_numpy().astype(
        "timedelta64[D]"
    )
    promos = promos.sort_values(["start", "product"], kind="stable")
    promo_id_of_index = np.empty(len(promos), dtype=np.int64)
    promo_id_of_index[promos.index.to_numpy()] = np.arange(1, len(promos) + 1)
    promos = promos.reset_index(drop=True)
    promos["promotion_id"] = np.arange(1, len(promos) + 1)

    # --- write the landing files ---------------------------------------------------------
    list_price = products["list_price"].to_numpy()
    order_table, line_table = _order_tables(orders, lines, products, customers, depth.ravel(),
                                            promo_idx.ravel(), promo_id_of_index,
                                            np.datetime64(history_start, "s"))
    tables: dict[str, pd.DataFrame] = {
        "customers": pd.DataFrame(
            {
                "customer_id": customers["customer_id"],
                "signup_date": customers["signup_date"].dt.strftime("%Y-%m-%d"),
                "region": customers["region"],
                "age_band": customers["age_band"],
                "preferred_channel": customers["preferred_channel"],
            }
        ),
        "products": pd.DataFrame(
            {
                "product_id": products["product_id"],
                "product_name": products["product_name"],
                "category": products["category"],
                "brand": products["brand"],
                "list_price": _money(list_price),
                "unit_cost": _money(products["unit_cost"]),
            }
        ),
        # one store per region, on the market's clock (UTC)
        "stores": pd.DataFrame(
            {
                "store_id": np.arange(1, len(REGIONS) + 1),
                "store_name": [f"{r.title()} store" for r in REGIONS],
                "region": REGIONS,
                "timezone": "UTC",
            }
        ),
        "orders": order_table,
        "order_lines": line_table,
        "promotions": pd.DataFrame(
            {
                "promotion_id": promos["promotion_id"],
                "product_id": products["product_id"].to_numpy()[promos["product"]],
                "start_date": promos["start"].dt.strftime("%Y-%m-%d"),
                "end_date": (
                    promos["start"] + pd.to_timedelta(7 * promos["duration"] - 1, unit="D")
                ).dt.strftime("%Y-%m-%d"),
                "discount_depth": np.char.mod("%.4f", promos["discount_depth"].to_numpy()),
                "promo_type": promos["promo_type"],
            }
        ),
        "inventory": _inventory(products, history.end_stock, week_starts),
        "contact_consents": _consents(np.random.default_rng([seed, 0xC0]), customers,
                                      history_end),
        "holidays": holiday_calendar(history_start.year, history_end.year + 1).assign(
            holiday_date=lambda d: pd.to_datetime(d["holiday_date"]).dt.strftime("%Y-%m-%d")
        ),
    }
    counts = {}
    for name, df in tables.items():
        assert list(df.columns) == TABLE_COLUMNS[name], name
        _write_csv(df, out_dir / f"{name}.csv")
        counts[name] = len(df)
    # a new market has none of the tables it does not write (the send log): a file left by a
    # simulated week of an earlier market in the same folder goes
    for name in TABLE_COLUMNS.keys() - tables.keys():
        for suffix in (".csv", ".parquet"):
            (out_dir / f"{name}{suffix}").unlink(missing_ok=True)

    _write_truth(
        truth_dir,
        preset,
        seed,
        cfg,
        history_start,
        cats,
        season,
        lifts,
        products,
        customers,
        counts,
        history,
        week_starts,
        history_end,
    )
    log.info(
        "Generated preset %s (seed %s) in %.1fs: %s",
        preset,
        seed,
        time.perf_counter() - started,
        ", ".join(f"{k}={v}" for k, v in counts.items()),
    )
    return counts


def _order_tables(orders: pd.DataFrame, lines: pd.DataFrame, products: pd.DataFrame,
                  customers: pd.DataFrame, line_depth_of_pw: np.ndarray,
                  promo_idx_of_pw: np.ndarray, promo_id_of_index: np.ndarray,
                  base_ts: np.datetime64) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Orders and lines in the raw contract (times from base_ts, prices from the line's
    product-week discount, promotion ids from its promotion index)."""
    list_price = products["list_price"].to_numpy()
    pw = lines["pw"].to_numpy()
    p = lines["product"].to_numpy()
    line_depth = line_depth_of_pw[pw]
    line_promo_idx = promo_idx_of_pw[pw]
    tables = {
        "orders": pd.DataFrame(
            {
                "order_id": orders["order_id"],
                "customer_id": np.where(
                    orders["customer"] >= 0, (orders["customer"] + 1).astype(str), ""
                ),
                "ordered_at": pd.Series(
                    base_ts + orders["ts"].to_numpy().astype("timedelta64[s]")
                ).dt.strftime("%Y-%m-%d %H:%M:%S"),
                "channel": ORDER_CHANNELS[orders["channel"].to_numpy()],
                "store_id": _store_of_orders(orders, customers),
            }
        ),
        "order_lines": pd.DataFrame(
            {
                "order_id": lines["order_id"],
                "line_number": lines["line_number"],
                "product_id": products["product_id"].to_numpy()[p],
                "quantity": lines["quantity"],
                "unit_list_price": _money(list_price[p]),
                "unit_paid_price": _money(list_price[p] * (1.0 - line_depth)),
                "promotion_id": np.where(
                    line_promo_idx >= 0,
                    promo_id_of_index[np.maximum(line_promo_idx, 0)].astype(str),
                    "",
                ),
            }
        ),
    }
    return tables["orders"], tables["order_lines"]


def _store_of_orders(orders: pd.DataFrame, customers: pd.DataFrame) -> np.ndarray:
    """Store orders are placed in the store of the customer's region (a guest's: by order
    id); web and app orders have no store."""
    region_index = {r: i for i, r in enumerate(REGIONS)}
    customer_store = customers["region"].map(region_index).to_numpy() + 1
    customer = orders["customer"].to_numpy()
    store = np.where(customer >= 0, customer_store[np.maximum(customer, 0)],
                     orders["order_id"].to_numpy() % len(REGIONS) + 1)
    is_store = ORDER_CHANNELS[orders["channel"].to_numpy()] == "store"
    return np.where(is_store, store.astype(str), "")


def _inventory(
    products: pd.DataFrame, end_stock: np.ndarray, week_starts: list[dt.date]
) -> pd.DataFrame:
    """On hand at the end of every week (its Sunday); 0 means the week sold out."""
    sundays = [(w + dt.timedelta(days=6)).isoformat() for w in week_starts]
    return pd.DataFrame(
        {
            "product_id": np.repeat(products["product_id"].to_numpy(), len(week_starts)),
            "snapshot_date": np.tile(sundays, len(products)),
            "on_hand_units": end_stock.ravel(),
        }
    )


def _write_truth(
    truth_dir: Path,
    preset: str,
    seed: int,
    cfg: Preset,
    history_start: dt.date,
    cats: pd.DataFrame,
    season: np.ndarray,
    lifts: pd.DataFrame,
    products: pd.DataFrame,
    customers: pd.DataFrame,
    counts: dict[str, int],
    history: History,
    week_starts: list[dt.date],
    history_end: dt.date,
) -> None:
    categories = list(cats["category"])
    _write_csv(
        products[
            ["product_id", "category", "base_weekly_units", "elasticity", "dip_share",
             "stock_cover", "list_price", "unit_cost"]
        ].round(6),
        truth_dir / "products_truth.csv",
    )
    ids = products["product_id"].to_numpy()
    _write_csv(
        pd.DataFrame({
            "product_id": np.repeat(ids, len(week_starts)),
            "week_start": np.tile([w.isoformat() for w in week_starts], len(ids)),
            "expected_units": history.expected.ravel().round(6),
            "sold_units": history.sold.ravel(),
            "stocked_out": history.stocked_out.ravel(),
        }),
        truth_dir / "history_truth.csv",
    )
    after = [(history_end + dt.timedelta(days=1 + 7 * k)).isoformat()
             for k in range(history.carryover.shape[1])]
    _write_csv(
        pd.DataFrame({
            "product_id": np.repeat(ids, len(after)),
            "week_start": np.tile(after, len(ids)),
            "dip_units": history.carryover.ravel().round(6),
        }),
        truth_dir / "carryover_truth.csv",
    )
    woy = np.arange(1, 54)
    _write_csv(
        pd.DataFrame(
            {
                "category": np.repeat(categories, len(woy)),
                "week_of_year": np.tile(woy, len(categories)),
                "multiplier": season[:, 1:].ravel().round(6),
            }
        ),
        truth_dir / "seasonality_truth.csv",
    )
    _write_csv(lifts.round(6), truth_dir / "holiday_lifts_truth.csv")
    taste = np.stack(customers["taste"].to_numpy())
    cust = pd.DataFrame(
        {
            "customer_id": customers["customer_id"],
            "discount_sensitivity": customers["discount_sensitivity"],
            "activity": customers["activity"],
            "favourite_category": np.array(categories)[taste.argmax(axis=1)],
            "segment": customers["segment"],
        }
    )
    for c, name in enumerate(categories):
        cust[f"taste_{name}"] = taste[:, c]
    channel_probs = np.stack(customers["channel_probs"].to_numpy())
    for k, name in enumerate(("web", "app", "store")):
        cust[f"channel_{name}"] = channel_probs[:, k]
    _write_csv(cust.round(6), truth_dir / "customers_truth.csv")
    _write_csv(cats.round(6), truth_dir / "categories_truth.csv")
    params = {
        "preset": preset,
        "seed": seed,
        "sizes": cfg.__dict__,
        "history_start": history_start.isoformat(),
        "history_end": history_end.isoformat(),
        "plan_week": (history_end + dt.timedelta(days=1)).isoformat(),
        "demand": "see docs/market.md: baseline * own_multiplier(depth, type) - cannibalization "
        "share * baseline, then the dip of earlier promotions, gamma-Poisson noise, censored "
        "by the stock on hand",
        "type_bump": TYPE_BUMP,
        "dip_weights": DIP_WEIGHTS.tolist(),
        "dip_floor": DIP_FLOOR,
        "noise": {"kind": "gamma-poisson", "shape": NB_SHAPE},
        "promotions": {
            "start_prob": PROMO_START_PROB,
            "holiday_factor": PROMO_HOLIDAY_FACTOR,
            "overstock_factor": PROMO_OVERSTOCK_FACTOR,
            "overstock_weeks": OVERSTOCK_WEEKS,
            "depths": PROMO_DEPTHS.tolist(),
            "depth_probs": PROMO_DEPTH_PROBS,
            "depth_probs_event": PROMO_DEPTH_PROBS_EVENT,
            "types": PROMO_TYPES.tolist(),
            "type_probs": PROMO_TYPE_PROBS,
            "type_probs_popular": PROMO_TYPE_PROBS_POPULAR,
        },
        "stock": {"short_share": SHORT_STOCK_SHARE,
                  "stocked_out_share": round(float(history.stocked_out.mean()), 4)},
        "holiday_base_lift": HOLIDAY_BASE_LIFT,
        "guest_share": GUEST_SHARE,
        "return_share": RETURN_SHARE,
        "customer_promo_pull": "1 + 4 * discount_sensitivity",
        "segments": [{"name": s[0], "share": s[1], "discount_sensitivity_beta": s[2],
                      "log_activity": s[3], "channel_mix_web_app_store": s[4],
                      "taste_concentration": s[5]} for s in SEGMENTS],
        "consents": {"extra_channel_prob": EXTRA_CONSENT_PROB, "withdraw_prob": WITHDRAW_PROB},
        "rows": counts,
    }
    (truth_dir / "generator.json").write_text(json.dumps(params, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    from promoflow.logs import setup_logging

    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", required=True, help=f"one of: {', '.join(PRESETS)}")
    parser.add_argument("--out", required=True, type=Path, help="landing folder to write")
    parser.add_argument("--truth", required=True, type=Path, help="ground-truth folder to write")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--history-end", type=dt.date.fromisoformat, default=HISTORY_END,
                        help=f"last day of history, a Sunday (default {HISTORY_END})")
    args = parser.parse_args(argv)
    try:
        generate(args.preset, args.out, args.truth, args.seed, args.history_end)
    except GenerateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
