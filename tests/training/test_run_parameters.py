"""The train modules take the run's parameters from its run.json (RunParams defaults without
one, options on the command line first): the forecaster forecasts the run's discount grid, the
recommender keeps the run's audience size per product, streamed and tie-stable."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from promoflow.run import Run, RunFolder, RunParams
from training.forecaster import train as forecaster
from training.recommender import train as recommender
from training.recommender.data import load
from training.recommender.model import TwoTower


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


@pytest.mark.parametrize(("audience", "expected"), [(80, 240), (100_000, 300)])
def test_recommender_keeps_candidates_for_the_run_audience(fake_market, tmp_path: Path,
                                                           audience: int, expected: int,
                                                           monkeypatch) -> None:
    """CANDIDATE_FACTOR x the audience, never more than the 300 customers there are."""
    folder = _run_folder(fake_market, tmp_path / "run", audience_size=audience, epochs=1)
    cfg = recommender.parse_args(["--run-dir", str(folder.path), "--no-refit",
                                  "--models-dir", str(tmp_path / "models"),
                                  "--embedding-dim", "8", "--hidden-dim", "16"])
    assert cfg.data.top_n == recommender.CANDIDATE_FACTOR * audience
    monkeypatch.setattr(recommender, "SCORE_BLOCK", 300 * 5)  # 5 products per appended block
    recommender.train(cfg)
    recs = pd.read_parquet(folder.recommendations)
    assert recs.groupby("product_id").size().eq(expected).all()
    assert recs["product_id"].nunique() == 24 and recs["product_id"].is_monotonic_increasing
    for _, group in recs.groupby("product_id"):
        assert group["rank"].tolist() == list(range(1, expected + 1))
        assert group["customer_id"].is_unique and group["score"].is_monotonic_decreasing
    assert not list(folder.path.glob(".*.tmp"))


def test_without_run_json_the_clis_take_the_default_run(fake_market, tmp_path: Path) -> None:
    """A standalone CLI needs only --run-dir: the run's parameters are RunParams() defaults."""
    run_dir = str(fake_market.run_dir)
    assert not RunFolder(fake_market.run_dir).run_file.exists()
    defaults = RunParams()
    cfg = forecaster.parse_args(["--run-dir", run_dir])
    assert cfg.data.discount_levels == defaults.discount_levels
    assert cfg.trainer.seed == defaults.seed
    assert cfg.trainer.epochs == forecaster.TrainerConfig().epochs  # the run's 0: model default
    rec = recommender.parse_args(["--run-dir", run_dir])
    assert rec.data.top_n == recommender.CANDIDATE_FACTOR * defaults.audience_size
    assert rec.trainer.refit


def test_command_line_options_override_the_run(fake_market, tmp_path: Path) -> None:
    folder = _run_folder(fake_market, tmp_path / "run", audience_size=700, epochs=4, seed=9)
    cfg = recommender.parse_args(["--run-dir", str(folder.path), "--top-n", "30", "--seed", "1",
                                  "--lr", "0.01", "--no-refit"])
    assert (cfg.data.top_n, cfg.trainer.seed, cfg.trainer.epochs) == (30, 1, 4)
    assert cfg.optim.lr == 0.01 and not cfg.trainer.refit
    assert cfg.optim.batch_size == recommender.OptimConfig().batch_size


def test_top_rows_breaks_ties_by_the_lower_row() -> None:
    scores = torch.tensor([[0.1, 0.5], [0.3, 0.2], [0.3, 0.5], [0.3, 0.5], [0.0, 0.1]])
    values, rows = recommender.top_rows(scores, 3)
    assert rows.tolist() == [[1, 2, 3], [0, 2, 3]]
    assert torch.equal(values, torch.tensor([[0.3, 0.3, 0.3], [0.5, 0.5, 0.5]]))
    values, rows = recommender.top_rows(scores, 2)  # the tie at the cut keeps the lower rows
    assert rows.tolist() == [[1, 2], [0, 2]]
    values, rows = recommender.top_rows(scores, 4)
    assert rows.tolist() == [[1, 2, 3, 0], [0, 2, 3, 1]]


def test_streamed_recommendations_are_the_catalogue_softmax(fake_market, tmp_path: Path,
                                                            monkeypatch) -> None:
    """Block by block, the scores are each customer's softmax over the whole catalogue."""
    data = load(fake_market.run_dir, holdout_weeks=4)
    torch.manual_seed(0)
    tables = data.at_plan_week
    model = TwoTower(tables.customer_features, tables.customer_category, tables.product_features,
                     tables.product_category, data.n_categories, dim=8, hidden=16)
    monkeypatch.setattr(recommender, "SCORE_BLOCK", 300 * 7)  # 7 products per block
    path = tmp_path / "recommendations.parquet"
    assert recommender.write_recommendations(model, data, 40, path, chunk=64) == 40 * 24
    with torch.no_grad():
        softmax = torch.softmax(model(torch.arange(data.n_customers)), dim=1).numpy()
    recs = pd.read_parquet(path)
    assert recs["product_id"].tolist() == np.repeat(data.product_ids, 40).tolist()
    customer = pd.Series(np.arange(data.n_customers), index=data.customer_ids)
    product = pd.Series(np.arange(data.n_products), index=data.product_ids)
    expected = softmax[customer[recs["customer_id"]].to_numpy(),
                       product[recs["product_id"]].to_numpy()]
    np.testing.assert_allclose(recs["score"].to_numpy(), expected, rtol=1e-5)
    best = np.sort(softmax, axis=0)[::-1][:40].T.reshape(-1)  # the 40 best of every product
    np.testing.assert_allclose(recs["score"].to_numpy(), best, rtol=1e-5)
