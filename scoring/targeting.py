"""Targeting by uplift against targeting by propensity, valued with the market's truth.

    python -m scoring.targeting [--dataset demo] [--run-id ID]

Also values the plan's personal offers (`score_offers`) with the same truth.

For a plan of a synthetic market, two policies choose the customers of every promoted product
among the same candidates (the recommender's, consenting customers only), at the same audience
size and with the same holdout draw:

- `propensity`: the recommender's top customers (the most likely buyers);
- `uplift`: the top customers by the run's uplift model (planning/uplift.py: learned on the
  weeks measured before the plan week; before any, deal proneness).

Each treated target's true effect on its purchase of the product is the generator's contact
model (sources/synthetic/simulate.py): q x (1 - b), q the customer's contact response (0 when
the target's channel is not consented), b the chance it buys anyway. True incremental profit =
sum over treated targets of effect x (promo price - unit cost) of the line; the stock a week
leaves for contact purchases is not modelled here (it caps both policies alike).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from planning.run import load_consents, load_customers
from planning.targeting import target_customers
from planning.uplift import learn, snapshots
from promoflow.run import RunConfigError, RunFolder
from promoflow.settings import Settings, get_settings
from scoring.score import ScoringError, latest_run_id
from sources.synthetic import simulate, truth

log = logging.getLogger(__name__)

POLICIES = ("propensity", "uplift")


@dataclass(frozen=True)
class TargetingScore:
    policy: str
    treated: int
    expected_incremental_buyers: float  # the uplift model's estimate (0 when not learned)
    true_incremental_buyers: float
    true_incremental_profit: float
    mean_true_q: float  # the treated targets' contact response


def true_effects(targets: pd.DataFrame, plan_lines: pd.DataFrame, run, settings: Settings
                 ) -> pd.Series:
    """The true effect of each target on buying its product (0 for the holdout)."""
    truth_dir = settings.ground_truth_dir / run.params.dataset
    landing_dir = settings.landing_dir / run.params.dataset
    market = truth.market(truth_dir)
    products = pd.read_csv(landing_dir / "products.csv").sort_values("product_id")
    products = products.reset_index(drop=True)
    ids = products["product_id"].to_numpy()
    depths = plan_lines.set_index("product_id")["discount_depth"].astype(float)
    mean = truth.plan_outcome(truth_dir, run.plan_week, depths).set_index(
        "product_id").loc[ids, "units"].to_numpy()
    customers = simulate._customers(landing_dir, truth_dir)
    cat_idx = products["category"].map(
        {c: i for i, c in enumerate(market.categories.index)}).to_numpy()
    depth = products["product_id"].map(depths).fillna(0.0).to_numpy()
    consented = simulate.consented_pairs(
        landing_dir, customers, dt.datetime.combine(run.plan_week, simulate.SEND_TIME))
    contacts = simulate._contacts(np.random.default_rng(0), targets, customers, consented,
                                  products, cat_idx, depth, mean, run.plan_week)
    return contacts.set_index(["product_id", "customer_id"])[
        ["q", "q_offer", "b", "offer_depth", "true_effect"]]


@dataclass(frozen=True)
class OfferScore:
    """A plan's personal offers: what the plan expected and what the market's truth gives."""

    offers: int
    recipients: int
    expected_spend: float
    true_spend: float
    expected_incremental_profit: float
    true_incremental_profit: float


def score_offers(run_id: str, settings: Settings | None = None) -> OfferScore:
    """The plan's coupons valued with the truth, each against the plain contact at the public
    price: per recipient (b + q_e (1 - b)) x (offer price - cost) - (b + q (1 - b)) x (promo
    price - cost), q and q_e the generator's contact response without and with the coupon (0
    when the channel is not consented), b the chance to buy anyway. The spend likewise, with
    the discount off the list price in place of the margin."""
    s = settings or get_settings()
    folder = RunFolder(s.runs_dir / run_id)
    if not folder.plan_offers.exists():
        raise ScoringError(f"{folder.plan_offers} does not exist: the run made no offers.")
    run = folder.read_run()
    offers = pd.read_parquet(folder.plan_offers)
    targets = pd.read_parquet(folder.plan_targets)
    lines = pd.read_parquet(folder.plan_lines).set_index("product_id")
    holders = targets[(targets["assignment"] == "treatment") & targets["offer_depth"].notna()]
    if holders.empty:
        return OfferScore(len(offers), 0, 0.0, 0.0, 0.0, 0.0)
    effects = true_effects(holders, lines.reset_index(), run, s).reindex(
        pd.MultiIndex.from_frame(holders[["product_id", "customer_id"]]))
    line = lines.reindex(holders["product_id"])
    list_price, cost = line["list_price"].to_numpy(float), line["unit_cost"].to_numpy(float)
    price_d = line["promo_price"].to_numpy(float)
    price_e = np.round(list_price * (1 - holders["offer_depth"].to_numpy(float)), 2)
    b, q, q_e = (effects[c].fillna(0.0).to_numpy() for c in ("b", "q", "q_offer"))
    before, after = b + q * (1 - b), b + q_e * (1 - b)
    reached = effects["offer_depth"].fillna(0.0).to_numpy() > 0  # a coupon reaches them
    price_e = np.where(reached, price_e, price_d)
    profit = after * (price_e - cost) - before * (price_d - cost)
    spend = after * (list_price - price_e) - before * (list_price - price_d)
    return OfferScore(len(offers), len(holders), round(float(offers["offer_spend"].sum()), 2),
                      round(float(spend.sum()), 2), round(float(offers["offer_gain"].sum()), 2),
                      round(float(profit.sum()), 2))


def compare(run_id: str, settings: Settings | None = None) -> list[TargetingScore]:
    """Both policies on a run's plan, valued with its dataset's truth."""
    s = settings or get_settings()
    folder = RunFolder(s.runs_dir / run_id)
    if not folder.plan_lines.exists():
        raise ScoringError(f"{folder.plan_lines} does not exist; run the weekly flow first.")
    run = folder.read_run()
    params = run.params
    if not (s.ground_truth_dir / params.dataset / "products_truth.csv").exists():
        raise ScoringError(f"dataset {params.dataset} has no ground truth: only synthetic "
                           "markets can be scored.")
    lines = pd.read_parquet(folder.plan_lines)
    recommendations = pd.read_parquet(folder.recommendations)
    customers, consents = load_customers(s), load_consents(s)
    model = learn(params.dataset, run.plan_week, params.seed, s)
    snap = snapshots([run.plan_week], s).set_index("customer_id")
    score = pd.Series(model.predict(snap.reset_index()), index=snap.index)
    expected = pd.Series(model.expected(snap.reset_index()), index=snap.index)
    margin = (lines["promo_price"] - lines["unit_cost"]).set_axis(lines["product_id"])
    chosen = {policy: target_customers(lines, recommendations, customers, run.plan_week,
                                       params.audience_size, params.holdout_fraction,
                                       params.seed, consents,
                                       uplift=score if policy == "uplift" else None)
              for policy in POLICIES}
    treated = {policy: t[t["assignment"] == "treatment"] for policy, t in chosen.items()}
    # the truth of every target either policy treats, valued once
    effects = true_effects(pd.concat(treated.values()).drop_duplicates(
        ["product_id", "customer_id"]), lines, run, s)
    out = []
    for policy, targets in treated.items():
        keys = pd.MultiIndex.from_frame(targets[["product_id", "customer_id"]])
        effect = effects["true_effect"].reindex(keys).fillna(0.0).to_numpy()
        out.append(TargetingScore(
            policy, len(targets),
            round(float(targets["customer_id"].map(expected).fillna(0.0).sum()), 2),
            round(float(effect.sum()), 2),
            round(float((effect * targets["product_id"].map(margin).to_numpy()).sum()), 2),
            round(float(effects["q"].reindex(keys).fillna(0.0).mean()), 5)))
    log.info("Targeting of run %s (uplift %s): %s", run_id,
             "learned" if model.learned else "prior", [asdict(o) for o in out])
    return out


def table_lines(scores: list[TargetingScore]) -> list[str]:
    header = (f"    {'policy':<11} {'treated':>8} {'expected buyers':>16} {'true buyers':>12} "
              f"{'true profit':>12} {'mean q':>8}")
    return [header] + [
        f"    {s.policy:<11} {s.treated:>8} {s.expected_incremental_buyers:>16,.1f} "
        f"{s.true_incremental_buyers:>12,.1f} {s.true_incremental_profit:>12,.2f} "
        f"{s.mean_true_q:>8.4f}" for s in scores]


def main(argv: list[str] | None = None) -> int:
    from promoflow.logs import setup_logging

    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="demo", help="its latest published plan")
    parser.add_argument("--run-id", default=None, help="this run instead")
    args = parser.parse_args(argv)
    settings = get_settings()
    try:
        run_id = args.run_id or latest_run_id(args.dataset, settings)
        print("\n".join(table_lines(compare(run_id, settings))))
        offers = score_offers(run_id, settings)
        print(f"    personal offers: {offers.offers} to {offers.recipients} recipients, spend "
              f"{offers.expected_spend:,.2f} expected / {offers.true_spend:,.2f} true, "
              f"incremental profit {offers.expected_incremental_profit:,.2f} expected / "
              f"{offers.true_incremental_profit:,.2f} true")
    except (ScoringError, RunConfigError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
