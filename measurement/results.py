"""What each plan line really did in its week, and how good the week's forecast was.

`line_results`: per promoted line, the week's actual units against the forecast at the chosen
discount and against the counterfactual baseline, what the product would have sold unpromoted:
realized incremental units, revenue and profit (actual units at the promoted price minus the
baseline units at list price), the promotion cost (the discount given away on the actual units)
and its ROI (incremental profit / promotion cost). The plan's own expectation sits next to it.

The baseline is the no-promotion forecast (P50 at discount 0, at most the stock on hand) times
the week's level in the line's category (`control_levels`): the products the plan did not
promote are the control group of the week. Their actual units, with the units the plan
expected them to lose to its promotions (cannibalization) added back, over their no-promotion
forecast, tell how far the category sold above or below the forecast that week (a holiday
stronger than forecast, a level the model has under-read). Such a level error is shared by the
products of a category, and without this it would land in full in the realized increment,
which is the small difference of two large numbers.

`forecast_accuracy`: every product's forecast at the level the plan gave it (0 when not
promoted; with the units the plan expected its contacts to add, `contact_units`) against the
week's actual units: WAPE, bias (forecast / actual - 1) and the share of products inside
P10-P90, the forecaster's own metrics (training/forecaster/evaluate.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.forecaster import evaluate


class ResultsError(ValueError):
    """A plan week cannot be measured (no sales of the week, no plan lines)."""


def _actual(plan_products: pd.Series, actual_units: pd.Series) -> np.ndarray:
    if actual_units.empty:
        raise ResultsError("The plan week has no sales in the warehouse yet; measure it once "
                           "the week's data are ingested.")
    return plan_products.map(actual_units).fillna(0.0).to_numpy(dtype=float)


#: bounds of the week's level: beyond them the control group is not a control (an empty week)
CONTROL_LEVEL_BOUNDS = (0.5, 2.0)


def control_levels(forecasts: pd.DataFrame, plan_lines: pd.DataFrame,
                   week: pd.DataFrame) -> pd.Series:
    """The week's level per category: the unpromoted products' actual units (with the units the
    plan expected its promotions to take from them added back) over their no-promotion
    forecast, within CONTROL_LEVEL_BOUNDS. A product that sold out counts its forecast only up
    to what it sold (its demand is not known beyond that). `week`: product_id, category, units,
    is_stocked_out of the plan week. A category without an unpromoted product that was forecast
    to sell takes the level of all the unpromoted products (1 without any); the index "" holds
    that overall level."""
    promoted = plan_lines.loc[plan_lines["discount_depth"] > 0]
    at_0 = forecasts[(forecasts["discount_depth"].round(6) == 0)
                     & ~forecasts["product_id"].isin(promoted["product_id"])]
    rows = week.set_index("product_id")
    control = pd.DataFrame({"product_id": at_0["product_id"].to_numpy(),
                            "forecast": at_0["units_p50"].astype(float).to_numpy()})
    control["category"] = control["product_id"].map(rows["category"]).fillna("")
    control["units"] = _actual(control["product_id"], rows["units"])
    sold_out = control["product_id"].map(rows["is_stocked_out"]).fillna(False).astype(bool)
    control["forecast"] = np.where(sold_out, np.minimum(control["forecast"], control["units"]),
                                   control["forecast"])
    lost = (promoted.groupby("category")["cannibalized_units"].sum()
            if "cannibalized_units" in promoted.columns else pd.Series(dtype=float))
    actual = control.groupby("category")["units"].sum().add(lost, fill_value=0.0)
    forecast = control.groupby("category")["forecast"].sum().reindex(actual.index).fillna(0.0)
    overall = (float(actual.sum() / forecast.sum()) if forecast.sum() > 0 else 1.0)
    levels = (actual / forecast.where(forecast > 0)).fillna(overall)
    levels[""] = overall
    return levels.clip(*CONTROL_LEVEL_BOUNDS)


def line_results(plan_lines: pd.DataFrame, actual_units: pd.Series,
                 levels: pd.Series | None = None) -> pd.DataFrame:
    """One row per promoted plan line; `actual_units` is the week's net units per product_id,
    `levels` the week's control level per category (control_levels; none: 1), the baseline
    the lines' `baseline_units` x the level of their category."""
    lines = plan_lines[plan_lines["discount_depth"] > 0].reset_index(drop=True)
    if lines.empty:
        raise ResultsError("The plan has no promoted lines to measure.")
    actual = _actual(lines["product_id"], actual_units)
    forecast = lines["expected_units"].to_numpy(float)
    forecast_baseline = lines["baseline_units"].to_numpy(float)
    level = (np.ones(len(lines)) if levels is None else
             lines["category"].map(levels).fillna(levels.get("", 1.0)).to_numpy(float))
    baseline = forecast_baseline * level
    price, cost = lines["promo_price"].to_numpy(float), lines["unit_cost"].to_numpy(float)
    list_price = lines["list_price"].to_numpy(float)
    promotion_cost = actual * (list_price - price)
    profit = actual * (price - cost) - baseline * (list_price - cost)
    return pd.DataFrame({
        "product_id": lines["product_id"], "discount_depth": lines["discount_depth"],
        "forecast_units": forecast, "forecast_baseline_units": forecast_baseline,
        "control_level": level, "baseline_units": baseline, "actual_units": actual,
        "forecast_error_units": actual - forecast,
        "realized_incremental_units": actual - baseline,
        "realized_incremental_revenue": actual * price - baseline * list_price,
        "realized_incremental_profit": profit,
        "planned_incremental_profit": lines["week_incremental_profit"].to_numpy(float),
        "promotion_cost": promotion_cost,
        "roi": np.where(promotion_cost > 0, profit / np.where(promotion_cost > 0,
                                                              promotion_cost, 1.0), np.nan),
    })


def forecast_accuracy(forecasts: pd.DataFrame, plan_lines: pd.DataFrame,
                      actual_units: pd.Series) -> dict:
    """WAPE, bias and P10-P90 coverage of the week's forecast at the plan's levels."""
    level = plan_lines.set_index("product_id")["discount_depth"]
    chosen = forecasts.assign(
        planned=forecasts["product_id"].map(level).fillna(0.0).round(6))
    chosen = chosen[chosen["discount_depth"].round(6) == chosen["planned"]]
    actual = _actual(chosen["product_id"], actual_units)
    quantiles = chosen[["units_p10", "units_p50", "units_p90"]].to_numpy(float)
    if "contact_units" in plan_lines.columns:
        contacts = plan_lines.set_index("product_id")["contact_units"]
        quantiles = quantiles + chosen["product_id"].map(contacts).fillna(0.0).to_numpy(
            float)[:, None]
    return {"products": len(chosen), "actual_units": float(actual.sum()),
            "forecast_units": float(quantiles[:, 1].sum()),
            "wape": evaluate.wape(actual, quantiles[:, 1]),
            "bias": evaluate.bias(actual, quantiles[:, 1]),
            "p10_p90_coverage": evaluate.coverage(actual, quantiles)}
