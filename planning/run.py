"""The planning stage: forecasts + recommendations + marts -> plan files in the run folder.

Entry point: `make_plan(run, settings)`.
"""

from __future__ import annotations

import logging

import pandas as pd

from planning.contacts import (
    expected_buyers,
    measured_contact_effect,
    treated_targets,
    with_contact_units,
)
from planning.optimize import BUDGET_CONFIDENCE, plan_discounts
from planning.targeting import CONSENT_COLUMNS, consented_channel, target_customers
from planning.uplift import learn, snapshots
from promoflow.run import Run
from promoflow.settings import Settings
from promoflow.warehouse import engine

log = logging.getLogger(__name__)

#: The run parameters a plan records (published.plans has a column for each).
PLAN_PARAMS = ("plan_week", "dataset", "budget", "max_discount", "discount_step", "margin_floor",
               "max_promos_per_category", "audience_size", "holdout_fraction", "seed")


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
    forecasts = with_contact_units(forecasts, buyers)
    log.info("Contacts: %.4f extra buyers per treated target, measured over %d plan weeks "
             "(standard error %.4f); uplift %s; %.1f extra buyers expected per promoted product "
             "on average", contact.effect, contact.weeks, contact.std_error,
             "learned" if model.learned else "not learned yet (deal proneness ranks)",
             buyers.mean())
    solution = plan_discounts(forecasts, products, params)
    chosen = solution.chosen.merge(products[["product_id", "product_name"]], on="product_id",
                                   how="left")
    lines = chosen[chosen["discount_depth"] > 0].sort_values("product_id").reset_index(drop=True)
    targets = target_customers(lines, recommendations, customers, run.plan_week,
                               params.audience_size, params.holdout_fraction, params.seed,
                               consents, uplift)
    # published: the extra purchase probability each target is expected to have from a contact
    targets["uplift"] = (targets["customer_id"].map(expected).fillna(0.0) if expected is not None
                         else 0.0)
    plan = {
        "run_id": run.run_id,
        **{name: value for name, value in params.to_dict().items() if name in PLAN_PARAMS},
        "products_considered": int(chosen["product_id"].nunique()),
        "products_promoted": len(lines),
        "promotion_cost": round(float(lines["promotion_cost"].sum()), 2),
        "expected_incremental_revenue": round(float(lines["incremental_revenue"].sum()), 2),
        "expected_incremental_profit": round(solution.objective, 2),
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
            float(lines["week_incremental_profit"].sum() - lines["dip_cost"].sum())
            - solution.objective, 2),
    }
    lines.to_parquet(folder.plan_lines, index=False)
    targets.to_parquet(folder.plan_targets, index=False)
    folder.write_json(folder.plan, plan)
    log.info("Plan for %s: %d products promoted, cost %.2f (%.2f at %.0f%% confidence) of budget "
             "%.2f, expected net incremental profit %.2f (dip %.2f, cannibalization %.2f), %d "
             "customers targeted, %.1f incremental buyers expected from their contacts (solver "
             "%s, gap %.2g)", plan["plan_week"],
             plan["products_promoted"], plan["promotion_cost"], plan["spend_at_confidence"],
             100 * BUDGET_CONFIDENCE, params.budget, plan["expected_incremental_profit"],
             plan["expected_dip_cost"], plan["expected_cannibalization_cost"], len(targets),
             plan["expected_contact_units"], solution.status, solution.mip_gap)
    return plan
