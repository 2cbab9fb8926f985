"""A plain single-process run (no torchrun) is deterministic for a given seed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from promoflow.run import RunFolder
from training.forecaster.train import DataConfig, ForecasterConfig, TrainerConfig, train
from training.recommender import train as recommender


def _copy(fake_market, target: Path) -> Path:
    shutil.copytree(fake_market.run_dir, target)
    return target


def test_forecaster_single_process_is_deterministic(fake_market, tmp_path: Path) -> None:
    results = []
    for name in ("a", "b"):
        run_dir = _copy(fake_market, tmp_path / name)
        metrics = train(ForecasterConfig(
            data=DataConfig(run_dir=run_dir),
            trainer=TrainerConfig(epochs=3, seed=5, models_dir=tmp_path / f"models_{name}"),
        ))
        results.append((metrics, pd.read_parquet(RunFolder(run_dir).forecasts)))
    assert results[0][0] == results[1][0]
    pd.testing.assert_frame_equal(results[0][1], results[1][1])


def test_recommender_single_process_is_deterministic(fake_market, tmp_path: Path) -> None:
    frames = []
    for name in ("a", "b"):
        run_dir = _copy(fake_market, tmp_path / name)
        recommender.train(recommender.RecommenderConfig(
            data=recommender.DataConfig(run_dir=run_dir, top_n=20),
            model=recommender.ModelConfig(embedding_dim=8, hidden_dim=16),
            trainer=recommender.TrainerConfig(epochs=1, seed=5, refit=False,
                                              models_dir=tmp_path / f"models_{name}"),
            sequence=recommender.SequenceConfig(epochs=1),
        ))
        frames.append(pd.read_parquet(RunFolder(run_dir).recommendations))
        assert (tmp_path / f"models_{name}" / "recommender" / "checkpoint.pt").exists()
    pd.testing.assert_frame_equal(frames[0], frames[1])
