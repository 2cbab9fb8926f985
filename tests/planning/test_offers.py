"""Personal segment offers: priced by the segment's response, chosen with the lines inside the
same budget and margin floor, capped per customer."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from planning.offers import (
    OFFER_COLUMNS,
    apply_cap,
    buy_anyway,
    deal_proneness,
    offer_candidates,
    offer_depths,
)
from planning.optimize import BUDGET_Z, candidate_table, plan_discounts
from promoflow.run import RunParams

WEEK = date(2026, 11, 16)


def _market(n_products: int, n_customers: int, seed: int):
    """Products with a price response, and every product's treated targets in 3 segments of
    different deal proneness (segment 3 four times as deal prone as segment 1)."""
    rng = np.random.default_rng(seed)
    products = pd.DataFrame({
        "product_id": np.arange(1, n_products + 1),
        "category": [f"c{i % 4}" for i in range(n_products)],
        "list_price": rng.uniform(10, 60, n_products).round(2),
        "on_hand_units": rng.integers(200, 2000, n_products),
    })
    products["unit_cost"] = (products["list_price"] * rng.uniform(0.3, 0.8, n_products)).round(2)
    rows = []
    for p in products.itertuples():
        base, elasticity = rng.uniform(5, 40), rng.uniform(1, 5)
        for d in np.round(np.arange(0, 0.45, 0.05), 2):
            u = base * (1 - d) ** (-elasticity)
            rows.append((p.product_id, WEEK, d, 0.7 * u, u, 1.3 * u))
    forecasts = pd.DataFrame(rows, columns=["product_id", "week_start", "discount_depth",
                                            "units_p10", "units_p50", "units_p90"])
    segment = rng.integers(1, 4, n_customers)
    rho = deal_proneness(pd.DataFrame({"segment_id": [0, 1, 2, 3], "customers": [5, 1, 1, 1],
                                       "promo_share": [0.0, 0.1, 0.2, 0.4]}))
    targets = pd.DataFrame([(p, c) for p in products["product_id"]
                            for c in rng.choice(n_customers, 40, replace=False) + 1],
                           columns=["product_id", "customer_id"])
    targets["segment_id"] = segment[targets["customer_id"] - 1]
    targets["rho"] = targets["segment_id"].map(rho)
    targets["b"] = rng.uniform(0, 0.2, len(targets))
    targets["u"] = rng.uniform(0, 0.1, len(targets))
    return products, forecasts, targets


def test_deal_proneness_is_relative_to_the_average_customer():
    rho = deal_proneness(pd.DataFrame({"segment_id": [0, 1, 2], "customers": [10, 100, 100],
                                       "promo_share": [0.0, 0.1, 0.3]}))
    assert 0 not in rho.index  # no purchases: no offers
    assert rho[1] == pytest.approx(0.5) and rho[2] == pytest.approx(1.5)


def test_buy_anyway_grows_with_score_and_purchase_frequency():
    recs = pd.DataFrame({"product_id": [1, 1, 1], "customer_id": [1, 2, 3],
                         "score": [0.01, 0.05, 0.05]})
    customers = pd.DataFrame({"customer_id": [1, 2, 3], "frequency_orders_52w": [52, 52, 104],
                              "basket_units": [1.0, 1.0, 1.0]})
    b = buy_anyway(recs, customers).to_numpy()
    assert 0 < b[0] < b[1] < b[2] < 1


@pytest.mark.parametrize("seed", range(6))
def test_offers_never_break_the_budget_or_the_margin_floor(seed):
    products, forecasts, targets = _market(30, 400, seed)
    params = RunParams(plan_week=WEEK, budget=float(200 + 300 * seed), max_discount=0.4,
                       margin_floor=0.15, max_promos_per_category=4, seed=seed)
    solution = plan_discounts(
        forecasts, products, params,
        offers=lambda table: offer_candidates(table, forecasts, targets, params)[0])
    lines = solution.chosen[solution.chosen["discount_depth"] > 0]
    offers = solution.offers
    assert list(offers.columns) == OFFER_COLUMNS
    # the budget holds for lines and offers together, at the plan's confidence
    variance = (lines["spend_sd"] ** 2).sum() + (offers["offer_spend_sd"] ** 2).sum()
    spend = lines["promotion_cost"].sum() + offers["offer_spend"].sum()
    assert spend + BUDGET_Z * np.sqrt(variance) <= params.budget + 1e-6
    assert solution.spend_at_confidence <= params.budget + 1e-6
    # every offer: on a chosen line at its public depth, deeper, within max_discount, above the
    # margin floor, one per product and segment, and it pays
    line = lines.set_index("product_id")
    assert offers["product_id"].isin(line.index).all()
    assert np.allclose(offers["discount_depth"], line.loc[offers["product_id"], "discount_depth"])
    assert (offers["offer_depth"] > offers["discount_depth"]).all()
    assert (offers["offer_depth"] <= params.max_discount + 1e-9).all()
    cost = line.loc[offers["product_id"], "unit_cost"].to_numpy()
    assert ((offers["offer_price"] - cost) >= params.margin_floor * offers["offer_price"]
            - 1e-9).all()
    assert not offers.duplicated(["product_id", "segment_id"]).any()
    assert (offers["offer_gain"] > 0).all()


def test_offers_go_to_the_deal_prone_segment_and_pay_for_themselves():
    products, forecasts, targets = _market(30, 400, 11)
    params = RunParams(plan_week=WEEK, budget=1e6, max_discount=0.4, margin_floor=0.1,
                       max_promos_per_category=10)
    candidates = candidate_table(forecasts, products, params)
    offers, recipients = offer_candidates(candidates, forecasts, targets, params)
    assert not offers.empty
    by_segment = offers.groupby("segment_id")["offer_gain"].sum()
    assert by_segment.get(3, 0) > by_segment.get(1, 0)
    # an offer's gain is its recipients' sum
    key = ["product_id", "discount_depth", "segment_id", "offer_depth"]
    summed = recipients.groupby(key)["gain"].sum().reindex(
        pd.MultiIndex.from_frame(offers[key]))
    assert np.allclose(summed.to_numpy(), offers["offer_gain"])
    # nobody offers: no offers at all
    none = RunParams(plan_week=WEEK, max_offers_per_customer=0)
    assert offer_candidates(candidates, forecasts, targets, none)[0].empty


def test_the_cap_per_customer_holds_and_only_lowers_the_spend():
    products, forecasts, targets = _market(30, 120, 5)  # about 10 products per customer
    params = RunParams(plan_week=WEEK, budget=1e6, max_discount=0.4, margin_floor=0.1,
                       max_promos_per_category=10, max_offers_per_customer=2)
    solution = plan_discounts(
        forecasts, products, params,
        offers=lambda table: offer_candidates(table, forecasts, targets, params)[0])
    _, rows = offer_candidates(solution.chosen, forecasts, targets, params)
    offers, kept = apply_cap(solution.offers, rows, 2)
    assert not offers.empty
    assert kept.groupby("customer_id").size().max() <= 2
    assert offers["offer_spend"].sum() <= solution.offers["offer_spend"].sum() + 1e-9
    assert (offers["recipients"] >= 1).all()
    assert offers["recipients"].sum() == len(kept)
    # the targets carry their coupon depth; the holdout never gets one
    plan_targets = kept[["product_id", "customer_id"]].assign(assignment="treatment")
    plan_targets.loc[plan_targets.index[:3], "assignment"] = "holdout"
    depth = offer_depths(plan_targets, kept)
    assert depth[plan_targets["assignment"] == "holdout"].isna().all()
    assert depth[plan_targets["assignment"] == "treatment"].notna().all()


def test_no_recipient_before_a_contact_effect_is_measured(tmp_path):
    from planning.contacts import NO_EFFECT, ContactEffect
    from planning.run import offer_recipients
    from promoflow.run import RunFolder

    folder = RunFolder(tmp_path)
    pd.DataFrame({"customer_id": [1, 2], "segment_id": [1, 2], "frequency_orders_52w": [12, 40],
                  "basket_units": [1.0, 2.0]}).to_parquet(folder.customer_segments)
    pd.DataFrame({"segment_id": [1, 2], "customers": [1, 1], "promo_share": [0.1, 0.3],
                  "segment_name": ["a", "b"]}).to_parquet(folder.segment_profiles)
    treated = pd.DataFrame({"product_id": [7, 7], "customer_id": [1, 2]})
    recs = treated.assign(score=[0.02, 0.05], rank=[2, 1])
    assert offer_recipients(folder, treated, recs, NO_EFFECT, None).empty
    out = offer_recipients(folder, treated, recs, ContactEffect(0.06, 0.01, 2), None)
    assert list(out["segment_id"]) == [1, 2] and np.allclose(out["u"], 0.06)
    assert out["rho"].iloc[1] > 1 > out["rho"].iloc[0]
    assert (out["b"] > 0).all()
