"""The units a promoted product's campaign adds, from the treatment effects measured before.

A promoted product is targeted (planning/targeting.py): its treatment customers are contacted,
its holdout is not. What a contact adds is measured after each plan week (promo_measure,
published.experiment_results): the treatment-minus-holdout difference in the share of targets
who bought the product that week. The next plan counts it, so that a promotion's value includes
what its campaign sells, and the forecast of what the campaign adds is the measured one:

    contact_units(p, d > 0) = sum of uplift(c) over treated(p)       (0 at d = 0)
                            = effect x |treated(p)|   without a learned uplift model

- effect: the inverse-variance weighted mean of the overall purchase-rate differences of the
  dataset's measured plan weeks before this one (each one's standard error from its 95%
  interval), at least 0; none measured yet: 0, a campaign is not assumed to sell anything
  until a holdout has shown it. A buyer is counted as one unit (a contacted customer buys the
  targeted product or not).
- uplift(c): the customer's estimated extra purchase probability from a contact
  (planning/uplift.py), learned on the same measured weeks; averaged over their targets it is
  the measured effect, but the targeting picks the customers it rates highest.
- treated(p): the customers the targeting would put in p's treatment group if p were promoted
  (the same rule, consent filter and holdout draw as the plan's targets: a customer without
  consent is never counted).

The units are added to every quantile of the promoted levels before the planner caps them by
stock, so the plan's spend, stock and profit count them.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from planning.targeting import target_customers
from promoflow.settings import Settings
from promoflow.warehouse import connect

log = logging.getLogger(__name__)

Z95 = NormalDist().inv_cdf(0.975)


@dataclass(frozen=True)
class ContactEffect:
    """The pooled measured effect of a contact on the purchase rate of a target."""

    effect: float  # extra buyers per treated target (>= 0)
    std_error: float  # of the pooled difference (nan when nothing was measured)
    weeks: int  # measured plan weeks pooled


NO_EFFECT = ContactEffect(0.0, float("nan"), 0)


def pool_effects(measured: pd.DataFrame) -> ContactEffect:
    """Inverse-variance weighted mean of the weekly differences (columns difference, ci_low,
    ci_high); weeks whose interval has no width are left out."""
    se = (measured["ci_high"].astype(float) - measured["ci_low"].astype(float)) / (2 * Z95)
    usable = measured[se > 0]
    se = se[se > 0]
    if usable.empty:
        return NO_EFFECT
    weights = 1.0 / se**2
    pooled = float((usable["difference"].astype(float) * weights).sum() / weights.sum())
    return ContactEffect(max(pooled, 0.0), float(np.sqrt(1.0 / weights.sum())), len(usable))


def measured_contact_effect(dataset: str, plan_week: dt.date,
                            settings: Settings | None = None) -> ContactEffect:
    """The pooled effect of the dataset's plan weeks measured before `plan_week` (NO_EFFECT
    when none is, or nothing was ever measured in this warehouse)."""
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select to_regclass('published.experiment_results')")
        if cur.fetchone()[0] is None:
            return NO_EFFECT
        cur.execute("select plan_week, difference, ci_low, ci_high "
                    "from published.experiment_results where dataset = %s and plan_week < %s "
                    "and scope = 'overall' and metric = 'purchase_rate' order by plan_week",
                    (dataset, plan_week))
        measured = pd.DataFrame(cur.fetchall(),
                                columns=["plan_week", "difference", "ci_low", "ci_high"])
    return NO_EFFECT if measured.empty else pool_effects(measured)


def treated_targets(products: pd.Series, recommendations: pd.DataFrame,
                    customers: pd.DataFrame, plan_week: dt.date, audience_size: int,
                    holdout_fraction: float, seed: int, consents: pd.DataFrame | None = None,
                    uplift: pd.Series | None = None) -> pd.DataFrame:
    """The treatment targets (product_id, customer_id) every product would have if it were
    promoted (`consents`, `uplift`: as target_customers takes them)."""
    every = pd.DataFrame({"product_id": products.unique(), "discount_depth": 1.0})
    targets = target_customers(every, recommendations, customers, plan_week, audience_size,
                               holdout_fraction, seed, consents, uplift)
    return targets.loc[targets["assignment"] == "treatment", ["product_id", "customer_id"]]


def treated_counts(products: pd.Series, recommendations: pd.DataFrame, customers: pd.DataFrame,
                   plan_week: dt.date, audience_size: int, holdout_fraction: float,
                   seed: int, consents: pd.DataFrame | None = None) -> pd.Series:
    """Per product: the treatment customers the targeting would contact if it were promoted
    (`consents`: the consent periods, as target_customers takes them)."""
    treated = treated_targets(products, recommendations, customers, plan_week, audience_size,
                              holdout_fraction, seed, consents).groupby("product_id").size()
    every = pd.Series(products.unique())
    return every.map(treated).fillna(0).astype(float).set_axis(every)


def expected_buyers(treated: pd.DataFrame, products: pd.Series, effect: ContactEffect,
                    expected: pd.Series | None = None) -> pd.Series:
    """Per product: the extra buyers its treated targets are expected to make: the sum of their
    expected uplift (`expected`, per customer_id) when one was learned, at least 0; else the
    pooled measured effect x their number."""
    every = pd.Series(products.unique())
    if expected is None:
        per_product = treated.groupby("product_id").size().astype(float) * effect.effect
    else:
        gain = treated["customer_id"].map(expected).fillna(0.0)
        per_product = gain.groupby(treated["product_id"]).sum().clip(lower=0.0)
    return every.map(per_product).fillna(0.0).astype(float).set_axis(every)


def with_contact_units(forecasts: pd.DataFrame, buyers: pd.Series) -> pd.DataFrame:
    """`forecasts` with `contact_units` (the product's expected extra buyers at the promoted
    levels, 0 at 0; `buyers` per product_id) added to units_p10, units_p50 and units_p90."""
    promoted = forecasts["discount_depth"].astype(float) > 0
    units = forecasts["product_id"].map(buyers).fillna(0.0).to_numpy(float)
    contact = np.where(promoted, units, 0.0)
    out = forecasts.assign(contact_units=contact)
    for column in ("units_p10", "units_p50", "units_p90"):
        out[column] = out[column].astype(float) + contact
    return out
