"""A plain single-process run (no torchrun) is deterministic for a given seed, and reports its
training throughput."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from promoflow.run import RunFolder
from training.forecaster.train import DataConfig, ForecasterConfig, TrainerConfig, train
from training.recommender import train as recommender

#: measured, so different on every run
THROUGHPUT_KEYS = ("train_samples_per_s", "device", "world_size", "throughput")


def _without_throughput(metrics: dict) -> dict:
    """The metrics without the measured throughput, after checking it is there."""
    assert metrics["train_samples_per_s"] > 0
    assert metrics["device"] == "cpu" and metrics["world_size"] == 1
    epochs = metrics["throughput"]["epochs"]
    assert epochs and all(e["samples"] > 0 and e["samples_per_s"] > 0 for e in epochs)
    return {key: value for key, value in metrics.items() if key not in THROUGHPUT_KEYS}


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
    assert _without_throughput(results[0][0]) == _without_throughput(results[1][0])
    assert len(results[0][0]["throughput"]["epochs"]) == results[0][0]["training"]["epochs_run"]
    pd.testing.assert_frame_equal(results[0][1], results[1][1])


def test_recommender_single_process_is_deterministic(fake_market, tmp_path: Path) -> None:
    frames = []
    for name in ("a", "b"):
        run_dir = _copy(fake_market, tmp_path / name)
        metrics = recommender.train(recommender.RecommenderConfig(
            data=recommender.DataConfig(run_dir=run_dir, top_n=20),
            model=recommender.ModelConfig(embedding_dim=8, hidden_dim=16),
            trainer=recommender.TrainerConfig(epochs=1, seed=5, refit=False,
                                              models_dir=tmp_path / f"models_{name}"),
            sequence=recommender.SequenceConfig(epochs=1),
        ))
        frames.append(pd.read_parquet(RunFolder(run_dir).recommendations))
        _without_throughput(metrics)
        # one epoch of each learned model, every training row (or window) counted once
        assert [e["model"] for e in metrics["throughput"]["epochs"]] == [
            "recommender[two_tower, holdout]", "recommender[sequence, holdout]"]
        assert metrics["throughput"]["epochs"][0]["samples"] == metrics["train_interactions"]
        assert (tmp_path / f"models_{name}" / "recommender" / "checkpoint.pt").exists()
    pd.testing.assert_frame_equal(frames[0], frames[1])
