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
#: The solver stops once the plan is proven within this share of the best possible objective.
MIP_REL_GAP = 1e-4


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


def solve(candidates: pd.DataFrame, params: RunParams, time_limit_s: float = 60.0,
          mip_rel_gap: float = MIP_REL_GAP) -> Solution:
    """Solve the MIP; the chosen row per product with a `binding_constraint` reason.

    The model is passed to HiGHS as arrays (a column per candidate level, rows: one level per
    product, the budget, the promotions of each category), not one expression per variable.
    """
    import highspy

    allowed = candidates[candidates["meets_margin_floor"]].reset_index(drop=True)
    n = len(allowed)
    product_row = allowed["product_id"].factorize()[0]
    n_products = int(product_row.max()) + 1 if n else 0
    promoted = allowed["discount_depth"].to_numpy() > 0
    category_row = allowed["category"].factorize()[0]
    budget_row = n_products
    # column j: its product's row (=1), and for a promoted level the budget row (its cost) and
    # its category's row (1)
    rows = [product_row, np.full(n, budget_row), budget_row + 1 + category_row]
    values = [np.ones(n), allowed["promotion_cost"].to_numpy(dtype=float), np.ones(n)]
    keep = [np.ones(n, bool), promoted, promoted]
    col = np.concatenate([np.flatnonzero(k) for k in keep])
    row = np.concatenate([r[k] for r, k in zip(rows, keep, strict=True)])
    value = np.concatenate([v[k] for v, k in zip(values, keep, strict=True)])
    order = np.lexsort((row, col))
    n_rows = budget_row + 1 + (int(category_row.max()) + 1 if n else 0)
    lower = np.concatenate([np.ones(n_products), [-np.inf], np.full(n_rows - n_products - 1,
                                                                     -np.inf)])
    upper = np.concatenate([np.ones(n_products), [float(params.budget)],
                            np.full(n_rows - n_products - 1,
                                    float(params.max_promos_per_category))])

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("random_seed", int(params.seed))
    h.setOptionValue("threads", 1)
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, n_rows
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.col_cost_ = allowed["incremental_profit"].to_numpy(dtype=float)
    lp.col_lower_, lp.col_upper_ = np.zeros(n), np.ones(n)
    lp.row_lower_, lp.row_upper_ = lower, upper
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.concatenate([[0], np.cumsum(np.bincount(col, minlength=n))])
    lp.a_matrix_.index_ = row[order].astype(np.int32)
    lp.a_matrix_.value_ = value[order]
    h.passModel(lp)
    h.run()
    status = h.getModelStatus()
    if status not in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kTimeLimit):
        raise PlanningError(f"The discount program ended with status {h.modelStatusToString(status)}.")
    chosen_mask = np.asarray(h.getSolution().col_value) > 0.5
    if chosen_mask.sum() != n_products:  # a time limit before any feasible plan was found
        raise PlanningError(
            f"The discount program found no plan within {time_limit_s:g} s "
            f"({h.modelStatusToString(status)}, {n} candidate levels of {n_products} products); "
            "offer fewer levels (a larger discount_step) or fewer products.")
    chosen = allowed[chosen_mask].copy()
    chosen["binding_constraint"] = _reasons(candidates, chosen)
    info = h.getInfo()
    # HiGHS reports an infinite gap for a model it solved without branching on a zero objective
    gap = float(info.mip_gap) if np.isfinite(info.mip_gap) else 0.0
    solution = Solution(chosen=chosen.reset_index(drop=True), status=h.modelStatusToString(status),
                        objective=float(info.objective_function_value), mip_gap=max(gap, 0.0))
    log.info("MIP %s (gap %.2g): %d products, %d candidate levels, %d promoted, objective %.2f",
             solution.status, solution.mip_gap, n_products, n,
             int((chosen["discount_depth"] > 0).sum()), solution.objective)
    return solution


def _reasons(candidates: pd.DataFrame, chosen: pd.DataFrame) -> list[str]:
    """Why each product got its level: the constraint that kept it from a more profitable one."""
    best_any = candidates.groupby("product_id")["incremental_profit"].max()
    feasible = candidates[candidates["meets_margin_floor"]]
    best_ok = feasible.groupby("product_id")["incremental_profit"].max()
    profit = chosen["incremental_profit"].to_numpy()
    better_ok = chosen["product_id"].map(best_ok).to_numpy() > profit + 1e-6
    better_any = chosen["product_id"].map(best_any).to_numpy() > profit + 1e-6
    promoted = chosen["discount_depth"].to_numpy() > 0
    capped = chosen["stock_capped"].to_numpy(dtype=bool)
    return np.select(
        [better_ok, better_any, promoted & capped, promoted],
        ["budget or category limit", "margin floor", "stock on hand", "most profitable level"],
        default="no profitable discount",
    ).tolist()


def plan_discounts(forecasts: pd.DataFrame, products: pd.DataFrame, params: RunParams) -> Solution:
    """Candidates -> MIP -> one row per product (level 0 included)."""
    candidates = candidate_table(forecasts, products, params)
    solution = solve(candidates, params)
    chosen = solution.chosen
    spent = float(chosen.loc[chosen["discount_depth"] > 0, "promotion_cost"].sum())
    if spent > params.budget + 1e-6:
        raise PlanningError(f"Solver returned a plan over budget ({spent:.2f} > {params.budget:.2f}).")
    return solution
