"""Treatment-vs-holdout statistics of a plan week: the effect, its 95% interval, its p-value
and the smallest effect the sample can detect.

- Purchase rate (bought in the week or not): two-proportion z-test. The p-value uses the pooled
  rate (the null hypothesis: one rate for both groups); the interval of the difference is the
  Wald interval with each group's own rate (statsmodels `proportions_ztest`,
  `confint_proportions_2indep`).
- Purchase rate over all targets (`clustered_rate_effect`): the holdout is drawn per customer
  and a customer is a target of several products, so the outcomes of one customer's targets
  move together (an active customer buys more of everything); the difference of rates is the
  least-squares slope on the treatment indicator with standard errors clustered by customer
  (the unit of randomization; Liang & Zeger 1986, statsmodels `cov_type="cluster"`). Per
  product each customer is one target, and the z-test above applies.
- Spend per customer: Welch's t-test of the difference of means (unequal variances), and its
  interval (statsmodels `CompareMeans`). With a pre-period spend per customer the outcome is
  first CUPED-adjusted (Deng, Xu, Kohavi & Walker 2013): y - theta * (x - mean(x)), theta =
  cov(y, x) / var(x) over both groups together. Randomized assignment makes x independent of
  the treatment, so the difference of means keeps its expectation and loses the variance that x
  explains (`variance_reduction`).
- Minimum detectable effect: the true difference the test finds with probability `power` at
  level `alpha`, two-sided, normal approximation: (z_{1-alpha/2} + z_power) x the standard
  error of the difference (under the null's pooled rate for proportions).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

ALPHA = 0.05
POWER = 0.8


class ExperimentError(ValueError):
    """The groups cannot be compared (too small, inconsistent counts, bad parameters)."""


@dataclass(frozen=True)
class Effect:
    """Treated minus control for one metric."""

    metric: str
    test: str
    treated_n: int
    control_n: int
    treated_value: float
    control_value: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    mde: float
    variance_reduction: float = 0.0  # share of the outcome's variance CUPED removed

    def to_dict(self) -> dict:
        return asdict(self)


def _check_level(alpha: float, power: float) -> None:
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ExperimentError(f"alpha and power must lie in (0, 1); got {alpha} and {power}.")


def _mde_factor(alpha: float, power: float) -> float:
    normal = NormalDist()
    return normal.inv_cdf(1 - alpha / 2) + normal.inv_cdf(power)


def purchase_rate_effect(treated_buyers: int, treated_n: int, control_buyers: int,
                         control_n: int, alpha: float = ALPHA, power: float = POWER) -> Effect:
    """Difference of purchase rates (treated - control) by the two-proportion z-test."""
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    _check_level(alpha, power)
    for name, buyers, n in (("treated", treated_buyers, treated_n),
                            ("control", control_buyers, control_n)):
        if n < 1:
            raise ExperimentError(f"The {name} group is empty; no rate can be compared.")
        if not 0 <= buyers <= n:
            raise ExperimentError(f"The {name} group has {buyers} buyers of {n} customers.")
    p_t, p_c = treated_buyers / treated_n, control_buyers / control_n
    pooled = (treated_buyers + control_buyers) / (treated_n + control_n)
    pooled_se = float(np.sqrt(pooled * (1 - pooled) * (1 / treated_n + 1 / control_n)))
    if pooled_se > 0:
        _, p_value = proportions_ztest([treated_buyers, control_buyers], [treated_n, control_n])
    else:  # nobody or everybody bought in both groups: no evidence of a difference
        p_value = 1.0
    low, high = confint_proportions_2indep(treated_buyers, treated_n, control_buyers, control_n,
                                           method="wald", compare="diff", alpha=alpha)
    return Effect(metric="purchase_rate", test="two-proportion z-test", treated_n=treated_n,
                  control_n=control_n, treated_value=p_t, control_value=p_c,
                  difference=p_t - p_c, ci_low=float(low), ci_high=float(high),
                  p_value=float(p_value), mde=_mde_factor(alpha, power) * pooled_se)


def clustered_rate_effect(bought: np.ndarray, treated: np.ndarray, clusters: np.ndarray,
                          alpha: float = ALPHA, power: float = POWER) -> Effect:
    """Difference of purchase rates (treated - control) over targets that share customers:
    the slope of bought on treated, its interval and p-value from cluster-robust standard
    errors (clusters: the customer of each target)."""
    import statsmodels.api as sm

    _check_level(alpha, power)
    y = np.asarray(bought, dtype=float)
    t = np.asarray(treated, dtype=bool)
    treated_n, control_n = int(t.sum()), int((~t).sum())
    if treated_n < 1 or control_n < 1:
        raise ExperimentError("The treated or the control group is empty; no rate can be "
                              "compared.")
    groups = pd.factorize(pd.Series(clusters))[0]
    if len(np.unique(groups[t])) < 2 or len(np.unique(groups[~t])) < 2:
        raise ExperimentError("Each group needs targets of at least 2 customers.")
    p_t, p_c = float(y[t].mean()), float(y[~t].mean())
    fit = sm.OLS(y, sm.add_constant(t.astype(float))).fit(
        cov_type="cluster", cov_kwds={"groups": groups})
    se = float(fit.bse[1])
    if se > 0:
        low, high = (float(v) for v in fit.conf_int(alpha)[1])
        p_value = float(fit.pvalues[1])
    else:  # nobody or everybody bought in both groups: no evidence of a difference
        low = high = p_t - p_c
        p_value = 1.0
    return Effect(metric="purchase_rate", test="difference of rates, customer-clustered errors",
                  treated_n=treated_n, control_n=control_n, treated_value=p_t,
                  control_value=p_c, difference=p_t - p_c, ci_low=low, ci_high=high,
                  p_value=p_value, mde=_mde_factor(alpha, power) * se)


def cuped_theta(outcome: np.ndarray, covariate: np.ndarray) -> float:
    """cov(y, x) / var(x) (0 when the covariate does not vary)."""
    variance = float(np.var(covariate, ddof=1)) if len(covariate) > 1 else 0.0
    if variance <= 0:
        return 0.0
    return float(np.cov(outcome, covariate, ddof=1)[0, 1] / variance)


def spend_effect(treated: np.ndarray, control: np.ndarray,
                 treated_pre: np.ndarray | None = None, control_pre: np.ndarray | None = None,
                 alpha: float = ALPHA, power: float = POWER) -> Effect:
    """Difference of mean spend per customer (treated - control), Welch's t-test, CUPED with
    the pre-period spend when it is given."""
    from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

    _check_level(alpha, power)
    y_t, y_c = (np.asarray(v, dtype=float) for v in (treated, control))
    if len(y_t) < 2 or len(y_c) < 2:
        raise ExperimentError("Each group needs at least 2 customers to compare mean spend.")
    if not (np.isfinite(y_t).all() and np.isfinite(y_c).all()):
        raise ExperimentError("Spend holds missing or infinite values.")
    raw = np.concatenate([y_t, y_c])
    reduction, test = 0.0, "Welch t-test"
    if (treated_pre is None) != (control_pre is None):
        raise ExperimentError("Give the pre-period spend of both groups or of neither.")
    if treated_pre is not None:
        x_t, x_c = (np.asarray(v, dtype=float) for v in (treated_pre, control_pre))
        if len(x_t) != len(y_t) or len(x_c) != len(y_c):
            raise ExperimentError("The pre-period spend needs one value per customer.")
        x = np.concatenate([x_t, x_c])
        theta = cuped_theta(raw, x)
        y_t, y_c = y_t - theta * (x_t - x.mean()), y_c - theta * (x_c - x.mean())
        before = float(np.var(raw, ddof=1))
        after = float(np.var(np.concatenate([y_t, y_c]), ddof=1))
        reduction = 1 - after / before if before > 0 else 0.0
        test = "Welch t-test, CUPED (pre-period spend)"
    compare = CompareMeans(DescrStatsW(y_t), DescrStatsW(y_c))
    se = float(np.sqrt(np.var(y_t, ddof=1) / len(y_t) + np.var(y_c, ddof=1) / len(y_c)))
    if se > 0:
        _, p_value, _ = compare.ttest_ind(usevar="unequal")
        low, high = compare.tconfint_diff(alpha=alpha, usevar="unequal")
    else:
        p_value = 1.0 if y_t.mean() == y_c.mean() else 0.0
        low = high = float(y_t.mean() - y_c.mean())
    return Effect(metric="spend_per_customer", test=test, treated_n=len(y_t), control_n=len(y_c),
                  treated_value=float(np.mean(treated)), control_value=float(np.mean(control)),
                  difference=float(y_t.mean() - y_c.mean()), ci_low=float(low),
                  ci_high=float(high), p_value=float(p_value),
                  mde=_mde_factor(alpha, power) * se, variance_reduction=reduction)
