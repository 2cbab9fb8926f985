"""Per-line results and the week's forecast accuracy on hand-made numbers."""

import numpy as np
import pandas as pd
import pytest

from measurement.results import ResultsError, control_levels, forecast_accuracy, line_results

PLAN = pd.DataFrame({
    "product_id": [1, 2, 3], "discount_depth": [0.2, 0.1, 0.0],
    "expected_units": [30.0, 12.0, 5.0], "baseline_units": [20.0, 10.0, 5.0],
    "list_price": [10.0, 50.0, 8.0], "promo_price": [8.0, 45.0, 8.0],
    "unit_cost": [5.0, 30.0, 4.0], "week_incremental_profit": [-10.0, 80.0, 0.0],
})


def test_line_results_by_hand():
    actual = pd.Series({1: 26.0, 2: 9.0, 3: 7.0})
    out = line_results(PLAN, actual).set_index("product_id")
    assert list(out.index) == [1, 2]  # the unpromoted product is no plan line
    one = out.loc[1]
    assert one["realized_incremental_units"] == 6.0
    assert one["realized_incremental_revenue"] == 26 * 8.0 - 20 * 10.0
    assert one["realized_incremental_profit"] == 26 * 3.0 - 20 * 5.0  # -22
    assert one["promotion_cost"] == 26 * 2.0
    assert one["roi"] == pytest.approx(-22 / 52)
    assert one["forecast_error_units"] == -4.0
    two = out.loc[2]
    assert two["realized_incremental_units"] == -1.0  # sold less than the baseline
    assert two["realized_incremental_profit"] == 9 * 15.0 - 10 * 20.0
    assert two["planned_incremental_profit"] == 80.0


def test_the_baseline_follows_the_categorys_level_on_the_unpromoted_products():
    forecasts = pd.DataFrame([(p, d, u) for p, d, u in [
        (1, 0.0, 20.0), (1, 0.2, 30.0), (2, 0.0, 10.0), (2, 0.1, 12.0), (3, 0.0, 5.0),
        (4, 0.0, 15.0), (5, 0.0, 10.0), (6, 0.0, 8.0)]],
        columns=["product_id", "discount_depth", "units_p50"])
    plan = PLAN.assign(category=["a", "b", "a"], cannibalized_units=[1.0, 1.0, 0.0])
    week = pd.DataFrame({"product_id": [1, 2, 3, 4, 5, 6], "category": list("abaacc"),
                         "units": [26.0, 9.0, 7.0, 15.0, 4.0, 12.0],
                         "is_stocked_out": [False, False, False, False, True, False]})
    levels = control_levels(forecasts, plan, week)
    # category a: unpromoted 3 and 4, (7 + 15 + 1 lost to product 1's promotion) / (5 + 15)
    assert levels["a"] == pytest.approx(23 / 20)
    # category c: product 5 sold out at 4, so its forecast counts up to 4: (4 + 12) / (4 + 8)
    assert levels["c"] == pytest.approx(16 / 12)
    # category b has no unpromoted product: the level of all of them, (23 + 16 + 1) / 32
    assert levels[""] == pytest.approx(40 / 32)
    actual = week.set_index("product_id")["units"]
    out = line_results(plan, actual, levels).set_index("product_id")
    assert out.loc[1, "forecast_baseline_units"] == 20.0
    assert out.loc[1, "baseline_units"] == pytest.approx(23.0)
    assert out.loc[1, "realized_incremental_profit"] == pytest.approx(26 * 3.0 - 23 * 5.0)
    assert out.loc[2, "control_level"] == pytest.approx(40 / 32)
    # a week that sold nothing: the level stays within its bounds
    assert control_levels(forecasts, plan, week.assign(units=0.0))["a"] == 0.5
    assert line_results(plan, actual)["control_level"].eq(1.0).all()


def test_forecast_accuracy_at_the_plans_levels():
    forecasts = pd.DataFrame([(p, d, 0.5 * u, u, 1.5 * u) for p, d, u in [
        (1, 0.0, 20.0), (1, 0.2, 30.0), (2, 0.0, 10.0), (2, 0.1, 12.0), (3, 0.0, 5.0),
        (3, 0.1, 6.0)]], columns=["product_id", "discount_depth", "units_p10", "units_p50",
                                  "units_p90"])
    actual = pd.Series({1: 26.0, 2: 20.0, 3: 5.0})
    acc = forecast_accuracy(forecasts, PLAN, actual)
    # chosen: 30 (20% off), 12 (10% off), 5 (no promotion)
    assert acc["products"] == 3 and acc["forecast_units"] == 47.0
    assert acc["wape"] == pytest.approx((4 + 8 + 0) / 51)
    assert acc["bias"] == pytest.approx(47 / 51 - 1)
    assert acc["p10_p90_coverage"] == pytest.approx(2 / 3)  # 20 > 1.5 x 12


def test_forecast_accuracy_counts_the_units_the_plan_expected_from_contacts():
    forecasts = pd.DataFrame([(p, d, 0.5 * u, u, 1.5 * u) for p, d, u in [
        (1, 0.0, 20.0), (1, 0.2, 30.0), (2, 0.0, 10.0), (2, 0.1, 12.0), (3, 0.0, 5.0)]],
        columns=["product_id", "discount_depth", "units_p10", "units_p50", "units_p90"])
    plan = PLAN.assign(contact_units=[4.0, 6.0, 0.0])
    acc = forecast_accuracy(forecasts, plan, pd.Series({1: 26.0, 2: 20.0, 3: 5.0}))
    # chosen: 30 + 4, 12 + 6, 5; the P90 of product 2 is now 18 + 6 = 24 >= 20
    assert acc["forecast_units"] == 57.0
    assert acc["wape"] == pytest.approx((8 + 2 + 0) / 51)
    assert acc["p10_p90_coverage"] == pytest.approx(1.0)


def test_a_week_without_sales_is_refused():
    with pytest.raises(ResultsError, match="no sales"):
        line_results(PLAN, pd.Series(dtype=float))
    with pytest.raises(ResultsError, match="no promoted lines"):
        line_results(PLAN.assign(discount_depth=0.0), pd.Series({1: 1.0}))
    assert np.isnan(line_results(PLAN.assign(promo_price=PLAN["list_price"]),
                                 pd.Series({1: 1.0, 2: 1.0}))["roi"]).all()
