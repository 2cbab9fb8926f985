"""What each plan line really did in its week, and how good the week's forecast was.

`line_results`: per promoted line, the week's actual units against the forecast at the chosen
discount and against the forecast without promotion (the counterfactual baseline, what the
product would have sold unpromoted): realized incremental units, revenue and profit (actual
units at the promoted price minus the baseline units at list price), the promotion cost (the
discount given away on the actual units) and its ROI (incremental profit / promotion cost).
The plan's own expectation sits next to it.

`forecast_accuracy`: every product's forecast at the level the plan gave it (0 when not
promoted) against the week's actual units: WAPE, bias (forecast / actual - 1) and the share of
products inside P10-P90, the forecaster's own metrics (training/forecaster/evaluate.py).
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


def line_results(plan_lines: pd.DataFrame, actual_units: pd.Series) -> pd.DataFrame:
    """One row per promoted plan line; `actual_units` is the week's net units per product_id."""
    lines = plan_lines[plan_lines["discount_depth"] > 0].reset_index(drop=True)
    if lines.empty:
        raise ResultsError("The plan has no promoted lines to measure.")
    actual = _actual(lines["product_id"], actual_units)
    forecast, baseline = lines["expected_units"].to_numpy(float), lines["baseline_units"].to_numpy(float)
    price, cost = lines["promo_price"].to_numpy(float), lines["unit_cost"].to_numpy(float)
    list_price = lines["list_price"].to_numpy(float)
    promotion_cost = actual * (list_price - price)
    profit = actual * (price - cost) - baseline * (list_price - cost)
    return pd.DataFrame({
        "product_id": lines["product_id"], "discount_depth": lines["discount_depth"],
        "forecast_units": forecast, "baseline_units": baseline, "actual_units": actual,
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
    return {"products": len(chosen), "actual_units": float(actual.sum()),
            "forecast_units": float(quantiles[:, 1].sum()),
            "wape": evaluate.wape(actual, quantiles[:, 1]),
            "bias": evaluate.bias(actual, quantiles[:, 1]),
            "p10_p90_coverage": evaluate.coverage(actual, quantiles)}
