"""Input preparation and metric arithmetic of both models."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from promoflow.run import RunFolder
from training.forecaster import data as forecast_data
from training.forecaster import evaluate as forecast_eval
from training.forecaster.calibration import LEVEL_BOUNDS, LIFT_BOUNDS, Calibration, measure
from training.recommender import data as rec_data
from training.recommender import evaluate as rec_eval


def test_forecaster_inputs_have_no_gaps_and_holdout_is_the_last_weeks(fake_market) -> None:
    frame = forecast_data.read_frame(RunFolder(fake_market.run_dir).forecaster_train, label=True)
    assert frame["units_lag_52"].isna().any()  # the fake market has gaps to fill
    fit_rows, holdout = forecast_data.split_holdout(frame, 8)
    assert holdout["week_start"].nunique() == 8
    assert fit_rows["week_start"].max() < holdout["week_start"].min()
    standardizer = forecast_data.Standardizer.fit(forecast_data.raw_features(fit_rows))
    vocab = forecast_data.Vocab.fit(fit_rows, frame)
    batch = forecast_data.make_batch(holdout, standardizer, vocab)
    assert batch.features.shape == (len(holdout), len(forecast_data.FEATURE_NAMES))
    assert np.isfinite(batch.features.numpy()).all()
    assert np.allclose(batch.discount.numpy(), holdout["discount_depth"].clip(0, 0.95).to_numpy())
    with pytest.raises(ValueError, match="holdout weeks"):
        forecast_data.split_holdout(frame, 200)


def test_forecaster_reads_feast_prefixed_columns(fake_market, tmp_path: Path) -> None:
    frame = pd.read_parquet(RunFolder(fake_market.run_dir).forecaster_train)
    prefixed = frame.rename(columns={"discount_depth": "product_week_features__discount_depth",
                                     "promo_lift": "product_features__promo_lift"})
    prefixed.to_parquet(tmp_path / "f.parquet")
    read = forecast_data.read_frame(tmp_path / "f.parquet", label=True)
    assert {"discount_depth", "promo_lift"} <= set(read.columns)
    frame.drop(columns=["units_lag_1"]).to_parquet(tmp_path / "g.parquet")
    with pytest.raises(ValueError, match="units_lag_1"):
        forecast_data.read_frame(tmp_path / "g.parquet", label=True)


def test_forecast_metrics_arithmetic() -> None:
    actual = np.array([10.0, 0.0, 5.0])
    point = np.array([8.0, 1.0, 5.0])
    assert forecast_eval.wape(actual, point) == pytest.approx(3 / 15)
    assert forecast_eval.mase(actual, point, scale=2.0) == pytest.approx(0.5)
    exact = np.stack([actual] * 3, axis=1)
    assert forecast_eval.quantile_loss(actual, exact) == 0.0
    rows = pd.DataFrame({"units_lag_52": [3.0, None, None], "units_lag_1": [1.0, 4.0, None],
                         "units_roll_mean_4": [1.0, 1.0, 2.5]})
    assert forecast_eval.seasonal_naive(rows).tolist() == [3.0, 4.0, 2.5]


def test_ranking_metrics_arithmetic() -> None:
    relevant = {1: {5, 7}, 2: {9}}
    top = np.array([[7, 0, 5], [1, 2, 3]])
    metrics = rec_eval.ranking_metrics(top, [1, 2], relevant, k=3)
    assert metrics["recall_at_3"] == pytest.approx((1.0 + 0.0) / 2)
    ndcg_1 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert metrics["ndcg_at_3"] == pytest.approx(ndcg_1 / 2)
    train = pd.DataFrame({"product_idx": [2, 2, 0, 1], "units": [1.0, 1.0, 5.0, 1.0]})
    assert rec_eval.popularity_ranking(train, 4, 3).tolist() == [0, 2, 1]


def test_recommender_inputs(fake_market) -> None:
    data = rec_data.load(fake_market.run_dir, holdout_weeks=4)
    assert data.n_customers == 300 and data.n_products == 24
    assert data.train["week_start"].max() < data.holdout["week_start"].min()
    assert data.holdout["week_start"].nunique() == 4
    assert len(data.interactions) == len(data.train) + len(data.holdout)
    for tables in (data.at_holdout, data.at_plan_week):
        assert np.isfinite(tables.customer_features.numpy()).all()
        assert np.isfinite(tables.product_features.numpy()).all()
        assert (tables.product_category > 0).all()  # every product has a known category
        assert (tables.customer_category == 0).sum() == 3  # the customers without features


def test_new_forecaster_inputs_are_read_and_absent_ones_count_as_zero(fake_market,
                                                                      tmp_path: Path) -> None:
    path = RunFolder(fake_market.run_dir).forecaster_train
    frame = forecast_data.read_frame(path, label=True)
    fit_rows, _ = forecast_data.split_holdout(frame, 8)
    standardizer = forecast_data.Standardizer.fit(forecast_data.raw_features(fit_rows))
    vocab = forecast_data.Vocab.fit(fit_rows, frame)
    batch = forecast_data.make_batch(frame, standardizer, vocab)
    assert batch.promo_type.shape == (len(frame), 3) and batch.lag_depth.shape == (len(frame), 3)
    np.testing.assert_allclose(batch.lag_depth[:, 0].numpy(), frame["discount_depth_lag_1"])
    np.testing.assert_allclose(batch.pressure.numpy(), frame["category_promo_pressure"],
                               rtol=1e-6)
    assert (batch.censored.numpy() == frame["is_stocked_out"].to_numpy()).all()
    assert batch.censored.sum() > 0 and batch.pressure.max() > 0 and batch.promo_type.sum() > 0
    # a candidate discount is a plain price cut: no promotion type
    candidate = forecast_data.make_batch(frame, standardizer, vocab,
                                         discount=np.full(len(frame), 0.2))
    assert candidate.promo_type.sum() == 0 and (candidate.discount == 0.2).all()

    old = pd.read_parquet(path).drop(columns=forecast_data.OPTIONAL)
    old.to_parquet(tmp_path / "old.parquet")
    read = forecast_data.read_frame(tmp_path / "old.parquet", label=True)
    assert (read[forecast_data.OPTIONAL] == 0).all().all()
    batch = forecast_data.make_batch(read, standardizer, vocab)
    assert batch.censored.sum() == 0 and batch.lag_depth.abs().sum() == 0
    assert np.isfinite(batch.features.numpy()).all()


def test_validation_slice_is_the_last_weeks_before_the_holdout(fake_market) -> None:
    frame = forecast_data.read_frame(RunFolder(fake_market.run_dir).forecaster_train, label=True)
    before, holdout = forecast_data.split_holdout(frame, 8)
    fit_rows, validation = forecast_data.split_validation(before, 8)
    assert validation["week_start"].nunique() == 8
    assert fit_rows["week_start"].max() < validation["week_start"].min()
    assert validation["week_start"].max() < holdout["week_start"].min()
    assert len(fit_rows) + len(validation) == len(before)
    short = before[before["week_start"] < sorted(before["week_start"].unique())[6]]
    fit_rows, validation = forecast_data.split_validation(short, 8)  # half stays for fitting
    assert validation["week_start"].nunique() == 3 and fit_rows["week_start"].nunique() == 3
    fit_rows, validation = forecast_data.split_validation(short, 0)
    assert validation.empty and len(fit_rows) == len(short)


def test_bias_and_coverage_arithmetic() -> None:
    actual = np.array([10.0, 0.0, 5.0, 5.0])
    quantiles = np.array([[8, 9, 12], [0, 1, 2], [6, 7, 8], [1, 3, 5]], dtype=float)
    assert forecast_eval.bias(actual, quantiles[:, 1]) == pytest.approx(20 / 20 - 1)
    assert forecast_eval.coverage(actual, quantiles) == pytest.approx(3 / 4)
    metrics = forecast_eval.score(actual, quantiles, scale=1.0)
    assert set(metrics) == {"wape", "bias", "mase", "quantile_loss", "p10_p90_coverage"}


def test_calibration_fixes_level_and_width_on_fresh_rows() -> None:
    """A median 20% low with too narrow gaps: after the fit on one sample, another sample of
    the same process has bias about 0 and about 80% inside P10-P90."""
    rng = np.random.default_rng(0)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        level = rng.lognormal(np.log(20), 0.5, n)
        units = rng.poisson(level).astype(float)
        mid = np.log1p(0.8 * level)
        return np.stack([mid - 0.05, mid, mid + 0.05], axis=1), units

    log_q, units = sample(4000)
    fitted = Calibration.fit(log_q, units)
    assert fitted.level_factor > 1 and fitted.low_factor > 1 and fitted.high_factor > 1
    log_q, units = sample(4000)
    before, after = measure(units, np.expm1(log_q)), measure(units, fitted.units(log_q))
    assert before["bias_at_discount_0"] < -0.15 and before["p10_p90_coverage"] < 0.3
    assert abs(after["bias_at_discount_0"]) < 0.02
    assert 0.77 < after["p10_p90_coverage"] < 0.83 and after["rows"] == 4000
    corrected = fitted.units(log_q)
    assert (corrected[:, 0] <= corrected[:, 1]).all() and (corrected[:, 1] <= corrected[:, 2]).all()
    # forecasts rising with depth keep rising (the same factors for every row)
    higher = fitted.units(log_q + 0.3)
    assert (higher >= corrected).all()
    assert Calibration.fit(log_q[:5], units[:5]) == Calibration(rows=5)  # too few rows: identity
    # intermittent demand (P50 0 almost everywhere): no level factor is applied
    sparse = np.zeros((400, 3))
    sparse[:4] = [0.0, 0.1, 0.5]
    sold = np.where(np.arange(400) % 10 == 0, 2.0, 0.0)
    intermittent = Calibration.fit(sparse, sold)
    assert intermittent.level_factor == 1.0
    assert intermittent.level_factor_wanted > LEVEL_BOUNDS[1]
    assert (intermittent.units(sparse)[4:, 1] == 0).all()


def test_lift_factor_takes_back_the_extra_units_the_promoted_rows_did_not_sell() -> None:
    """Promoted rows forecast at 30 units over a base of 10 but selling 25: phi = 0.75 scales
    every quantile's extra units, keeps them ordered and rising with depth, and leaves the
    forecast at discount 0 alone."""
    rng = np.random.default_rng(1)
    n = 400
    at_0 = np.tile([8.0, 10.0, 12.0], (n, 1))
    promoted = np.tile([26.0, 30.0, 34.0], (n, 1))
    actual = rng.poisson(25.0, n).astype(float)
    fitted = Calibration().with_lift(promoted, at_0, actual)
    assert fitted.lift_factor == pytest.approx((actual.mean() - 10) / 20, rel=1e-9)
    assert 0.7 < fitted.lift_factor < 0.8 and fitted.lift_rows == n
    lifted = fitted.lift(promoted, at_0)
    assert lifted[:, 1].mean() == pytest.approx(actual.mean())
    assert (lifted[:, 0] <= lifted[:, 1]).all() and (lifted[:, 1] <= lifted[:, 2]).all()
    assert (fitted.lift(at_0, at_0) == at_0).all()
    deeper = fitted.lift(promoted + 5, at_0)
    assert (deeper >= lifted).all()
    # bounded, and left at 1 on too few rows or no forecast lift
    assert Calibration().with_lift(promoted, at_0, np.zeros(n)).lift_factor == LIFT_BOUNDS[0]
    assert Calibration().with_lift(promoted[:5], at_0[:5], actual[:5]).lift_factor == 1.0
    assert Calibration().with_lift(at_0, at_0, actual).lift_factor == 1.0


def test_features_constant_in_training_stay_inert_later(fake_market) -> None:
    """No lag_52 in the first year of fitting weeks: has_lag_52 turning 1 in the holdout must
    not move the inputs (the model never learned what it means)."""
    frame = forecast_data.read_frame(RunFolder(fake_market.run_dir).forecaster_train, label=True)
    first_year = frame[frame["week_start"] < sorted(frame["week_start"].unique())[52]]
    standardizer = forecast_data.Standardizer.fit(forecast_data.raw_features(first_year))
    column = forecast_data.FEATURE_NAMES.index("has_lag_52")
    assert standardizer.scale[column] == 0.0
    later = forecast_data.raw_features(frame.tail(50))
    assert (later["has_lag_52"] == 1).all()
    assert (standardizer.transform(later)[:, column] == 0).all()
    assert (standardizer.scale[[forecast_data.FEATURE_NAMES.index("log_units_lag_1")]] > 0).all()
