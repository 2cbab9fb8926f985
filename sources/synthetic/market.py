"""The demand model of the synthetic market, shared by the generator and the truth oracle.

docs/market.md gives the functional forms and their sources. In short, a product's baseline is

    base_weekly_units * seasonality[category, iso_week] * holiday_lift[category, week]

where the holiday lift multiplies the lifts of every holiday whose date falls in the Monday-start
week. A promotion at depth d of type t multiplies it by `own_multiplier` (a saturating price
response times a visibility bump); the extra units it makes take demand from the product's next
weeks (`DIP_WEIGHTS`, the post-promotion dip) and from its category (`cannibalization_share`).
Realized units add gamma-Poisson noise around the mean and are censored by the stock on hand.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Last day of history (a Sunday); the plan week starts the next Monday.
HISTORY_END = dt.date(2026, 11, 15)

CATEGORY_NAMES = [
    "electronics",
    "home",
    "beauty",
    "toys",
    "grocery",
    "apparel",
    "sports",
    "books",
    "pets",
    "garden",
    "kitchen",
    "baby",
    "health",
    "automotive",
    "office",
    "jewelry",
    "shoes",
    "music",
    "outdoor",
    "furniture",
]

#: Holiday name -> base lift (the category factor scales it).
HOLIDAY_BASE_LIFT = {"Black Friday": 0.9, "Christmas": 0.6, "Double 11": 0.8, "618": 0.5}


@dataclass(frozen=True)
class Preset:
    """Size of a synthetic market."""

    customers: int
    products: int
    categories: int
    weeks: int
    base_units_median: float


PRESETS: dict[str, Preset] = {
    "tiny": Preset(customers=300, products=40, categories=4, weeks=60, base_units_median=4.0),
    "demo": Preset(customers=5000, products=500, categories=20, weeks=104, base_units_median=4.0),
    # benchmark sizes (`make bench`): about 1M and 10M order lines
    "large": Preset(customers=20000, products=2000, categories=40, weeks=104,
                    base_units_median=3.5),
    "xl": Preset(customers=200000, products=50000, categories=200, weeks=104,
                 base_units_median=1.4),
}


def black_friday(year: int) -> dt.date:
    """The day after the fourth Thursday of November."""
    first = dt.date(year, 11, 1)
    first_thursday = first + dt.timedelta(days=(3 - first.weekday()) % 7)
    return first_thursday + dt.timedelta(days=22)


def holiday_calendar(first_year: int, last_year: int) -> pd.DataFrame:
    """Holiday dates (holiday_date, holiday_name) of the given years, sorted by date."""
    rows = []
    for year in range(first_year, last_year + 1):
        rows += [
            (dt.date(year, 6, 18), "618"),
            (dt.date(year, 11, 11), "Double 11"),
            (black_friday(year), "Black Friday"),
            (dt.date(year, 12, 25), "Christmas"),
        ]
    return pd.DataFrame(sorted(rows), columns=["holiday_date", "holiday_name"])


def week_monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def holiday_names_by_week(week_starts: list[dt.date]) -> list[list[str]]:
    """For each Monday, the names of the holidays falling in that week."""
    years = {w.year for w in week_starts} | {(w + dt.timedelta(days=6)).year for w in week_starts}
    calendar = holiday_calendar(min(years), max(years))
    by_week: dict[dt.date, list[str]] = {}
    for day, name in calendar.itertuples(index=False):
        by_week.setdefault(week_monday(day), []).append(name)
    return [by_week.get(w, []) for w in week_starts]


def holiday_lift_matrix(
    lifts: pd.DataFrame, categories: list[str], week_starts: list[dt.date]
) -> np.ndarray:
    """Multiplier [category, week] from the truth table (category, holiday_name, lift)."""
    lookup = {
        (c, h): v for c, h, v in lifts[["category", "holiday_name", "lift"]].itertuples(index=False)
    }
    out = np.ones((len(categories), len(week_starts)))
    for w, names in enumerate(holiday_names_by_week(week_starts)):
        for name in names:
            out[:, w] *= [lookup[(c, name)] for c in categories]
    return out


def iso_week(day: dt.date) -> int:
    return day.isocalendar()[1]


#: Promotion type -> visibility bump on top of the price response (a plain price cut has none).
TYPE_BUMP = {"price_cut": 0.0, "display": 0.35, "mailer": 0.5, "coupon": 0.1}
#: Share of a promotion's dip (stockpiled units) falling in each of the next three weeks.
DIP_WEIGHTS = np.array([0.6, 0.3, 0.1])
#: A week never loses more than this share of its demand to earlier promotions (dip floor).
DIP_FLOOR = 0.2


def baseline_units(
    base_units: np.ndarray, seasonality: np.ndarray, holiday_lift: np.ndarray
) -> np.ndarray:
    """Expected units without any promotion; every argument broadcasts."""
    return base_units * seasonality * holiday_lift


def own_multiplier(
    elasticity: np.ndarray,
    saturation: np.ndarray,
    visibility: np.ndarray,
    discount_depth: np.ndarray | float,
    type_bump: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Demand multiplier of a product's own promotion (1 at depth 0); every argument broadcasts.

    exp(elasticity * s * tanh(x / s)) * (1 + type_bump + visibility * d) for d > 0, where
    x = -log(1 - d) is the log price cut and s the saturation scale: small cuts act at the full
    elasticity, deep ones flatten out (the response saturates).
    """
    depth = np.clip(np.asarray(discount_depth, dtype=float), 0.0, 0.95)
    x = -np.log1p(-depth)
    price = np.exp(elasticity * saturation * np.tanh(x / saturation))
    bump = np.where(depth > 0, 1.0 + type_bump + visibility * depth, 1.0)
    return price * bump


def cannibalization_share(
    extra_units: np.ndarray, category_baseline: np.ndarray, rate: np.ndarray, cap: np.ndarray
) -> np.ndarray:
    """Share of every product's baseline its category loses to the category's promotions.

    min(cap, rate * extra_units / category_baseline): a share `rate` of the promoted products'
    extra units is switched from the category's demand, pro rata, at most `cap` of it.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(category_baseline > 0, rate * extra_units / category_baseline, 0.0)
    return np.minimum(cap, share)


def expected_units(
    base_units: np.ndarray,
    elasticity: np.ndarray,
    seasonality: np.ndarray,
    holiday_lift: np.ndarray,
    discount_depth: np.ndarray | float,
    saturation: np.ndarray | float = 1.0,
    visibility: np.ndarray | float = 0.0,
    type_bump: np.ndarray | float = 0.0,
) -> np.ndarray:
    """A product's own expected units at a discount (no dip, no cannibalization); broadcasts."""
    return baseline_units(base_units, seasonality, holiday_lift) * own_multiplier(
        elasticity, saturation, visibility, discount_depth, type_bump
    )
