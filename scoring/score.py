"""What a published plan truly earns on a synthetic market, next to the best plan possible.

    python -m scoring.score [--dataset demo] [--run-id ID]     (make score DATASET=demo)

The ground truth (`sources.synthetic.truth`, never read by the weekly flow; docs/market.md) says
what a whole plan does in its week: every product's true expected units after its own response
and its category's cannibalization, capped by the stock the planner saw, and the post-promotion
dip each promotion causes in the next weeks. Four policies are evaluated on it with the run's
constraints:

- `plan`: the published plan's discounts;
- `no_promotion`: nothing discounted;
- `simple_rule`: the best sellers of the platform's own baseline forecast, each at the grid
  level nearest 20% off (within the max discount and the margin floor), as many per category as
  allowed, until the budget is spent on forecast units;
- `oracle`: the planning MIP solved on the true curves, the true dips and the true
  cannibalization rates and caps (its linear valuation of the siblings' lost units at list
  margins is the one approximation, so a plan may score a hair above it).

For each: true net profit (the week's profit minus the dip cost of the next weeks at list
margins), its gain over no promotion, the dip cost and the siblings' lost profit, true spend
(discount given away on true units) against the budget, every constraint checked, and
efficiency = (policy - no promotion) / (oracle - no promotion). Results go to
`published.plan_scores`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from planning.optimize import CANNIBALIZATION_CAP, EPS, candidate_table, plan_discounts
from planning.run import load_products
from promoflow.run import Run, RunConfigError, RunFolder
from promoflow.settings import Settings, get_settings
from promoflow.warehouse import connect, latest_published_run_id
from sources.synthetic import truth

log = logging.getLogger(__name__)

POLICIES = ("plan", "no_promotion", "simple_rule", "oracle")
RULE_DEPTH = 0.2


class ScoringError(RuntimeError):
    """A plan cannot be scored (no ground truth, no plan files)."""


@dataclass(frozen=True)
class PolicyScore:
    policy: str
    products_promoted: int
    true_spend: float
    budget: float
    true_net_profit: float
    true_incremental_profit: float
    efficiency: float | None
    violations: list[str] = field(default_factory=list)
    true_dip_cost: float = 0.0
    true_cannibalization_cost: float = 0.0

    @property
    def within_budget(self) -> bool:
        return self.true_spend <= self.budget + 1e-6


@dataclass(frozen=True)
class Valuation:
    """A policy's discounts valued on the ground truth."""

    net_profit: float  # week profit minus the dip cost of the next weeks
    spend: float
    violations: list[str]
    dip_cost: float = 0.0
    cannibalization_cost: float = 0.0  # profit the products lost to their category's promotions


def true_curves(truth_dir: Path, products: pd.DataFrame, run: Run) -> pd.DataFrame:
    """True expected units of every product at every level of the run's grid, as forecasts,
    with the true dip and the units the category would lose if it alone were promoted."""
    ids = products["product_id"].to_numpy()
    market = truth.market(truth_dir)
    rows = market.products.loc[ids]
    rate = market.categories["cannibalization_rate"].reindex(rows["category"]).to_numpy()
    base = truth.expected_units(truth_dir, ids, run.plan_week, 0.0)
    parts = []
    for level in run.params.discount_levels:
        units = truth.expected_units(truth_dir, ids, run.plan_week, level)
        extra = np.maximum(units - base, 0.0)
        parts.append(pd.DataFrame({"product_id": ids, "week_start": run.plan_week,
                                   "discount_depth": level, "units_p10": units,
                                   "units_p50": units, "units_p90": units,
                                   "dip_units": rows["dip_share"].to_numpy() * extra,
                                   "cannibalized_units": rate * extra}))
    return pd.concat(parts, ignore_index=True)


def true_caps(truth_dir: Path) -> pd.Series:
    """The share of its baseline each category can lose to cannibalization, in truth."""
    return truth.market(truth_dir).categories["cannibalization_cap"]


def evaluate(depths: pd.Series, products: pd.DataFrame, run: Run, truth_dir: Path) -> Valuation:
    """Discounts per product_id valued on the ground truth, every constraint checked."""
    params = run.params
    depths = depths[depths > 0].round(6)
    violations = []
    off_grid = ~np.isin(depths.to_numpy(), np.round(params.discount_levels, 6))
    if off_grid.any():
        violations.append(f"{int(off_grid.sum())} discounts off the grid {params.discount_levels}")
    stock = products.set_index("product_id")["on_hand_units"].clip(lower=0)
    outcome = truth.plan_outcome(truth_dir, run.plan_week, depths, stock).merge(
        products[["product_id", "list_price", "unit_cost"]], on="product_id", how="inner")
    price = (outcome["list_price"] * (1 - outcome["discount_depth"])).round(2)
    list_margin = outcome["list_price"] - outcome["unit_cost"]
    promoted = outcome["discount_depth"] > 0
    week_profit = float((outcome["units"] * (price - outcome["unit_cost"])).sum())
    dip_cost = float((outcome["dip_units"] * list_margin).sum())
    spend = float((outcome["units"] * (outcome["list_price"] - price))[promoted].sum())
    if spend > params.budget + 1e-6:
        violations.append(f"true spend {spend:,.2f} over the budget {params.budget:,.2f}")
    if (outcome.loc[promoted, "discount_depth"] > params.max_discount + EPS).any():
        violations.append("a discount over the max discount")
    margin = (price - outcome["unit_cost"]) / price.where(price > 0)
    below = promoted & ~(margin >= params.margin_floor - EPS)
    if below.any():
        violations.append(f"{int(below.sum())} prices below the margin floor")
    if (outcome[promoted].groupby("category").size() > params.max_promos_per_category).any():
        violations.append("more promotions in a category than allowed")
    return Valuation(
        net_profit=week_profit - dip_cost, spend=spend, violations=violations, dip_cost=dip_cost,
        cannibalization_cost=float((outcome["cannibalized_units"]
                                    * (price - outcome["unit_cost"])).sum()))


def simple_rule(forecasts: pd.DataFrame, products: pd.DataFrame, run: Run) -> pd.Series:
    """Discount per product_id of the rule (see the module docstring)."""
    params = run.params
    levels = np.array(params.discount_levels[1:])
    if not len(levels):
        return pd.Series(dtype=float)
    depth = float(levels[np.argmin(np.abs(levels - RULE_DEPTH))])
    table = candidate_table(forecasts, products, run.params)
    at_depth = table[(table["discount_depth"] == round(depth, 6)) & table["meets_margin_floor"]]
    ranked = at_depth.sort_values(["baseline_units", "product_id"], ascending=[False, True])
    chosen, spent, per_category = {}, 0.0, {}
    for row in ranked.itertuples():
        if per_category.get(row.category, 0) >= params.max_promos_per_category:
            continue
        if spent + row.promotion_cost > params.budget:
            continue
        chosen[row.product_id] = depth
        spent += row.promotion_cost
        per_category[row.category] = per_category.get(row.category, 0) + 1
    return pd.Series(chosen, dtype=float)


def oracle(truth_dir: Path, products: pd.DataFrame, run: Run) -> pd.Series:
    """The planning MIP solved on the true curves, dip and cannibalization: discount per
    product_id."""
    curves = true_curves(truth_dir, products, run)
    chosen = plan_discounts(curves, products, run.params,
                            cannibalization_cap=true_caps(truth_dir)).chosen
    return chosen.set_index("product_id")["discount_depth"]


def score(run: Run, plan_lines: pd.DataFrame, forecasts: pd.DataFrame, products: pd.DataFrame,
          truth_dir: Path) -> list[PolicyScore]:
    """The four policies of a run scored on the ground truth."""
    depths = {
        "plan": plan_lines.set_index("product_id")["discount_depth"],
        "no_promotion": pd.Series(dtype=float),
        "simple_rule": simple_rule(forecasts, products, run),
        "oracle": oracle(truth_dir, products, run),
    }
    valued = {name: evaluate(depth, products, run, truth_dir) for name, depth in depths.items()}
    none = valued["no_promotion"].net_profit
    best_gain = valued["oracle"].net_profit - none
    scores = []
    for name in POLICIES:
        value = valued[name]
        gain = value.net_profit - none
        scores.append(PolicyScore(
            policy=name, products_promoted=int((depths[name] > 0).sum()),
            true_spend=round(value.spend, 2), budget=run.params.budget,
            true_net_profit=round(value.net_profit, 2), true_incremental_profit=round(gain, 2),
            efficiency=round(gain / best_gain, 4) if best_gain > 1e-9 else None,
            violations=value.violations, true_dip_cost=round(value.dip_cost, 2),
            true_cannibalization_cost=round(value.cannibalization_cost -
                                            valued["no_promotion"].cannibalization_cost, 2)))
    return scores


#: what_if swaps: the forecast's parts replaced by the truth, one set at a time
WHAT_IF = {
    "true baseline": ("baseline",),
    "true units": ("units",),
    "true dip": ("dip",),
    "true cannibalization": ("cannibalization",),
    "true units and dip": ("units", "dip"),
    "true units, dip and cannibalization": ("units", "dip", "cannibalization"),
    "truth, one dip share": ("units", "mean dip", "cannibalization"),
}


def what_if(run: Run, forecasts: pd.DataFrame, products: pd.DataFrame, truth_dir: Path
            ) -> dict[str, float | None]:
    """Where the plan's efficiency is lost: the efficiency of the plan the same optimizer makes
    when parts of the forecast are replaced by the truth (WHAT_IF).

    `baseline`: every forecast column of a product scaled by its true / forecast units at
    discount 0 (the forecast's own response kept); `units`: the true expected units at every
    level, P10 and P90 at the forecast's ratios to its P50 (so the budget's confidence margin
    keeps the forecast's uncertainty); `dip` and `cannibalization`: the true dip and the true
    units the siblings lose (with the true caps of the categories). The gap a swap closes is
    what that part of the forecast costs. `mean dip`: the market's mean dip share on the true
    extra units, for every product. Each product's own share is drawn at random and has no
    other trace in the data, so "truth, one dip share" is about the best a model fitted to the
    history can reach.
    """
    key = ["product_id", "discount_depth"]
    fc = forecasts.assign(discount_depth=forecasts["discount_depth"].round(6))
    curves = true_curves(truth_dir, products, run)
    curves = curves.assign(discount_depth=curves["discount_depth"].round(6))
    both = fc.merge(curves[[*key, "units_p50", "dip_units", "cannibalized_units"]], on=key,
                    how="inner", suffixes=("", "_true"))
    none = evaluate(pd.Series(dtype=float), products, run, truth_dir).net_profit
    best = evaluate(oracle(truth_dir, products, run), products, run, truth_dir).net_profit - none
    at_0 = both[both["discount_depth"] == 0].set_index("product_id")
    ratio = (both["product_id"].map(at_0["units_p50_true"])
             / both["product_id"].map(at_0["units_p50"]).where(lambda v: v > EPS)).fillna(1.0)
    extra_true = (both["units_p50_true"]
                  - both["product_id"].map(at_0["units_p50_true"])).clip(lower=0.0)
    mean_dip = float(truth.market(truth_dir).products["dip_share"].mean())
    spread = {q: (both[f"units_{q}"] / both["units_p50"].where(both["units_p50"] > EPS)).fillna(1.0)
              for q in ("p10", "p90")}
    out: dict[str, float | None] = {}
    for name, parts in WHAT_IF.items():
        swapped = both.copy()
        if "baseline" in parts:
            for column in ("units_p10", "units_p50", "units_p90", "dip_units",
                           "cannibalized_units"):
                swapped[column] = both[column] * ratio
        if "units" in parts:
            swapped["units_p50"] = both["units_p50_true"]
            for q in ("p10", "p90"):
                swapped[f"units_{q}"] = both["units_p50_true"] * spread[q]
        if "dip" in parts:
            swapped["dip_units"] = both["dip_units_true"]
        if "mean dip" in parts:
            swapped["dip_units"] = mean_dip * extra_true
        if "cannibalization" in parts:
            swapped["cannibalized_units"] = both["cannibalized_units_true"]
        cap = true_caps(truth_dir) if "cannibalization" in parts else CANNIBALIZATION_CAP
        chosen = plan_discounts(swapped, products, run.params, cannibalization_cap=cap).chosen
        depths = chosen.set_index("product_id")["discount_depth"]
        gain = evaluate(depths[depths > 0], products, run, truth_dir).net_profit - none
        out[name] = round(gain / best, 4) if best > 1e-9 else None
    return out


def score_run(run_id: str, settings: Settings | None = None) -> tuple[Run, list[PolicyScore]]:
    """A run (from its folder) and its scores, from the warehouse's products and its dataset's
    ground truth."""
    s = settings or get_settings()
    folder = RunFolder(s.runs_dir / run_id)
    if not folder.plan_lines.exists():
        raise ScoringError(f"{folder.plan_lines} does not exist; run the weekly flow first.")
    run = folder.read_run()
    truth_dir = s.ground_truth_dir / run.params.dataset
    if not (truth_dir / "products_truth.csv").exists():
        raise ScoringError(f"dataset {run.params.dataset} has no ground truth in {truth_dir}: "
                           "only synthetic markets can be scored.")
    products = load_products(s)
    return run, score(run, pd.read_parquet(folder.plan_lines),
                      pd.read_parquet(folder.forecasts), products, truth_dir)


def publish_scores(run: Run, scores: list[PolicyScore], settings: Settings | None = None) -> None:
    """Replace the run's rows of published.plan_scores, in one transaction."""
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select 1 from published.plans where run_id = %s for share", (run.run_id,))
        if cur.fetchone() is None:
            raise ScoringError(f"run {run.run_id} has no published plan (it never published, "
                               "or its dataset's plans were removed); score a published run.")
        cur.execute("delete from published.plan_scores where run_id = %s", (run.run_id,))
        for item in scores:
            cur.execute(
                "insert into published.plan_scores (run_id, plan_week, dataset, policy, "
                "products_promoted, true_spend, budget, within_budget, true_net_profit, "
                "true_incremental_profit, efficiency, violations, true_dip_cost, "
                "true_cannibalization_cost) "
                "values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (run.run_id, run.plan_week, run.params.dataset, item.policy,
                 item.products_promoted, item.true_spend, item.budget, item.within_budget,
                 item.true_net_profit, item.true_incremental_profit, item.efficiency,
                 "; ".join(item.violations), item.true_dip_cost,
                 item.true_cannibalization_cost))
        conn.commit()


def table_lines(scores: list[PolicyScore]) -> list[str]:
    """The scores as a printed table."""
    header = (f"    {'policy':<13} {'promoted':>8} {'true spend':>11} {'true profit':>12} "
              f"{'gain':>10} {'dip cost':>9} {'cannib.':>9} {'efficiency':>10}  constraints")
    lines = [header]
    for item in scores:
        efficiency = "" if item.efficiency is None else f"{item.efficiency:.2f}"
        lines.append(
            f"    {item.policy:<13} {item.products_promoted:>8} {item.true_spend:>11,.2f} "
            f"{item.true_net_profit:>12,.2f} {item.true_incremental_profit:>10,.2f} "
            f"{item.true_dip_cost:>9,.2f} {item.true_cannibalization_cost:>9,.2f} "
            f"{efficiency:>10}  {'; '.join(item.violations) or 'all held'}")
    return lines


def latest_run_id(dataset: str, settings: Settings | None = None) -> str:
    run_id = latest_published_run_id(dataset, settings)
    if run_id is None:
        raise ScoringError(f"no published plan of dataset {dataset}; run make weekly first.")
    return run_id


def main(argv: list[str] | None = None) -> int:
    from promoflow.logs import setup_logging

    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="demo", help="score its latest published plan")
    parser.add_argument("--run-id", default=None, help="score this run instead")
    args = parser.parse_args(argv)
    settings = get_settings()
    try:
        run_id = args.run_id or latest_run_id(args.dataset, settings)
        run, scores = score_run(run_id, settings)
        publish_scores(run, scores, settings)
    except (ScoringError, RunConfigError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Plan {run_id} (week {run.plan_week}, dataset {run.params.dataset}) in truth:")
    print("\n".join(table_lines(scores)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
