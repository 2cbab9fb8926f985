"""Post-hoc calibration of the forecaster's quantiles, fitted on the validation slice.

Three numbers, fitted on the validation rows at discount 0 (not promoted, not stocked out, so
the recorded units are demand without a promotion), never on the holdout:

- `level_factor` (lambda): every quantile in units is multiplied by it, chosen so that the
  validation rows' P50 sum equals their units (level bias 0 there); a factor outside
  LEVEL_BOUNDS is not applied (1.0, see below);
- `low_factor`, `high_factor`: scale the gaps P50 - P10 and P90 - P50 on the model's log1p
  scale, split-conformal style: the factor is the ceil((n + 1) * 0.9)-th smallest gap multiple
  the rows need to be covered from below / above, so about 10% of the rows fall below P10 and
  10% above P90.

With l10 <= l50 <= l90 the model's log1p quantiles, the corrected ones are

    P50 = lambda * expm1(l50)
    P10 = lambda * expm1(l50 - low_factor * (l50 - l10))
    P90 = lambda * expm1(l50 + high_factor * (l90 - l50))

and, fitted on the validation rows that were promoted (not stocked out), `lift_factor` (phi):
the units a promotion adds are scaled by it, so that those rows' forecast extra units over
their own forecast at discount 0 (no promotion, the same weeks) equal the recorded extra units:

    phi = (sum units - sum B) / (sum P - sum B)        P, B: calibrated P50 promoted, at 0
    any quantile at depth d  ->  q(0) + phi * (q(d) - q(0))

within LIFT_BOUNDS (clipped). The level factor is fitted where the median of a few units sits
furthest below the mean, the promoted weeks sell more and their median sits closer to it, so
the level factor alone overstates a promotion's extra units; phi takes that back out (and any
other bias of the lift the validation weeks show). It keeps every quantile non-decreasing in
depth (phi >= 0) and leaves the forecasts at discount 0 as they are.

The factors are the same for every row and the model's gaps do not depend on the discount, so
the corrected forecasts stay ordered and non-decreasing in depth; a zero forecast stays zero.
Holdout measures (`measure`): bias = sum(P50) / sum(units) - 1 and the share of rows with
P10 <= units <= P90, over the holdout rows not promoted and not stocked out.

The level factor matches the median's sum to the mean demand (for small counts the median sits
below the mean): right for counts of a few units a week. On very intermittent series (most
weeks 0) the P50 is 0 almost everywhere at discount 0, so the factor that would match the mean
is far out of bounds, and applying it to every row would only inflate the promoted weeks'
forecasts: there the level is left alone (factor 1, `level_factor_wanted` records the ratio) and
the bias at discount 0 stays as negative as the median makes it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from training.forecaster.model import QUANTILES

#: fewer validation rows than this: no correction (identity)
MIN_ROWS = 20
LEVEL_BOUNDS = (0.5, 2.0)
FACTOR_BOUNDS = (0.1, 10.0)
LIFT_BOUNDS = (0.25, 1.5)


@dataclass(frozen=True)
class Calibration:
    """A level factor on units and gap factors on the log1p scale (identity by default)."""

    level_factor: float = 1.0
    low_factor: float = 1.0
    high_factor: float = 1.0
    rows: int = 0  # validation rows it was fitted on
    level_factor_wanted: float = 1.0  # sum(units) / sum(P50) on them (applied when in bounds)
    lift_factor: float = 1.0  # phi: scale of the units a promotion adds
    lift_rows: int = 0  # promoted validation rows phi was fitted on

    def lift(self, units: np.ndarray, units_at_0: np.ndarray) -> np.ndarray:
        """Calibrated units at a discount from those at the same discount and at discount 0
        (both from `units`): the extra units scaled by the lift factor."""
        return units_at_0 + self.lift_factor * (units - units_at_0)

    def with_lift(self, units: np.ndarray, units_at_0: np.ndarray, actual: np.ndarray
                  ) -> Calibration:
        """This calibration with phi fitted on promoted validation rows: [rows, 3] calibrated
        quantiles as promoted and at discount 0, recorded units."""
        extra = float(units[:, 1].sum() - units_at_0[:, 1].sum())
        if len(actual) < MIN_ROWS or extra <= 0:
            return replace(self, lift_rows=len(actual))
        wanted = float(np.asarray(actual, dtype=float).sum() - units_at_0[:, 1].sum()) / extra
        return replace(self, lift_factor=float(np.clip(wanted, *LIFT_BOUNDS)),
                       lift_rows=len(actual))

    def widen(self, log_quantiles: np.ndarray) -> np.ndarray:
        """[rows, 3] log1p quantiles with the gaps scaled (before the level factor)."""
        low, mid, high = (log_quantiles[:, i] for i in range(3))
        return np.stack([mid - self.low_factor * (mid - low), mid,
                         mid + self.high_factor * (high - mid)], axis=1)

    def units(self, log_quantiles: np.ndarray) -> np.ndarray:
        """[rows, 3] corrected quantiles in units."""
        return self.level_factor * np.clip(np.expm1(self.widen(log_quantiles)), 0.0, None)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def fit(cls, log_quantiles: np.ndarray, units: np.ndarray) -> Calibration:
        """Fit on validation rows at discount 0 ([rows, 3] log1p quantiles, recorded units)."""
        units = np.asarray(units, dtype=float)
        median = np.clip(np.expm1(log_quantiles[:, 1]), 0.0, None)
        if len(units) < MIN_ROWS or units.sum() <= 0 or median.sum() <= 0:
            return cls(rows=len(units))
        wanted = float(units.sum() / median.sum())
        level = wanted if LEVEL_BOUNDS[0] <= wanted <= LEVEL_BOUNDS[1] else 1.0
        target = np.log1p(units / level)  # where the record sits before the level factor
        low_gap = np.maximum(log_quantiles[:, 1] - log_quantiles[:, 0], 1e-6)
        high_gap = np.maximum(log_quantiles[:, 2] - log_quantiles[:, 1], 1e-6)
        share = 1.0 - QUANTILES[0]  # each side misses 10% of the rows
        low = _conformal_quantile((log_quantiles[:, 1] - target) / low_gap, share)
        high = _conformal_quantile((target - log_quantiles[:, 1]) / high_gap, share)
        return cls(level_factor=level, low_factor=float(np.clip(low, *FACTOR_BOUNDS)),
                   high_factor=float(np.clip(high, *FACTOR_BOUNDS)), rows=len(units),
                   level_factor_wanted=wanted)


def _conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The split-conformal quantile: the ceil((n + 1) * level)-th smallest score."""
    n = len(scores)
    rank = min(n, int(np.ceil((n + 1) * level)))
    return float(np.sort(scores)[rank - 1])


def measure(units: np.ndarray, quantiles: np.ndarray) -> dict:
    """Level bias and P10-P90 coverage of [rows, 3] unit quantiles against recorded units."""
    units = np.asarray(units, dtype=float)
    if len(units) == 0:
        return {"bias_at_discount_0": 0.0, "p10_p90_coverage": 0.0, "rows": 0}
    inside = (quantiles[:, 0] <= units + 1e-9) & (units <= quantiles[:, 2] + 1e-9)
    return {
        "bias_at_discount_0": float(quantiles[:, 1].sum() / max(units.sum(), 1e-9) - 1.0),
        "p10_p90_coverage": float(inside.mean()),
        "rows": len(units),
    }
