"""The planning stage: forecasts + recommendations + marts -> plan files in the run folder.

Entry point: `make_plan(run, settings)`.
"""

from __future__ import annotations

import logging

import pandas as pd

from planning.contacts import (
    ContactEffect,
    expected_buyers,
    measured_contact_effect,
    treated_targets,
    with_contact_units,
)
from planning.offers import (
    apply_cap,
    buy_anyway,
    deal_proneness,
    offer_candidates,
    offer_depths,
)
from planning.optimize import BUDGET_CONFIDENCE, plan_discounts
from planning.targeting import CONSENT_COLUMNS, consented_channel, target_customers
from planning.uplift import learn, snapshots
from promoflow.run import Run
from promoflow.settings import Settings
from promoflow.warehouse import engine

log = logging.getLogger(__name__)

#: The run parameters a plan records (published.plans has a column for each).
PLAN_PARAMS = ("plan_week", "as_of", "dataset", "budget", "max_discount", "discount_step",
               "margin_floor", "max_promos_per_category", "audience_size", "holdout_fraction",
               "max_offers_per_customer", "seed")


def load_products(settings: Settings | None = None) -> pd.DataFrame:
    return pd.read_sql(
        "select product_id, product_name, category, list_price, unit_cost, on_hand_units "
        "from marts.products", engine(settings))


def load_customers(settings: Settings | None = None) -> pd.DataFrame:
    return pd.read_sql("select customer_id, preferred_channel from marts.customers", engine(settings))


def load_consents(settings: Settings | None = None) -> pd.DataFrame:
    """Every consent period (marts.contact_consents: the log's and the implied preferred
    channels'); targeting keeps the channels whose consent holds when the plan week starts."""
    return pd.read_sql(f"select {', '.join(CONSENT_COLUMNS)} from marts.contact_consents "
                       "order by customer_id, channel, consented_from", engine(settings))


def make_plan(run: Run, settings: Settings | None = None) -> dict:
    """Optimize discounts, target customers, write the plan files of the run's folder."""
    folder, params = run.folder(settings), run.params
    forecasts = pd.read_parquet(folder.forecasts)
    recommendations = pd.read_parquet(folder.recommendations)
    products = load_products(settings)
    customers = load_customers(settings)
    consents = load_consents(settings)
    log.info("Consent: %d of %d customers may be contacted in the week of %s",
             len(consented_channel(customers, consents, run.plan_week)), len(customers),
             run.plan_week)
    contact = measured_contact_effect(params.dataset, run.plan_week, settings)
    model = learn(params.dataset, run.plan_week, params.seed, settings)
    snapshot = snapshots([run.plan_week], settings)
    uplift = pd.Series(model.predict(snapshot), index=snapshot["customer_id"].to_numpy())
    expected = (pd.Series(model.expected(snapshot), index=uplift.index) if model.learned
                else None)
    treated = treated_targets(forecasts["product_id"], recommendations, customers, run.plan_week,
                              params.audience_size, params.holdout_fraction, params.seed,
                              consents, uplift)
    buyers = expected_buyers(treated, forecasts["product_id"], contact, expected)
    raw_forecasts = forecasts
    forecasts = with_contact_units(forecasts, buyers)
    recipients = offer_recipients(folder, treated, recommendations, contact, expected)
    log.info("Contacts: %.4f extra buyers per treated target, measured over %d plan weeks "
             "(standard error %.4f); uplift %s; %.1f extra buyers expected per promoted product "
             "on average", contact.effect, contact.weeks, contact.std_error,
             "learned" if model.learned else "not learned yet (deal proneness ranks)",
             buyers.mean())
    found: dict[str, pd.DataFrame] = {}

    def candidates_of(table: pd.DataFrame) -> pd.DataFrame:
        found["offers"], found["rows"] = offer_candidates(table, raw_forecasts, recipients, params)
        return found["offers"]

    solution = plan_discounts(forecasts, products, params, offers=candidates_of)
    offers, offer_rows = apply_cap(solution.offers, found["rows"], params.max_offers_per_customer)
    chosen = solution.chosen.merge(products[["product_id", "product_name"]], on="product_id",
                                   how="left")
    lines = chosen[chosen["discount_depth"] > 0].sort_values("product_id").reset_index(drop=True)
    targets = target_customers(lines, recommendations, customers, run.plan_week,
                               params.audience_size, params.holdout_fraction, params.seed,
                               consents, uplift)
    # published: the extra purchase probability each target is expected to have from a contact
    targets["uplift"] = (targets["customer_id"].map(expected).fillna(0.0) if expected is not None
                         else 0.0)
    targets["offer_depth"] = offer_depths(targets, offer_rows)
    if folder.segment_profiles.exists():
        names = pd.read_parquet(folder.segment_profiles).set_index("segment_id")["segment_name"]
        offers["segment_name"] = offers["segment_id"].map(names)
    plan = {
        "run_id": run.run_id,
        **{name: value for name, value in params.to_dict().items() if name in PLAN_PARAMS},
        "products_considered": int(chosen["product_id"].nunique()),
        "products_promoted": len(lines),
        "promotion_cost": round(float(lines["promotion_cost"].sum()), 2),
        "expected_incremental_revenue": round(float(lines["incremental_revenue"].sum()), 2),
        # the objective counted the offers before the per-customer cap trimmed them
        "expected_incremental_profit": round(
            solution.objective - float(solution.offers["offer_gain"].sum())
            + float(offers["offer_gain"].sum()), 2),
        "solver_status": solution.status,
        "mip_gap": solution.mip_gap,
        "spend_at_confidence": round(solution.spend_at_confidence, 2),
        "budget_confidence": BUDGET_CONFIDENCE,
        "expected_dip_cost": round(float(lines["dip_cost"].sum()), 2),
        "contact_effect": round(contact.effect, 6),
        "contact_effect_weeks": contact.weeks,
        "expected_contact_units": round(float(lines["contact_units"].sum()), 2),
        **model.summary(),
        "expected_cannibalization_cost": round(
            float(lines["week_incremental_profit"].sum() - lines["dip_cost"].sum()
                  + solution.offers["offer_gain"].sum()) - solution.objective, 2),
        "offers": len(offers),
        "offer_recipients": int(offers["recipients"].sum()),
        "offer_cost": round(float(offers["offer_spend"].sum()), 2),
        "expected_offer_profit": round(float(offers["offer_gain"].sum()), 2),
    }
    lines.to_parquet(folder.plan_lines, index=False)
    targets.to_parquet(folder.plan_targets, index=False)
    offers.to_parquet(folder.plan_offers, index=False)
    folder.write_json(folder.plan, plan)
    log.info("Personal offers: %d (product, segment) coupons to %d recipients (at most %d per "
             "customer), extra discount %.2f, expected incremental profit %.2f", len(offers),
             plan["offer_recipients"], params.max_offers_per_customer, plan["offer_cost"],
             plan["expected_offer_profit"])
    log.info("Plan for %s: %d products promoted, cost %.2f (%.2f at %.0f%% confidence) of budget "
             "%.2f, expected net incremental profit %.2f (dip %.2f, cannibalization %.2f), %d "
             "customers targeted, %.1f incremental buyers expected from their contacts (solver "
             "%s, gap %.2g)", plan["plan_week"],
             plan["products_promoted"], plan["promotion_cost"], plan["spend_at_confidence"],
             100 * BUDGET_CONFIDENCE, params.budget, plan["expected_incremental_profit"],
             plan["expected_dip_cost"], plan["expected_cannibalization_cost"], len(targets),
             plan["expected_contact_units"], solution.status, solution.mip_gap)
    return plan


def offer_recipients(folder, treated: pd.DataFrame, recommendations: pd.DataFrame,
                     contact: ContactEffect, expected: pd.Series | None) -> pd.DataFrame:
    """The treated targets as offer recipients (planning/offers.py): their segment and its deal
    proneness, the chance they buy anyway, their contact uplift. None without segment files,
    and none before a contact effect was measured: a coupon's redemptions are mostly the
    contacted buyers', and until a holdout has shown how many those are, its spend cannot be
    foreseen (counted as none, a campaign's coupons once cost the market ten times the plan's
    estimate)."""
    none = treated.iloc[0:0].assign(segment_id=0, rho=1.0, b=0.0, u=0.0)
    if not (folder.customer_segments.exists() and folder.segment_profiles.exists()):
        log.info("No customer segments in %s: no personal offers", folder.path)
        return none
    if contact.weeks == 0:
        log.info("No contact effect measured yet: no personal offers this week")
        return none
    segments = pd.read_parquet(folder.customer_segments, columns=[
        "customer_id", "segment_id", "frequency_orders_52w", "basket_units"])
    rho = deal_proneness(pd.read_parquet(folder.segment_profiles))
    anyway = buy_anyway(recommendations, segments)
    out = treated.merge(segments[["customer_id", "segment_id"]], on="customer_id", how="inner")
    out["rho"] = out["segment_id"].map(rho).fillna(1.0)
    out["b"] = anyway.reindex(pd.MultiIndex.from_frame(out[["product_id", "customer_id"]]))\
        .fillna(0.0).to_numpy()
    out["u"] = (out["customer_id"].map(expected).fillna(0.0).clip(lower=0.0)
                if expected is not None else contact.effect)
    return out
