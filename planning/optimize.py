"""Pick one discount level per product by a mixed-integer program solved with HiGHS.

For each product p and candidate level l (0 = no promotion) the forecaster gives demand
quantiles. Sold units are capped by stock on hand. The program maximizes expected incremental
profit (vs. no promotion) subject to: exactly one level per product, total promotion cost
(discount given away on expected units) within the budget, at most K promotions per category.
Levels whose promoted price breaks the margin floor are not offered to the solver.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from promoflow.run import RunParams

log = logging.getLogger(__name__)

EPS = 1e-9


class PlanningError(RuntimeError):
    pass


@dataclass(frozen=True)
class Solution:
    """The chosen level of every product and what the solver says of it."""

    chosen: pd.DataFrame  # one row per product (level 0 included), with `binding_constraint`
    status: str  # HiGHS model status, e.g. "Optimal" or "Time limit reached"
    objective: float  # expected incremental profit of the plan
    mip_gap: float  # relative gap between the objective and the solver's bound (0 = proven)


def candidate_table(forecasts: pd.DataFrame, products: pd.DataFrame, params: RunParams) -> pd.DataFrame:
    """One row per product and allowed discount level with its economics."""
    levels = params.discount_levels
    fc = forecasts[np.isin(forecasts["discount_depth"].round(6), np.round(levels, 6))]
    df = fc.merge(products[["product_id", "category", "list_price", "unit_cost", "on_hand_units"]],
                  on="product_id", how="inner")
    if df.empty:
        raise PlanningError("No forecast matches a known product; check the forecasts and marts.products.")
    df = df.copy()
    df["discount_depth"] = df["discount_depth"].round(6)
    df["promo_price"] = (df["list_price"] * (1 - df["discount_depth"])).round(2)
    stock = df["on_hand_units"].clip(lower=0).astype(float)
    df["expected_units"] = np.minimum(df["units_p50"].astype(float), stock)
    df["stock_capped"] = df["units_p50"] > stock + EPS
    df["revenue"] = df["expected_units"] * df["promo_price"]
    df["profit"] = df["expected_units"] * (df["promo_price"] - df["unit_cost"])
    df["promotion_cost"] = df["expected_units"] * (df["list_price"] - df["promo_price"])
    base = df[df["discount_depth"] == 0].set_index("product_id")
    if len(base) != df["product_id"].nunique():
        raise PlanningError("Every product needs a forecast at discount 0 (the no-promotion baseline).")
    df["baseline_units"] = df["product_id"].map(base["expected_units"])
    df["baseline_units_p50"] = df["product_id"].map(base["units_p50"])
    df["incremental_revenue"] = df["revenue"] - df["product_id"].map(base["revenue"])
    df["incremental_profit"] = df["profit"] - df["product_id"].map(base["profit"])
    margin = (df["promo_price"] - df["unit_cost"]) / df["promo_price"].where(df["promo_price"] > 0)
    df["meets_margin_floor"] = (df["discount_depth"] == 0) | (margin >= params.margin_floor - EPS)
    return df.sort_values(["product_id", "discount_depth"]).reset_index(drop=True)


def solve(candidates: pd.DataFrame, params: RunParams, time_limit_s: float = 60.0) -> Solution:
    """Solve the MIP; the chosen row per product with a `binding_constraint` reason."""
    import highspy

    allowed = candidates[candidates["meets_margin_floor"]].reset_index(drop=True)
    n = len(allowed)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("random_seed", int(params.seed))
    h.setOptionValue("threads", 1)
    x = h.addBinaries(n)
    for idx in allowed.groupby("product_id").indices.values():
        h.addConstr(h.qsum(x[i] for i in idx) == 1)
    promo_idx = np.flatnonzero(allowed["discount_depth"].to_numpy() > 0)
    cost = allowed["promotion_cost"].to_numpy()
    if len(promo_idx):
        h.addConstr(h.qsum(float(cost[i]) * x[i] for i in promo_idx) <= float(params.budget))
        promo = allowed.iloc[promo_idx]
        for idx in promo.groupby("category").indices.values():
            h.addConstr(h.qsum(x[promo_idx[i]] for i in idx) <= params.max_promos_per_category)
    gain = allowed["incremental_profit"].to_numpy()
    h.maximize(h.qsum(float(gain[i]) * x[i] for i in range(n)))
    status = h.getModelStatus()
    if status not in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kTimeLimit):
        raise PlanningError(f"The discount program ended with status {h.modelStatusToString(status)}.")
    chosen_mask = np.asarray(h.getSolution().col_value) > 0.5
    chosen = allowed[chosen_mask].copy()
    chosen["binding_constraint"] = _reasons(candidates, chosen, params)
    info = h.getInfo()
    # HiGHS reports an infinite gap for a model it solved without branching on a zero objective
    gap = float(info.mip_gap) if np.isfinite(info.mip_gap) else 0.0
    solution = Solution(chosen=chosen.reset_index(drop=True), status=h.modelStatusToString(status),
                        objective=float(info.objective_function_value), mip_gap=max(gap, 0.0))
    log.info("MIP %s (gap %.2g): %d products, %d candidate levels, %d promoted, objective %.2f",
             solution.status, solution.mip_gap, allowed["product_id"].nunique(), n,
             int((chosen["discount_depth"] > 0).sum()), solution.objective)
    return solution


def _reasons(candidates: pd.DataFrame, chosen: pd.DataFrame, params: RunParams) -> list[str]:
    """Why each product got its level: the constraint that kept it from a more profitable one."""
    best_any = candidates.loc[candidates.groupby("product_id")["incremental_profit"].idxmax()]
    best_any = best_any.set_index("product_id")
    feasible = candidates[candidates["meets_margin_floor"]]
    best_ok = feasible.loc[feasible.groupby("product_id")["incremental_profit"].idxmax()].set_index("product_id")
    reasons = []
    for row in chosen.itertuples():
        better_ok = best_ok.loc[row.product_id, "incremental_profit"] > row.incremental_profit + 1e-6
        better_any = best_any.loc[row.product_id, "incremental_profit"] > row.incremental_profit + 1e-6
        if better_ok:
            reasons.append("budget or category limit")
        elif better_any:
            reasons.append("margin floor")
        elif row.discount_depth > 0 and row.stock_capped:
            reasons.append("stock on hand")
        elif row.discount_depth > 0:
            reasons.append("most profitable level")
        else:
            reasons.append("no profitable discount")
    return reasons


def plan_discounts(forecasts: pd.DataFrame, products: pd.DataFrame, params: RunParams) -> Solution:
    """Candidates -> MIP -> one row per product (level 0 included)."""
    candidates = candidate_table(forecasts, products, params)
    solution = solve(candidates, params)
    chosen = solution.chosen
    spent = float(chosen.loc[chosen["discount_depth"] > 0, "promotion_cost"].sum())
    if spent > params.budget + 1e-6:
        raise PlanningError(f"Solver returned a plan over budget ({spent:.2f} > {params.budget:.2f}).")
    return solution
