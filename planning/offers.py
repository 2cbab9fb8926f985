"""Personalized segment offers: a coupon deeper than the public price for one segment's targets.

A promoted product p at public depth d is sent to its treated targets (planning/targeting.py).
An offer (p, d, s, e) gives the treated targets of p in segment s a personal price at depth
e > d instead (a coupon on the contact). The optimizer takes an offer where its expected
incremental profit over the plain contact is positive and worth its spend, within the same
budget (at the same confidence) and margin floor as the public lines (planning/optimize.py).

For a recipient c (a treated target of p in segment s), from what the run knows before the week:

    P_d(c) = min(1, b(c) + u(c))                                the chance c buys p at depth d
    b(c)   = 1 - exp(-score(c, p) x orders per week(c) x units per order(c))    buys anyway
    u(c)   = the extra purchase probability of a contact: the learned uplift (planning/uplift.py)
             or the pooled measured contact effect
    P_e(c) = min(1, P_d(c) x (L_p(e) / L_p(d)) ^ rho_s)         the chance with the coupon

L_p(x) is the forecaster's lift of p at depth x (its P50 units over those at no promotion) and
rho_s the segment's deal proneness: its promotion share of units over the customers' average
(segment_profiles.promo_share, clipped to [RHO_MIN, RHO_MAX]); a segment that buys on
promotion twice as often as the average responds to a deeper price as the lift squared.
Customers in segment 0 (no purchases in the profile window) get no offer.

    gain(c)  = P_e (price_e - cost) - P_d (price_d - cost)          expected incremental profit
    spend(c) = P_e (list - price_e) - P_d (list - price_d)          extra discount given away
    sd(c)    = sqrt(P_e (1 - P_e)) (list - price_e)                 of the recipient's discount

An offer's gain, spend and sd are its recipients' sums (sd: root of the sum of squares). An
offer is a candidate only when its gain is positive, its promoted price meets the margin floor,
its line is not short of stock (the coupon's extra units would not be there) and it has at
least MIN_RECIPIENTS recipients. After the solve, each customer keeps at most
`max_offers_per_customer` offers (those with the highest gain for that customer); the dropped
recipients are taken out of their offers, which only lowers the spend.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from promoflow.run import RunParams

#: Bounds of a segment's deal proneness relative to the average customer.
RHO_MIN, RHO_MAX = 0.25, 4.0
#: An offer goes to at least this many recipients (fewer is not a segment campaign).
MIN_RECIPIENTS = 5
EPS = 1e-9
#: What identifies an offer: the line (product, public depth), the segment and the coupon depth.
KEY = ["product_id", "discount_depth", "segment_id", "offer_depth"]

#: One row per offer candidate (and per chosen offer, with the same columns).
OFFER_COLUMNS = ["product_id", "discount_depth", "segment_id", "offer_depth", "offer_price",
                 "recipients", "expected_redemptions", "expected_incremental_units",
                 "offer_spend", "offer_spend_sd", "offer_gain"]
#: One row per (offer candidate, recipient).
RECIPIENT_COLUMNS = ["product_id", "discount_depth", "segment_id", "offer_depth", "customer_id",
                     "p_before", "p_offer", "gain", "spend", "variance"]


def deal_proneness(profiles: pd.DataFrame) -> pd.Series:
    """rho per segment_id: the segment's promotion share over the customer-weighted mean."""
    profiles = profiles[profiles["segment_id"] != 0]
    share = profiles["promo_share"].astype(float).fillna(0.0)
    weights = profiles["customers"].astype(float)
    mean = float((share * weights).sum() / weights.sum()) if weights.sum() > 0 else 0.0
    if mean <= EPS:
        return pd.Series(1.0, index=profiles["segment_id"].to_numpy())
    return pd.Series((share / mean).clip(RHO_MIN, RHO_MAX).to_numpy(),
                     index=profiles["segment_id"].to_numpy())


def buy_anyway(recommendations: pd.DataFrame, customers: pd.DataFrame) -> pd.Series:
    """b per (product_id, customer_id) of the recommendations: the chance the customer buys the
    product in the week without a contact. `customers`: customer_id, frequency_orders_52w,
    basket_units (the segmentation's profile of each customer)."""
    profile = customers.set_index("customer_id")
    per_week = (profile["frequency_orders_52w"].astype(float).fillna(0.0) / 52.0
                * profile["basket_units"].astype(float).fillna(1.0).clip(lower=1.0))
    rate = recommendations["score"].astype(float).clip(lower=0.0) * \
        recommendations["customer_id"].map(per_week).fillna(0.0).to_numpy()
    index = pd.MultiIndex.from_frame(recommendations[["product_id", "customer_id"]])
    return pd.Series(1.0 - np.exp(-rate.to_numpy()), index=index)


def offer_candidates(candidates: pd.DataFrame, raw_forecasts: pd.DataFrame,
                     treated: pd.DataFrame, params: RunParams) -> tuple[pd.DataFrame,
                                                                        pd.DataFrame]:
    """(offers, recipients): every profitable offer candidate of the promoted levels in
    `candidates` (planning/optimize.py candidate_table) and its recipients.

    `raw_forecasts`: the forecaster's quantiles per product and depth (before contact units).
    `treated`: the treatment targets every product would have (product_id, customer_id,
    segment_id, rho, b, u).
    """
    empty = (pd.DataFrame(columns=OFFER_COLUMNS), pd.DataFrame(columns=RECIPIENT_COLUMNS))
    if treated.empty or params.max_offers_per_customer == 0:
        return empty
    treated = treated[treated["segment_id"].fillna(0).astype(int) != 0]
    levels = np.array(params.discount_levels)
    lift = raw_forecasts.assign(discount_depth=raw_forecasts["discount_depth"].round(6))
    base = lift[lift["discount_depth"] == 0].set_index("product_id")["units_p50"].astype(float)
    lift = lift.assign(lift=lift["units_p50"].astype(float)
                       / lift["product_id"].map(base).clip(lower=EPS))
    lift = lift.set_index(["product_id", "discount_depth"])["lift"].clip(lower=1.0)
    lines = candidates[(candidates["discount_depth"] > 0) & candidates["meets_margin_floor"]
                       & ~candidates["stock_capped"].astype(bool)]
    lines = lines[["product_id", "discount_depth", "list_price", "unit_cost", "promo_price"]]
    deeper = pd.DataFrame({"offer_depth": levels[levels > 0]})
    pairs = lines.merge(deeper, how="cross")
    pairs = pairs[pairs["offer_depth"] > pairs["discount_depth"] + EPS]
    pairs["offer_price"] = (pairs["list_price"] * (1 - pairs["offer_depth"])).round(2)
    margin = (pairs["offer_price"] - pairs["unit_cost"]) / pairs["offer_price"].where(
        pairs["offer_price"] > 0)
    pairs = pairs[margin >= params.margin_floor - EPS]
    keys = pd.MultiIndex.from_frame(pairs[["product_id", "discount_depth"]])
    deep_keys = pd.MultiIndex.from_frame(pairs[["product_id", "offer_depth"]])
    pairs["ratio"] = (lift.reindex(deep_keys).to_numpy() / lift.reindex(keys).to_numpy())
    pairs = pairs[np.isfinite(pairs["ratio"])]
    rows = pairs.merge(treated, on="product_id", how="inner")
    if rows.empty:
        return empty
    p_before = np.minimum(1.0, rows["b"] + rows["u"])
    p_offer = np.minimum(1.0, p_before * rows["ratio"].clip(lower=1.0) ** rows["rho"])
    cost = rows["unit_cost"]
    rows = rows.assign(
        p_before=p_before, p_offer=p_offer,
        gain=p_offer * (rows["offer_price"] - cost) - p_before * (rows["promo_price"] - cost),
        spend=p_offer * (rows["list_price"] - rows["offer_price"])
        - p_before * (rows["list_price"] - rows["promo_price"]),
        variance=p_offer * (1 - p_offer) * (rows["list_price"] - rows["offer_price"]) ** 2)
    offers = _totals(rows).merge(rows.groupby(KEY, as_index=False)["offer_price"].first(),
                                 on=KEY)
    offers = offers[(offers["offer_gain"] > EPS) & (offers["recipients"] >= MIN_RECIPIENTS)]
    offers = offers[OFFER_COLUMNS].reset_index(drop=True)
    kept = pd.MultiIndex.from_frame(offers[KEY])
    recipients = rows[pd.MultiIndex.from_frame(rows[KEY]).isin(kept)][RECIPIENT_COLUMNS]
    return offers, recipients.reset_index(drop=True)


def _totals(rows: pd.DataFrame) -> pd.DataFrame:
    """Per offer (KEY): its recipients' sums (the spend's sd: root of the summed variance)."""
    totals = rows.assign(units=rows["p_offer"] - rows["p_before"]).groupby(
        KEY, as_index=False).agg(
        recipients=("customer_id", "size"), expected_redemptions=("p_offer", "sum"),
        expected_incremental_units=("units", "sum"), offer_spend=("spend", "sum"),
        variance=("variance", "sum"), offer_gain=("gain", "sum"))
    totals["offer_spend_sd"] = np.sqrt(totals.pop("variance"))
    return totals


def apply_cap(chosen: pd.DataFrame, recipients: pd.DataFrame,
              cap: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(offers, recipients) of the chosen offers, each customer keeping at most `cap` of them
    (the ones with the highest gain for that customer; ties: the lower product id). The offer
    totals are recomputed over the recipients kept; offers left without any are dropped."""
    if chosen.empty:
        return chosen.reindex(columns=OFFER_COLUMNS), recipients.iloc[0:0]
    mine = recipients.merge(chosen[KEY], on=KEY, how="inner")
    mine = mine.sort_values(["customer_id", "gain", "product_id"],
                            ascending=[True, False, True], kind="stable")
    mine = mine.groupby("customer_id", sort=False).head(cap)
    offers = chosen[KEY + ["offer_price"]].merge(_totals(mine), on=KEY, how="inner")
    return (offers[OFFER_COLUMNS].sort_values(KEY).reset_index(drop=True),
            mine.sort_values(KEY + ["customer_id"]).reset_index(drop=True))


def offer_depths(targets: pd.DataFrame, recipients: pd.DataFrame) -> pd.Series:
    """The coupon depth of each target row (NaN: none; the holdout never gets one)."""
    depth = recipients.set_index(["product_id", "customer_id"])["offer_depth"]
    index = pd.MultiIndex.from_frame(targets[["product_id", "customer_id"]])
    values = depth.reindex(index).to_numpy(dtype=float)
    return pd.Series(np.where(targets["assignment"].to_numpy() == "treatment", values, np.nan),
                     index=targets.index)
