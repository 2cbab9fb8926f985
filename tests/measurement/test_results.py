"""Per-line results and the week's forecast accuracy on hand-made numbers."""

import numpy as np
import pandas as pd
import pytest

from measurement.results import ResultsError, forecast_accuracy, line_results

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


def test_a_week_without_sales_is_refused():
    with pytest.raises(ResultsError, match="no sales"):
        line_results(PLAN, pd.Series(dtype=float))
    with pytest.raises(ResultsError, match="no promoted lines"):
        line_results(PLAN.assign(discount_depth=0.0), pd.Series({1: 1.0}))
    assert np.isnan(line_results(PLAN.assign(promo_price=PLAN["list_price"]),
                                 pd.Series({1: 1.0, 2: 1.0}))["roi"]).all()
