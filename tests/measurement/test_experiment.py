"""The A/B statistics against values computed by hand, and the interval's coverage."""

import math

import numpy as np
import pytest

from measurement.experiment import (
    ExperimentError,
    clustered_rate_effect,
    cuped_theta,
    purchase_rate_effect,
    spend_effect,
)

Z975 = 1.959963984540054  # z of 0.975
Z80 = 0.8416212335729143  # z of 0.8


def _two_sided_p(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))


def test_purchase_rate_by_hand():
    effect = purchase_rate_effect(120, 1000, 100, 1000)
    # pooled rate 0.11 for the test, each group's own rate for the interval
    pooled_se = math.sqrt(0.11 * 0.89 * (1 / 1000 + 1 / 1000))
    wald_se = math.sqrt(0.12 * 0.88 / 1000 + 0.10 * 0.90 / 1000)
    assert effect.difference == pytest.approx(0.02)
    assert effect.p_value == pytest.approx(_two_sided_p(0.02 / pooled_se), rel=1e-9)
    assert effect.p_value == pytest.approx(0.1529, abs=1e-4)
    assert effect.ci_low == pytest.approx(0.02 - Z975 * wald_se, rel=1e-9)
    assert effect.ci_high == pytest.approx(0.02 + Z975 * wald_se, rel=1e-9)
    assert effect.mde == pytest.approx((Z975 + Z80) * pooled_se, rel=1e-9)


def test_purchase_rate_unequal_groups_and_degenerate_rates():
    effect = purchase_rate_effect(30, 200, 200, 2000)
    assert effect.difference == pytest.approx(0.15 - 0.10)
    assert effect.ci_low < effect.difference < effect.ci_high
    none_bought = purchase_rate_effect(0, 50, 0, 50)
    assert none_bought.difference == 0.0 and none_bought.p_value == 1.0


@pytest.mark.parametrize("args, message", [
    ((5, 0, 1, 10), "treated group is empty"),
    ((11, 10, 1, 10), "11 buyers of 10"),
    ((1, 10, -1, 10), "-1 buyers"),
])
def test_bad_counts_are_refused(args, message):
    with pytest.raises(ExperimentError, match=message):
        purchase_rate_effect(*args)


def test_spend_welch_by_hand():
    treated = np.array([10.0, 12.0, 9.0, 15.0, 14.0])
    control = np.array([8.0, 9.0, 11.0, 7.0])
    effect = spend_effect(treated, control)
    v_t, v_c = treated.var(ddof=1) / 5, control.var(ddof=1) / 4
    se = math.sqrt(v_t + v_c)
    t = (treated.mean() - control.mean()) / se
    df = (v_t + v_c) ** 2 / (v_t**2 / 4 + v_c**2 / 3)  # Welch-Satterthwaite
    from scipy import stats

    assert effect.difference == pytest.approx(12.0 - 8.75)
    assert effect.p_value == pytest.approx(2 * stats.t.sf(abs(t), df), rel=1e-9)
    half = stats.t.ppf(0.975, df) * se
    assert (effect.ci_low, effect.ci_high) == pytest.approx((3.25 - half, 3.25 + half), rel=1e-9)
    assert effect.mde == pytest.approx((Z975 + Z80) * se, rel=1e-9)
    assert effect.variance_reduction == 0.0


def test_cuped_keeps_the_effect_and_narrows_the_interval():
    rng = np.random.default_rng(7)
    pre = rng.gamma(2.0, 20.0, 4000)
    treated_arm = rng.random(4000) < 0.5
    spend = 0.8 * pre + rng.normal(0, 5, 4000) + np.where(treated_arm, 2.0, 0.0)
    y_t, y_c, x_t, x_c = spend[treated_arm], spend[~treated_arm], pre[treated_arm], pre[~treated_arm]
    plain = spend_effect(y_t, y_c)
    cuped = spend_effect(y_t, y_c, x_t, x_c)
    theta = cuped_theta(spend, pre)
    assert theta == pytest.approx(np.cov(spend, pre)[0, 1] / pre.var(ddof=1))
    assert cuped.difference == pytest.approx(
        plain.difference - theta * (x_t.mean() - x_c.mean()), rel=1e-9)
    assert cuped.variance_reduction > 0.8
    assert cuped.ci_high - cuped.ci_low < 0.5 * (plain.ci_high - plain.ci_low)
    assert cuped.ci_low < 2.0 < cuped.ci_high
    assert cuped.mde < plain.mde


def test_spend_inputs_are_checked():
    with pytest.raises(ExperimentError, match="at least 2"):
        spend_effect([1.0], [1.0, 2.0])
    with pytest.raises(ExperimentError, match="both groups or of neither"):
        spend_effect([1.0, 2.0], [1.0, 2.0], treated_pre=[1.0, 2.0])
    with pytest.raises(ExperimentError, match="one value per customer"):
        spend_effect([1.0, 2.0], [1.0, 2.0], [1.0], [1.0, 2.0])
    with pytest.raises(ExperimentError, match="alpha and power"):
        purchase_rate_effect(1, 10, 1, 10, alpha=1.5)


def test_the_95_percent_interval_covers_the_true_effect_95_percent_of_the_time():
    rng = np.random.default_rng(2026)
    rate_hits = spend_hits = 0
    trials = 400
    for _ in range(trials):
        treated, control = rng.random(800) < 0.14, rng.random(800) < 0.10
        rate = purchase_rate_effect(int(treated.sum()), 800, int(control.sum()), 800)
        rate_hits += rate.ci_low <= 0.04 <= rate.ci_high
        pre_t, pre_c = rng.gamma(2.0, 10.0, 300), rng.gamma(2.0, 10.0, 300)
        spend = spend_effect(pre_t + rng.exponential(6.0, 300), pre_c + rng.exponential(5.0, 300),
                             pre_t, pre_c)
        spend_hits += spend.ci_low <= 1.0 <= spend.ci_high
    # a binomial(400, 0.95) lies in [366, 393] with probability about 0.998
    assert 366 <= rate_hits <= 393
    assert 366 <= spend_hits <= 393


def test_clustered_rate_matches_the_z_test_with_one_target_per_customer_and_widens_with_many():
    rng = np.random.default_rng(5)
    n = 4000
    treated = rng.random(n) < 0.8
    bought = rng.random(n) < np.where(treated, 0.12, 0.08)
    single = clustered_rate_effect(bought, treated, np.arange(n))
    z = purchase_rate_effect(int(bought[treated].sum()), int(treated.sum()),
                             int(bought[~treated].sum()), int((~treated).sum()))
    assert single.difference == pytest.approx(z.difference)
    assert single.ci_high - single.ci_low == pytest.approx(z.ci_high - z.ci_low, rel=0.01)
    # 400 customers with 10 targets each, treated or held out as a whole, whose propensity
    # varies: their targets move together and the interval must say so
    customer = np.repeat(np.arange(400), 10)
    treated = np.repeat(rng.random(400) < 0.8, 10)
    propensity = np.repeat(rng.beta(0.5, 4.5, 400), 10)
    bought = rng.random(n) < propensity + 0.04 * treated
    clustered = clustered_rate_effect(bought, treated, customer)
    naive = purchase_rate_effect(int(bought[treated].sum()), int(treated.sum()),
                                 int(bought[~treated].sum()), int((~treated).sum()))
    assert clustered.difference == pytest.approx(naive.difference)
    assert clustered.ci_high - clustered.ci_low > 1.3 * (naive.ci_high - naive.ci_low)
    with pytest.raises(ExperimentError, match="at least 2 customers"):
        clustered_rate_effect(bought[:20], treated[:20], customer[:20])
