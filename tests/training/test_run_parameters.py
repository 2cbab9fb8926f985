"""The train modules take the run's parameters from its run.json: the forecaster forecasts the
run's discount grid, the recommender keeps the run's audience size per product."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from promoflow.run import Run, RunFolder, RunParams
from training.forecaster import train as forecaster
from training.recommender import train as recommender


def _run_folder(fake_market, target: Path, **params) -> RunFolder:
    shutil.copytree(fake_market.run_dir, target)
    folder = RunFolder(target)
    folder.write_json(folder.run_file, Run("unit", RunParams(**params)).to_dict())
    return folder


def test_forecaster_forecasts_the_run_grid(fake_market, tmp_path: Path) -> None:
    folder = _run_folder(fake_market, tmp_path / "run", max_discount=0.2, discount_step=0.05,
                         epochs=1, seed=3)
    cfg = forecaster.parse_args(["--run-dir", str(folder.path),
                                 "--models-dir", str(tmp_path / "models")])
    assert cfg.trainer.epochs == 1 and cfg.trainer.seed == 3
    forecaster.train(cfg)
    levels = sorted(pd.read_parquet(folder.forecasts)["discount_depth"].unique())
    assert tuple(levels) == RunParams(max_discount=0.2, discount_step=0.05).discount_levels
    assert tuple(levels) == (0.0, 0.05, 0.1, 0.15, 0.2)


@pytest.mark.parametrize(("audience", "expected"), [(250, 250), (100_000, 300)])
def test_recommender_keeps_the_run_audience(fake_market, tmp_path: Path, audience: int,
                                            expected: int, monkeypatch) -> None:
    """More than the 200 once kept, and never more than the 300 customers there are."""
    folder = _run_folder(fake_market, tmp_path / "run", audience_size=audience, epochs=1)
    cfg = recommender.parse_args(["--run-dir", str(folder.path), "--no-refit",
                                  "--models-dir", str(tmp_path / "models"),
                                  "--embedding-dim", "8", "--hidden-dim", "16"])
    assert cfg.data.top_n == audience
    monkeypatch.setattr(recommender, "SCORE_BLOCK", 300 * 5)  # 5 products per appended block
    recommender.train(cfg)
    recs = pd.read_parquet(folder.recommendations)
    assert recs.groupby("product_id").size().eq(expected).all()
    assert recs["product_id"].nunique() == 24 and recs["product_id"].is_monotonic_increasing
    for _, group in recs.groupby("product_id"):
        assert group["rank"].tolist() == list(range(1, expected + 1))
        assert group["customer_id"].is_unique and group["score"].is_monotonic_decreasing
    assert not list(folder.path.glob(".*.tmp"))
