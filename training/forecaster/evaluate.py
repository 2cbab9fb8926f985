"""Holdout metrics of the forecaster and of the seasonal-naive baseline.

WAPE = sum|y - P50| / sum y; bias = sum P50 / sum y - 1; MASE = mean|y - P50| divided by the
in-sample mean absolute one-week change of the training rows (the same scale for every
forecaster); quantile loss = mean pinball loss over P10/P50/P90 in units; P10-P90 coverage =
share of rows with P10 <= y <= P90. The baseline forecasts the units of 52 weeks earlier,
falling back to last week's units; its P10/P90 scale that point by the 10% and 90% quantiles of
its own log1p residuals on the training rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.forecaster.model import QUANTILES


def wape(actual: np.ndarray, point: np.ndarray) -> float:
    return float(np.abs(actual - point).sum() / max(float(actual.sum()), 1e-9))


def bias(actual: np.ndarray, point: np.ndarray) -> float:
    return float(point.sum() / max(float(actual.sum()), 1e-9) - 1.0)


def coverage(actual: np.ndarray, quantiles: np.ndarray) -> float:
    """Share of rows inside [P10, P90] (0 without rows)."""
    if len(actual) == 0:
        return 0.0
    return float(((quantiles[:, 0] <= actual) & (actual <= quantiles[:, 2])).mean())


def mase(actual: np.ndarray, point: np.ndarray, scale: float) -> float:
    if len(actual) == 0:
        return 0.0
    return float(np.abs(actual - point).mean() / max(scale, 1e-9))


def quantile_loss(actual: np.ndarray, quantiles: np.ndarray) -> float:
    """Mean pinball loss of [rows, 3] quantile forecasts in units."""
    if len(actual) == 0:
        return 0.0
    error = actual[:, None] - quantiles
    taus = np.asarray(QUANTILES)[None, :]
    return float(np.maximum(taus * error, (taus - 1) * error).mean())


def naive_scale(fit_rows: pd.DataFrame) -> float:
    """In-sample mean absolute one-week change of units (the MASE denominator)."""
    known = fit_rows.dropna(subset=["units_lag_1"])
    if known.empty:
        return 1.0
    scale = float(np.abs(known["units"].astype(float) - known["units_lag_1"].astype(float)).mean())
    return scale if scale > 0 else 1.0


def seasonal_naive(frame: pd.DataFrame) -> np.ndarray:
    """Units 52 weeks earlier, else last week's units, else the recent mean, else 0."""
    point = pd.to_numeric(frame["units_lag_52"], errors="coerce")
    for fallback in ("units_lag_1", "units_roll_mean_4"):
        point = point.fillna(pd.to_numeric(frame[fallback], errors="coerce"))
    return point.fillna(0.0).clip(lower=0).to_numpy(dtype=float)


def baseline_quantiles(fit_rows: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """[rows, 3] seasonal-naive quantiles (P50 is the naive point itself)."""
    residual = np.log1p(fit_rows["units"].astype(float).to_numpy()) - np.log1p(
        seasonal_naive(fit_rows)
    )
    low, high = np.quantile(residual, [QUANTILES[0], QUANTILES[2]]) if len(residual) else (0, 0)
    point = seasonal_naive(rows)
    log_point = np.log1p(point)
    return np.stack(
        [np.expm1(log_point + min(low, 0.0)), point, np.expm1(log_point + max(high, 0.0))], axis=1
    ).clip(min=0.0)


def score(actual: np.ndarray, quantiles: np.ndarray, scale: float) -> dict[str, float]:
    """WAPE, bias, MASE, quantile loss and P10-P90 coverage of one forecaster."""
    return {
        "wape": wape(actual, quantiles[:, 1]),
        "bias": bias(actual, quantiles[:, 1]),
        "mase": mase(actual, quantiles[:, 1], scale),
        "quantile_loss": quantile_loss(actual, quantiles),
        "p10_p90_coverage": coverage(actual, quantiles),
    }
