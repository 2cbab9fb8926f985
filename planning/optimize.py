"""Pick one discount level per product by a mixed-integer program solved with HiGHS.

For each product p and candidate level l (0 = no promotion) the forecaster gives demand
quantiles, the units the promotion takes from the product's next weeks (`dip_units`, the
post-promotion dip) and the units its category siblings lose (`cannibalized_units`). Sold units
are capped by stock on hand. The program maximizes the net incremental profit of the plan:

    sum_pl x_pl * (week profit gain_pl - dip cost_pl) - sum_c loss_c

    loss_c = min(sum_pl in c x_pl * cannibalization cost_pl, cap_c)

where the dip and the siblings' lost units are valued at list-price margins (the product's own,
and the category's baseline-weighted mean), and cap_c is the most a category can lose
(`cannibalization_cap` x its baseline units: siblings never lose more than that share of their
demand). The minimum is a real term of the program: a loss variable per category and one binary
that says whether the cap binds. Subject to: exactly one level per product, spend (discount
given away on the P50 units) within the budget, at most K promotions per category. Levels whose
promoted price breaks the margin floor are not offered to the solver.

The budget holds with a stated confidence (`BUDGET_CONFIDENCE`): the plan's spend plus z times
the standard deviation of its sum (from each line's P10-P90 spread, lines independent) must stay
within the budget. The program is linear in the P50 spend, so the budget row is tightened by the
margin of the last solution and solved again until the plan fits (`plan_discounts`).

Presolve (exact): a promoted level with no net gain is dropped (no promotion dominates it), and
so is a level that a shallower one of the same product beats on gain at no more spend and
cannibalization; products left with no level are fixed at no promotion.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd
from scipy import sparse

from planning.offers import OFFER_COLUMNS
from promoflow.run import RunParams

log = logging.getLogger(__name__)

EPS = 1e-9
#: The solver stops once the plan is proven within this share of the best possible objective.
MIP_REL_GAP = 1e-4
#: Probability that the plan's spend stays within the budget, if the quantiles are calibrated.
BUDGET_CONFIDENCE = 0.9
#: z of BUDGET_CONFIDENCE, and the width of a P10-P90 interval in standard deviations.
BUDGET_Z = NormalDist().inv_cdf(BUDGET_CONFIDENCE)
P10_P90_SDS = NormalDist().inv_cdf(0.9) - NormalDist().inv_cdf(0.1)
#: Planning assumption: a category's siblings lose at most this share of their baseline units.
CANNIBALIZATION_CAP = 0.3
#: Rounds of budget tightening before giving up on the confidence (each is one solve).
BUDGET_ROUNDS = 8
#: Solves of the bisection that takes over when those rounds do not settle.
BISECT_ROUNDS = 12


class PlanningError(RuntimeError):
    pass


@dataclass(frozen=True)
class Solution:
    """The chosen level of every product and what the solver says of it."""

    chosen: pd.DataFrame  # one row per product (level 0 included), with `binding_constraint`
    status: str  # HiGHS model status, e.g. "Optimal" or "Time limit reached"
    objective: float  # expected net incremental profit of the plan (dip, cannibalization)
    mip_gap: float  # relative gap between the objective and the solver's bound (0 = proven)
    spend: float = 0.0  # discount given away on the P50 units
    spend_at_confidence: float = 0.0  # spend + BUDGET_Z x sd of the spend
    budget_row: float = 0.0  # the budget the last solve used (tightened for the confidence)
    offers: pd.DataFrame | None = None  # the chosen personal offers (planning/offers.py)
    offer_spend: float = 0.0  # their part of the spend


def candidate_table(forecasts: pd.DataFrame, products: pd.DataFrame, params: RunParams) -> pd.DataFrame:
    """One row per product and allowed discount level with its economics."""
    levels = params.discount_levels
    fc = forecasts[np.isin(forecasts["discount_depth"].round(6), np.round(levels, 6))]
    df = fc.merge(products[["product_id", "category", "list_price", "unit_cost", "on_hand_units"]],
                  on="product_id", how="inner")
    if df.empty:
        raise PlanningError("No forecast matches a known product; check the forecasts and marts.products.")
    df = df.copy()
    for column in ("dip_units", "cannibalized_units"):
        df[column] = df[column].astype(float).clip(lower=0) if column in df else 0.0
    df["discount_depth"] = df["discount_depth"].round(6)
    df["promo_price"] = (df["list_price"] * (1 - df["discount_depth"])).round(2)
    stock = df["on_hand_units"].clip(lower=0).astype(float)
    units = {q: np.minimum(df[f"units_{q}"].astype(float), stock) for q in ("p10", "p50", "p90")}
    df["expected_units"] = units["p50"]
    df["stock_capped"] = df["units_p50"] > stock + EPS
    unit_discount = df["list_price"] - df["promo_price"]
    list_margin = df["list_price"] - df["unit_cost"]
    df["revenue"] = df["expected_units"] * df["promo_price"]
    df["profit"] = df["expected_units"] * (df["promo_price"] - df["unit_cost"])
    df["promotion_cost"] = df["expected_units"] * unit_discount
    df["promotion_cost_p90"] = units["p90"] * unit_discount
    df["spend_sd"] = (units["p90"] - units["p10"]).clip(lower=0) / P10_P90_SDS * unit_discount
    base = df[df["discount_depth"] == 0].set_index("product_id")
    if len(base) != df["product_id"].nunique():
        raise PlanningError("Every product needs a forecast at discount 0 (the no-promotion baseline).")
    df["baseline_units"] = df["product_id"].map(base["expected_units"])
    df["baseline_units_p50"] = df["product_id"].map(base["units_p50"])
    df["incremental_revenue"] = df["revenue"] - df["product_id"].map(base["revenue"])
    df["week_incremental_profit"] = df["profit"] - df["product_id"].map(base["profit"])
    # the dip and the siblings' losses follow the extra units actually sold (stock cap)
    extra = (df["units_p50"] - df["baseline_units_p50"]).astype(float)
    sold_extra = (df["expected_units"] - df["baseline_units"]).clip(lower=0)
    scale = np.where(extra > EPS, np.minimum(sold_extra / extra.where(extra > EPS, 1.0), 1.0), 0.0)
    df["dip_units"] = df["dip_units"] * scale
    df["cannibalized_units"] = df["cannibalized_units"] * scale
    df["dip_cost"] = df["dip_units"] * list_margin
    df["cannibalization_cost"] = df["cannibalized_units"] * df["category"].map(
        category_margin(df))
    df["incremental_profit"] = (df["week_incremental_profit"] - df["dip_cost"]
                                - df["cannibalization_cost"])
    margin = (df["promo_price"] - df["unit_cost"]) / df["promo_price"].where(df["promo_price"] > 0)
    df["meets_margin_floor"] = (df["discount_depth"] == 0) | (margin >= params.margin_floor - EPS)
    return df.sort_values(["product_id", "discount_depth"]).reset_index(drop=True)


def category_margin(candidates: pd.DataFrame) -> pd.Series:
    """Per category: the list-price unit margin of its baseline units (what a lost unit costs)."""
    base = candidates[candidates["discount_depth"] == 0]
    weight = base["baseline_units"].astype(float)
    value = weight * (base["list_price"] - base["unit_cost"])
    grouped = pd.DataFrame({"category": base["category"], "w": weight, "v": value}).groupby(
        "category")[["w", "v"]].sum()
    plain = base.groupby("category").apply(
        lambda g: float((g["list_price"] - g["unit_cost"]).mean()), include_groups=False)
    return (grouped["v"] / grouped["w"].where(grouped["w"] > 0)).fillna(plain)


def _category_caps(candidates: pd.DataFrame, cap: float | pd.Series) -> pd.Series:
    """Per category: the most its siblings' losses can cost (cap share x baseline x margin)."""
    base = candidates[candidates["discount_depth"] == 0]
    units = base.groupby("category")["baseline_units"].sum().astype(float)
    share = cap.reindex(units.index) if isinstance(cap, pd.Series) else pd.Series(cap, units.index)
    return share.fillna(CANNIBALIZATION_CAP) * units * category_margin(candidates)


def _presolve(candidates: pd.DataFrame) -> pd.DataFrame:
    """Offered promoted levels: margin floor met, a net gain, not dominated by a shallower one."""
    offered = candidates[candidates["meets_margin_floor"] & (candidates["discount_depth"] > 0)]
    offered = offered.sort_values(["product_id", "discount_depth"])
    gain = offered["week_incremental_profit"] - offered["dip_cost"]
    offered = offered.assign(gain=gain)[gain > EPS]
    product = offered["product_id"]
    # spend and cannibalization non-decreasing in depth (checked per product): a shallower
    # level then costs no more on both, so a level is dominated when one of them gains as much
    best_before = offered.groupby(product)["gain"].cummax().groupby(product).shift(
        fill_value=-np.inf)
    steps_up = pd.concat([offered.groupby(product)[c].diff().fillna(0.0) >= -EPS
                          for c in ("promotion_cost", "cannibalization_cost")], axis=1).all(axis=1)
    monotone = steps_up.groupby(product).transform("all")
    dominated = monotone & (best_before >= offered["gain"])
    return offered[~dominated].drop(columns="gain").reset_index(drop=True)


def greedy_start(offered: pd.DataFrame, gain: np.ndarray, can_cost: np.ndarray,
                 category_row: np.ndarray, n_cols: int, n_cats: int, budget: float,
                 max_per_category: int) -> list[float]:
    """A feasible start for the MIP: the levels by net gain (`gain`: profit less dip and
    cannibalization) per unit of budget, each taken while
    its product has no level yet, its category has room and the budget lasts; every category's
    loss column is its levels' cannibalization cost (its cap binary 0), no personal offers. So
    a time limit on a large catalogue still ends with this plan or a better one, never none."""
    values = np.zeros(n_cols)
    cost = offered["promotion_cost"].to_numpy(dtype=float)
    products = offered["product_id"].to_numpy()
    order = np.argsort(-gain / np.maximum(cost, 1e-9), kind="stable")
    taken_products: set = set()
    per_category = np.zeros(n_cats, dtype=int)
    left = budget
    for i in order:
        if gain[i] <= 0:
            continue
        category = category_row[i]
        if (products[i] in taken_products or per_category[category] >= max_per_category
                or cost[i] > left):
            continue
        values[i] = 1.0
        taken_products.add(products[i])
        per_category[category] += 1
        left -= cost[i]
    n = len(offered)
    values[n:n + n_cats] = np.bincount(category_row, weights=can_cost * values[:n],
                                       minlength=n_cats)
    return values.tolist()


def solve(candidates: pd.DataFrame, params: RunParams, time_limit_s: float = 60.0,
          mip_rel_gap: float = MIP_REL_GAP, budget: float | None = None,
          cannibalization_cap: float | pd.Series = CANNIBALIZATION_CAP,
          offers: pd.DataFrame | None = None) -> Solution:
    """Solve the MIP once (budget row = `budget`, default the run's); one row per product.

    The model is passed to HiGHS as arrays (a sparse matrix), not one expression per variable.
    Columns: a binary per offered promoted level, then per category a loss (money) and, where
    the cap can bind, a binary, then a binary per personal offer (`offers`, planning/offers.py:
    a coupon for one segment on a promoted level). Rows: at most one level per product, the
    budget (the offers' spend included), the promotions of each category, the loss rows of each
    category, and per level and segment: its offers at most the level's binary (an offer only
    on the chosen level, one coupon depth per segment).
    """
    import highspy

    budget = float(params.budget if budget is None else budget)
    offered = _presolve(candidates)
    n = len(offered)
    if n == 0:  # no level gains anything: nothing to solve
        chosen = _chosen_rows(candidates, offered)
        chosen["binding_constraint"] = _reasons(candidates, chosen, params, budget)
        return Solution(chosen=chosen, status="Optimal", objective=0.0, mip_gap=0.0,
                        budget_row=budget, offers=_no_offers(offers))
    offers = _offers_of(offered, offers)
    n_offers = len(offers)
    # a product with one offered level needs no "one level" row: its column's bound is enough
    codes = offered["product_id"].factorize()[0]
    several = np.bincount(codes)[codes] > 1
    product_row = np.full(n, -1)
    product_row[several] = pd.factorize(codes[several])[0]
    n_products = int(product_row.max()) + 1
    category_row, categories = offered["category"].factorize()
    n_cats = len(categories)
    can_cost = offered["cannibalization_cost"].to_numpy(dtype=float)
    caps = _category_caps(candidates, cannibalization_cap).reindex(categories).fillna(0.0)
    # the largest loss a category can reach: its K largest per-product losses
    worst = offered.assign(c=can_cost).groupby(["category", "product_id"])["c"].max()
    big_m = worst.groupby(level=0).apply(
        lambda s: float(s.nlargest(params.max_promos_per_category).sum())).reindex(categories)
    big_m = big_m.fillna(0.0).to_numpy()
    cap = caps.to_numpy()
    capped = cap < big_m - 1e-6  # categories where the cap can bind
    n_z = int(capped.sum())
    loss_col = n + np.arange(n_cats)
    z_col = n + n_cats + np.arange(n_z)
    z_cat = np.flatnonzero(capped)

    budget_row = n_products
    count_row = budget_row + 1 + category_row
    loss_row = budget_row + 1 + n_cats + np.arange(n_cats)
    cap_row = budget_row + 1 + 2 * n_cats + np.arange(n_z)
    n_rows = budget_row + 1 + 2 * n_cats + n_z
    cols = np.arange(n)
    triplets = [
        (product_row[several], cols[several], np.ones(int(several.sum()))),
        (np.full(n, budget_row), cols, offered["promotion_cost"].to_numpy(dtype=float)),
        (count_row, cols, np.ones(n)),
        (loss_row[category_row], cols, can_cost),       # sum cost x - loss - M z <= 0
        (loss_row, loss_col, -np.ones(n_cats)),
        (loss_row[z_cat], z_col, cap[z_cat] - big_m[z_cat]),  # ... - (A - cap) z <= 0
        (cap_row, loss_col[z_cat], np.ones(n_z)),       # loss - cap z >= 0
        (cap_row, z_col, -cap[z_cat]),
    ]
    # the offers: columns after the loss binaries, one "offers <= level" row per level and segment
    offer_col = n + n_cats + n_z + np.arange(n_offers)
    link = (pd.MultiIndex.from_frame(offers[["parent", "segment_id"]]).factorize()[0]
            if n_offers else np.zeros(0, dtype=int))
    n_links = int(link.max()) + 1 if n_offers else 0
    link_row = n_rows + np.arange(n_links)
    parent_of_link = np.zeros(n_links, dtype=int)
    parent_of_link[link] = offers["parent"].to_numpy(dtype=int)
    triplets += [
        (np.full(n_offers, budget_row), offer_col, offers["offer_spend"].to_numpy(dtype=float)),
        (link_row[link], offer_col, np.ones(n_offers)),
        (link_row, parent_of_link, -np.ones(n_links)),
    ]
    n_rows += n_links
    rows, columns, values = (np.concatenate(part) for part in zip(*triplets, strict=True))
    n_cols = n + n_cats + n_z + n_offers
    matrix = sparse.csc_matrix((values, (rows, columns)), shape=(n_rows, n_cols))
    lower = np.concatenate([np.full(n_products, -np.inf), [-np.inf], np.full(n_cats, -np.inf),
                            np.full(n_cats, -np.inf), np.zeros(n_z), np.full(n_links, -np.inf)])
    upper = np.concatenate([np.ones(n_products), [budget],
                            np.full(n_cats, float(params.max_promos_per_category)),
                            np.zeros(n_cats), np.full(n_z, np.inf), np.zeros(n_links)])
    cost = np.concatenate([(offered["week_incremental_profit"] - offered["dip_cost"]).to_numpy(
        dtype=float), -np.ones(n_cats), np.zeros(n_z), offers["offer_gain"].to_numpy(float)])

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("random_seed", int(params.seed))
    h.setOptionValue("threads", 1)
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n_cols, n_rows
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.col_cost_ = cost
    lp.col_lower_ = np.zeros(n_cols)
    lp.col_upper_ = np.concatenate([np.ones(n), np.full(n_cats, np.inf), np.ones(n_z),
                                    np.ones(n_offers)])
    lp.row_lower_, lp.row_upper_ = lower, upper
    lp.integrality_ = ([highspy.HighsVarType.kInteger] * n + [highspy.HighsVarType.kContinuous]
                       * n_cats + [highspy.HighsVarType.kInteger] * (n_z + n_offers))
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = matrix.indptr.astype(np.int32)
    lp.a_matrix_.index_ = matrix.indices.astype(np.int32)
    lp.a_matrix_.value_ = matrix.data
    h.passModel(lp)
    start = highspy.HighsSolution()  # a feasible plan from the start: a time limit keeps it
    start.col_value = greedy_start(offered, cost[:n] - can_cost, can_cost, category_row, n_cols,
                                   n_cats, budget, params.max_promos_per_category)
    start.value_valid = True
    h.setSolution(start)
    h.run()
    status = h.getModelStatus()
    if status not in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kTimeLimit):
        raise PlanningError(f"The discount program ended with status {h.modelStatusToString(status)}.")
    info = h.getInfo()
    values = np.asarray(h.getSolution().col_value)
    if info.primal_solution_status != 2:  # a time limit before any feasible plan
        raise PlanningError(
            f"The discount program found no plan within {time_limit_s:g} s "
            f"({h.modelStatusToString(status)}, {n} candidate levels of "
            f"{offered['product_id'].nunique()} products); "
            "offer fewer levels (a larger discount_step) or fewer products.")
    picked = offered[values[:n] > 0.5]
    chosen = _chosen_rows(candidates, picked)
    chosen["binding_constraint"] = _reasons(candidates, chosen, params, budget)
    # HiGHS reports an infinite gap for a model it solved without branching on a zero objective;
    # after a time limit without a proven bound the gap is unknown: reported as 1 (100%)
    optimal = status == highspy.HighsModelStatus.kOptimal
    gap = float(info.mip_gap) if np.isfinite(info.mip_gap) else (0.0 if optimal else 1.0)
    objective = float(info.objective_function_value)
    promoted = chosen[chosen["discount_depth"] > 0]
    taken = offers[values[offer_col] > 0.5].drop(columns="parent").reset_index(drop=True)
    solution = _solution(chosen, taken, status=h.modelStatusToString(status),
                         objective=objective, mip_gap=max(gap, 0.0), budget_row=budget)
    log.info("MIP %s (gap %.2g): %d products, %d offered levels, %d promoted, %d of %d personal "
             "offers, objective %.2f", solution.status, solution.mip_gap,
             candidates["product_id"].nunique(), n, len(promoted), len(taken), n_offers,
             solution.objective)
    return solution


def _solution(chosen: pd.DataFrame, offers: pd.DataFrame, **fields) -> Solution:
    """A Solution with its spend (lines and offers) and the spend at BUDGET_CONFIDENCE."""
    promoted = chosen[chosen["discount_depth"] > 0]
    offer_spend = float(offers["offer_spend"].sum())
    spend = float(promoted["promotion_cost"].sum()) + offer_spend
    variance = float((promoted["spend_sd"] ** 2).sum() + (offers["offer_spend_sd"] ** 2).sum())
    return Solution(chosen=chosen, spend=spend, spend_at_confidence=spend + BUDGET_Z
                    * np.sqrt(variance), offers=offers, offer_spend=offer_spend, **fields)


def _no_offers(offers: pd.DataFrame | None) -> pd.DataFrame:
    return (offers.iloc[0:0] if offers is not None else pd.DataFrame(columns=OFFER_COLUMNS))


def _offers_of(offered: pd.DataFrame, offers: pd.DataFrame | None) -> pd.DataFrame:
    """The offers whose level the solver is offered, with `parent`: that level's column."""
    if offers is None or offers.empty:
        return _no_offers(offers).assign(parent=pd.Series(dtype=int))
    level = pd.Series(np.arange(len(offered)), index=pd.MultiIndex.from_frame(
        offered[["product_id", "discount_depth"]].astype({"discount_depth": float}).round(6)))
    keys = pd.MultiIndex.from_frame(
        offers[["product_id", "discount_depth"]].astype({"discount_depth": float}).round(6))
    parent = level.reindex(keys).to_numpy()
    usable = ~np.isnan(parent)
    return offers[usable].assign(parent=parent[usable].astype(int)).reset_index(drop=True)


def _chosen_rows(candidates: pd.DataFrame, picked: pd.DataFrame) -> pd.DataFrame:
    """Every product's chosen row: its picked level, else its level 0."""
    base = candidates[candidates["discount_depth"] == 0]
    base = base[~base["product_id"].isin(picked["product_id"])]
    return pd.concat([picked, base]).sort_values("product_id").reset_index(drop=True)


def _reasons(candidates: pd.DataFrame, chosen: pd.DataFrame, params: RunParams,
             budget: float) -> list[str]:
    """Why each product got its level: the constraint that kept it from a more profitable one."""
    best_any = candidates.groupby("product_id")["incremental_profit"].max()
    feasible = candidates[candidates["meets_margin_floor"]]
    best_row = feasible.loc[feasible.groupby("product_id")["incremental_profit"].idxmax()]
    best_row = best_row.set_index("product_id")
    week_best = feasible.groupby("product_id")["week_incremental_profit"].max()
    ids = chosen["product_id"]
    profit = chosen["incremental_profit"].to_numpy()
    promoted = chosen["discount_depth"].to_numpy() > 0
    better_ok = ids.map(best_row["incremental_profit"]).to_numpy() > profit + 1e-6
    better_any = ids.map(best_any).to_numpy() > profit + 1e-6
    slack = budget - float(chosen.loc[promoted, "promotion_cost"].sum())
    extra_spend = ids.map(best_row["promotion_cost"]).to_numpy() - chosen["promotion_cost"]
    per_category = chosen.loc[promoted].groupby("category").size()
    full = chosen["category"].map(per_category).fillna(0).to_numpy() >= \
        params.max_promos_per_category
    capped = chosen["stock_capped"].to_numpy(dtype=bool)
    eaten = ~promoted & (ids.map(week_best).to_numpy() > 1e-6) & ~better_ok
    return np.select(
        [better_ok & ~promoted & full, better_ok & (extra_spend.to_numpy() > slack - 1e-6),
         better_ok, better_any & ~better_ok, eaten, promoted & capped, promoted],
        [f"category limit ({params.max_promos_per_category})", "budget",
         "category cannibalization", "margin floor", "post-promotion dip and cannibalization",
         "stock on hand", "most profitable level"],
        default="no profitable discount",
    ).tolist()


def plan_discounts(forecasts: pd.DataFrame, products: pd.DataFrame, params: RunParams,
                   cannibalization_cap: float | pd.Series = CANNIBALIZATION_CAP,
                   time_limit_s: float = 60.0, mip_rel_gap: float = MIP_REL_GAP,
                   offers: Callable[[pd.DataFrame], pd.DataFrame] | None = None) -> Solution:
    """Candidates -> MIP -> one row per product (level 0 included), the budget held at
    BUDGET_CONFIDENCE (the spend of the chosen personal offers included).

    `offers`: the offer candidates (planning/offers.py) of the candidate table it is given.

    The budget row is tightened by the plan's spend margin until the plan fits. A plan's margin
    can grow as the row shrinks (more, smaller lines), so that may not settle within
    BUDGET_ROUNDS; the row is then bisected between 0 (the empty plan always fits) and the
    last row that did not fit, keeping the best plan that fits."""
    candidates = candidate_table(forecasts, products, params)
    offer_table = offers(candidates) if offers is not None else None
    budget = float(params.budget)

    def attempt(row: float) -> tuple[Solution, bool]:
        solution = solve(candidates, params, time_limit_s, mip_rel_gap, budget=row,
                         cannibalization_cap=cannibalization_cap, offers=offer_table)
        return solution, solution.spend_at_confidence - budget <= 1e-6 * max(budget, 1.0)

    row = budget
    for _ in range(BUDGET_ROUNDS):
        solution, fits = attempt(row)
        if fits:
            return solution
        failing = row
        row = max(row - (solution.spend_at_confidence - budget) - 1e-6 * budget, 0.0)
    log.warning("The budget margin did not settle in %d rounds; bisecting the budget row "
                "between 0 and %.2f.", BUDGET_ROUNDS, failing)
    best, _ = attempt(0.0)
    low, high = 0.0, failing
    for _ in range(BISECT_ROUNDS):
        middle = (low + high) / 2
        solution, fits = attempt(middle)
        if fits:
            low = middle
            if solution.objective > best.objective:
                best = solution
        else:
            high = middle
    return best
