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
    assert (batch.promoted.numpy() == (holdout["discount_depth"] >= 0.01).to_numpy()).all()
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
    assert np.isfinite(data.customer_features.numpy()).all()
    assert (data.product_category > 0).all()  # every product has a known category
    assert (data.customer_category == 0).sum() == 3  # the customers without features
