"""Target customers per promoted product, keeping a deterministic holdout.

The candidates of a product are the recommender's (its top customers for the product, several
per place in the audience). Without an uplift estimate the audience is the top `audience_size`
of them by the recommender's rank (the likeliest buyers); with one (planning/uplift.py) it is
the top by estimated uplift, the rank breaking ties, so a contact goes where it changes most.

Only customers who consented to be contacted are targeted (docs/raw_contract.md,
contact_consents): a customer may be contacted on a channel when a consent period of that
channel holds at the start of the plan week (its Monday, 00:00 UTC); a channel the consent log
says nothing about counts as consented when it is the customer's preferred channel. Each target
is contacted on its preferred channel when that one is consented, else on the first consented
channel of CHANNEL_ORDER. A customer without any consented channel is no candidate at all: it
is left out before the top customers of a product are taken, so it is neither treated nor held
out, and the audience is filled with consenting customers.

The holdout is drawn per customer and plan week (a hash of seed, plan week and customer id), so a
customer is either treated or held out for the whole plan: the groups never overlap, and the
same inputs always give the same assignment.
"""

from __future__ import annotations

import hashlib
from datetime import date

import numpy as np
import pandas as pd

#: The channel a target is contacted on when its preferred one is not consented: the first
#: consented channel in this order.
CHANNEL_ORDER = ("email", "app_push", "sms")
#: The consent periods targeting reads (marts.contact_consents): consented_from (a null is
#: "always") up to withdrawn_at (null: still held).
CONSENT_COLUMNS = ["customer_id", "channel", "consented_from", "withdrawn_at"]


def holdout_draw(customer_ids: pd.Series, plan_week: date, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per customer, fixed by seed and plan week."""
    def draw(customer_id: int) -> float:
        digest = hashlib.sha256(f"{seed}:{plan_week.isoformat()}:{int(customer_id)}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    unique = pd.unique(customer_ids)
    table = {cid: draw(cid) for cid in unique}
    return customer_ids.map(table).to_numpy(dtype=float)


def consented_channel(customers: pd.DataFrame, consents: pd.DataFrame | None,
                      plan_week: date) -> pd.Series:
    """The channel each customer may be contacted on in the plan week, indexed by customer_id;
    customers without any consented channel are left out.

    `customers`: customer_id, preferred_channel (empty: none). `consents`: every consent period
    of the log (CONSENT_COLUMNS; marts.contact_consents, or None for no log at all), not only
    the current ones: a customer and channel with a period at any time follow their periods,
    one without any counts as consented when it is the customer's preferred channel.
    """
    at = pd.Timestamp(plan_week)  # the plan week's Monday, 00:00 UTC (naive, as in the marts)
    preferred = customers.set_index("customer_id")["preferred_channel"]
    if consents is None:
        consents = pd.DataFrame({"customer_id": pd.Series(dtype="int64"),
                                 "channel": pd.Series(dtype=object),
                                 "consented_from": pd.Series(dtype="datetime64[ns]"),
                                 "withdrawn_at": pd.Series(dtype="datetime64[ns]")})
    start = pd.to_datetime(consents["consented_from"])
    end = pd.to_datetime(consents["withdrawn_at"])
    holds = (start.isna() | (start <= at)) & (end.isna() | (end > at))
    held = consents.loc[holds, ["customer_id", "channel"]]
    # a preferred channel without any period in the log counts as consented
    logged = pd.MultiIndex.from_frame(consents[["customer_id", "channel"]].astype(object))
    implied = preferred[preferred.isin(CHANNEL_ORDER)].rename("channel").reset_index()
    implied = implied[~pd.MultiIndex.from_frame(implied.astype(object)).isin(logged)]
    allowed = pd.concat([held, implied]).drop_duplicates()
    allowed = allowed[allowed["channel"].isin(CHANNEL_ORDER)]
    # the preferred channel first, then the others in CHANNEL_ORDER
    order = allowed["channel"].map(CHANNEL_ORDER.index)
    order = order.where(allowed["customer_id"].map(preferred) != allowed["channel"], -1)
    first = allowed.assign(order=order).sort_values(["customer_id", "order"])
    return first.drop_duplicates("customer_id").set_index("customer_id")["channel"]


def target_customers(plan_lines: pd.DataFrame, recommendations: pd.DataFrame,
                     customers: pd.DataFrame, plan_week: date, audience_size: int,
                     holdout_fraction: float, seed: int,
                     consents: pd.DataFrame | None = None,
                     uplift: pd.Series | None = None) -> pd.DataFrame:
    """Top `audience_size` consenting customers of each promoted product, tagged treatment or
    holdout, with the channel to contact them on (`consents`: see consented_channel) and the
    uplift score they were chosen by (`uplift`: per customer_id; a candidate without one ranks
    after those with one; None: chosen by the recommender's rank, uplift left empty)."""
    promoted = plan_lines.loc[plan_lines["discount_depth"] > 0, ["product_id"]]
    channels = consented_channel(customers, consents, plan_week)
    recs = recommendations.merge(promoted, on="product_id", how="inner")
    recs = recs[recs["customer_id"].isin(channels.index)]  # no consent: no candidate
    if uplift is None:
        recs = recs.assign(uplift=np.nan).sort_values(["product_id", "rank", "customer_id"])
    else:
        recs = recs.assign(uplift=recs["customer_id"].map(uplift).astype(float))
        recs["order"] = -recs["uplift"].fillna(-np.inf)
        recs = recs.sort_values(["product_id", "order", "rank", "customer_id"])
    recs = recs.groupby("product_id", sort=False).head(audience_size).copy()
    recs["holdout_draw"] = holdout_draw(recs["customer_id"], plan_week, seed)
    recs["assignment"] = np.where(recs["holdout_draw"] < holdout_fraction, "holdout", "treatment")
    recs["channel"] = recs["customer_id"].map(channels)
    columns = ["product_id", "customer_id", "score", "rank", "assignment", "channel", "uplift"]
    return recs[columns].reset_index(drop=True)
