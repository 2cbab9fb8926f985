"""The forecaster trained in-process on fake markets with a known dip, category pressure and
promotion-type bumps (and on the same market without them): the signs of the learned terms,
calibration at discount 0, early stopping, the backtest and the planner's inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from promoflow.run import RunFolder
from tests.training.fake_market import build_fake_market
from training.forecaster import data as forecast_data
from training.forecaster.backtest import OVERALL, backtest_path
from training.forecaster.train import DataConfig, ForecasterConfig, TrainerConfig, train

LEVELS = (0.0, 0.1, 0.2, 0.3)
METRIC_NAMES = {"wape", "bias", "mase", "quantile_loss", "p10_p90_coverage"}


def _train(run_dir: Path, models_dir: Path, **trainer) -> tuple[RunFolder, dict]:
    metrics = train(ForecasterConfig(
        data=DataConfig(run_dir=run_dir, discount_levels=LEVELS),
        trainer=TrainerConfig(seed=5, models_dir=models_dir, **trainer),
    ))
    return RunFolder(run_dir), metrics


@pytest.fixture(scope="module")
def trained(fake_market, tmp_path_factory) -> tuple[RunFolder, dict]:
    """The forecaster trained (default epochs, early stopping) on the fake market."""
    base = tmp_path_factory.mktemp("effects")
    shutil.copytree(fake_market.run_dir, base / "run")
    return _train(base / "run", base / "models")


@pytest.fixture(scope="module")
def trained_without_effects(tmp_path_factory) -> tuple[RunFolder, dict]:
    """The same market drawn without dip, cannibalization and type bumps."""
    base = tmp_path_factory.mktemp("no_effects")
    build_fake_market(base / "run", seed=7, effects=False)
    return _train(base / "run", base / "models")


def _mean(values: dict) -> float:
    return float(np.mean(list(values.values())))


def _type_bump(metrics: dict, kind: str) -> float:
    return float(np.mean([bumps[kind] for bumps in metrics["type_bump"].values()]))


def test_learned_terms_have_the_signs_of_the_market(trained, trained_without_effects) -> None:
    _, with_effects = trained
    _, without = trained_without_effects
    # post-promotion dip: a clear share where the market has one, next to nothing where not
    assert _mean(with_effects["dip_share"]) > 0.15
    assert _mean(with_effects["dip_share"]) > 3 * _mean(without["dip_share"])
    # cannibalization by the promoted siblings of the category
    assert _mean(with_effects["cannibalization_rate"]) > 0.4
    assert _mean(with_effects["cannibalization_rate"]) > 3 * _mean(without["cannibalization_rate"])
    # display and mailer promotions sell more than their discount alone (true bumps 35%, 50%)
    for kind in ("display", "mailer"):
        assert _type_bump(with_effects, kind) > 0.15
        assert _type_bump(with_effects, kind) > 3 * _type_bump(without, kind)
    assert _type_bump(with_effects, "mailer") > _type_bump(with_effects, "coupon")
    # the price response rises with depth, more in the more elastic categories, and flattens
    response = with_effects["price_response"]
    for curve in response.values():
        values = [curve[k] for k in ("0.1", "0.2", "0.3", "0.4", "0.5")]
        assert values == sorted(values) and values[0] > 1.0
        steps = np.diff(np.log(values))
        assert (steps[1:] <= steps[:-1] + 1e-9).all()
    assert response["cat_3"]["0.3"] > response["cat_0"]["0.3"]


def test_contact_units_are_learned_apart_from_the_price_response(
        trained, trained_without_effects, fake_market) -> None:
    """Half the promotions of the later weeks were targeted: each contacted customer added a
    unit with probability 0.08. The contact term learns that rate; a market without contacts
    leaves it at 0, and the plan-week forecasts count no contact (they are the planner's)."""
    folder, with_effects = trained
    _, without = trained_without_effects
    assert 0.5 * fake_market.contact_units <= with_effects["contact_rate"] <= 1.5 * fake_market.contact_units
    assert without["contact_rate"] == pytest.approx(0.0, abs=1e-12)
    score = pd.read_parquet(folder.forecaster_score)
    assert (score["contacted_customers"] == 0).all()


def test_calibration_at_discount_0_is_reported_within_bounds(trained) -> None:
    folder, metrics = trained
    calibration = metrics["calibration"]
    frame = forecast_data.read_frame(folder.forecaster_train, label=True)
    _, holdout = forecast_data.split_holdout(frame, 8)
    plain = ~forecast_data.promoted_rows(holdout) & ~forecast_data.stocked_out(holdout)
    assert calibration["rows"] == int(plain.sum()) > 100
    assert abs(calibration["bias_at_discount_0"]) <= 0.06
    assert 0.65 <= calibration["p10_p90_coverage"] <= 0.92
    correction = calibration["correction"]
    assert correction["rows"] > 100 and correction["low_factor"] > 0
    assert set(calibration["uncalibrated"]) == {"bias_at_discount_0", "p10_p90_coverage", "rows"}
    assert json.loads(folder.metrics("forecaster").read_text())["calibration"] == calibration


def test_backtest_compares_the_model_with_both_baselines(trained) -> None:
    folder, metrics = trained
    table = pd.read_parquet(backtest_path(folder))
    assert backtest_path(folder) == folder.path / "backtest.parquet"
    assert set(table["model"]) == {"model", "seasonal_naive", "lightgbm"}
    weeks = sorted(set(table["week_start"]) - {OVERALL})
    assert len(weeks) == 8 and table.groupby("week_start").size().eq(3).all()
    assert METRIC_NAMES <= set(table.columns)
    assert np.isfinite(table[sorted(METRIC_NAMES)].to_numpy()).all()
    overall = table[table["week_start"] == OVERALL].set_index("model")
    per_week = table[table["week_start"] != OVERALL].groupby("model")["rows"].sum()
    assert (overall["rows"] == per_week.reindex(overall.index)).all()
    assert overall.loc["model", "wape"] < overall.loc["seasonal_naive", "wape"]
    assert overall.loc["model", "quantile_loss"] < overall.loc["seasonal_naive", "quantile_loss"]
    assert metrics["backtest"] == table.to_dict(orient="records")
    for name, key in (("model", "model"), ("seasonal_naive", "baseline"),
                      ("lightgbm", "lightgbm")):
        assert metrics[key] == pytest.approx(overall.loc[name, sorted(METRIC_NAMES)].to_dict())


def test_forecasts_carry_dip_and_cannibalized_units(trained, trained_without_effects) -> None:
    folder, _ = trained
    forecasts = pd.read_parquet(folder.forecasts).sort_values(["product_id", "discount_depth"])
    assert sorted(forecasts["discount_depth"].unique()) == list(LEVELS)
    by_product = forecasts.groupby("product_id")
    for column in ("units_p50", "dip_units", "cannibalized_units"):
        assert (by_product[column].diff().dropna() >= 0).all(), column
    at_zero = forecasts[forecasts["discount_depth"] == 0].set_index("product_id")
    assert (at_zero[["dip_units", "cannibalized_units"]] == 0).all().all()
    deepest = forecasts[forecasts["discount_depth"] == 0.3].set_index("product_id")
    assert (deepest["dip_units"] > 0).all() and (deepest["cannibalized_units"] > 0).all()
    # the dip is a share of the next three weeks' baseline, the siblings lose part of theirs
    assert (deepest["dip_units"] < 3 * at_zero["units_p50"]).all()
    category = (at_zero.index - 1) % 4  # the fake market's product -> category
    siblings = at_zero["units_p50"].groupby(category).transform("sum") - at_zero["units_p50"]
    assert (deepest["cannibalized_units"] < siblings).all()
    # much less of both where the market has neither
    other = pd.read_parquet(trained_without_effects[0].forecasts)
    other = other[other["discount_depth"] == 0.3]
    assert deepest["dip_units"].sum() > 2 * other["dip_units"].sum()
    assert deepest["cannibalized_units"].sum() > 2 * other["cannibalized_units"].sum()


def test_early_stopping_reports_its_epoch_and_more_epochs_change_nothing(
    trained, tmp_path: Path
) -> None:
    folder, metrics = trained
    training = metrics["training"]
    assert training["stopped_early"] and training["epochs_run"] < training["max_epochs"] == 30
    best = min(r["validation_loss"] for r in training["history"])
    assert training["history"][training["chosen_epoch"] - 1]["validation_loss"] == best
    assert metrics["chosen_epoch"] == training["chosen_epoch"]
    assert training["epochs_run"] == training["chosen_epoch"] + training["patience"]

    # a higher epoch limit trains the same epochs and keeps the same model
    shutil.copytree(folder.path, tmp_path / "run", ignore=shutil.ignore_patterns("*metrics*"))
    _, longer = _train(tmp_path / "run", tmp_path / "models", epochs=60)
    assert longer["training"]["chosen_epoch"] == training["chosen_epoch"]
    assert longer["model"] == metrics["model"]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "run" / "forecasts.parquet"),
                                  pd.read_parquet(folder.forecasts))
    # a restarted job finds the finished checkpoint and gives the same result without training
    _, again = _train(tmp_path / "run", tmp_path / "models", epochs=60)
    assert again["model"] == longer["model"] and again["training"] == longer["training"]


def test_trains_on_data_without_the_new_columns(fake_market, tmp_path: Path) -> None:
    """Older training sets (no dip, type, pressure or stock-out columns) still train."""
    run_dir = tmp_path / "run"
    shutil.copytree(fake_market.run_dir, run_dir)
    folder = RunFolder(run_dir)
    for path in (folder.forecaster_train, folder.forecaster_score):
        frame = pd.read_parquet(path)
        frame.drop(columns=[c for c in forecast_data.OPTIONAL if c in frame]).to_parquet(path)
    _, metrics = _train(run_dir, tmp_path / "models", epochs=2)
    forecasts = pd.read_parquet(folder.forecasts)
    assert {"dip_units", "cannibalized_units"} <= set(forecasts.columns)
    assert metrics["calibration"]["rows"] > 0 and set(metrics["model"]) == METRIC_NAMES
