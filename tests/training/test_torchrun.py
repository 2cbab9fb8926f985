"""Both models trained for real by two torchrun processes (gloo on CPU) on the fake market."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
import torch

from local.runner import model_lines
from promoflow.run import Run, RunFolder, RunParams
from publish.publish import metrics_frame
from training.forecaster.backtest import backtest_path
from training.launch import TrainingFailed, run_torchrun

FORECAST_COLUMNS = ["product_id", "week_start", "discount_depth", "units_p10", "units_p50",
                    "units_p90", "dip_units", "cannibalized_units"]
METRIC_NAMES = {"wape", "bias", "mase", "quantile_loss", "p10_p90_coverage"}
RECOMMENDATION_COLUMNS = ["product_id", "customer_id", "score", "rank"]


@pytest.fixture
def run_dir(fake_market, tmp_path: Path) -> Path:
    """A private copy of the fake market's training sets."""
    target = tmp_path / "run"
    shutil.copytree(fake_market.run_dir, target)
    return target


def test_forecaster_under_torchrun(fake_market, run_dir: Path, settings, tmp_path: Path) -> None:
    models = tmp_path / "models"
    folder = RunFolder(run_dir)
    run = Run("torchrun-test", RunParams(max_discount=0.3, discount_step=0.1, epochs=25))
    folder.write_json(folder.run_file, run.to_dict())
    run_torchrun("training.forecaster.train", ["--run-dir", run_dir, "--models-dir", models],
                 nproc=2, settings=settings)

    forecasts = pd.read_parquet(folder.forecasts)
    assert list(forecasts.columns) == FORECAST_COLUMNS
    assert sorted(forecasts["discount_depth"].unique()) == [0.0, 0.1, 0.2, 0.3]
    assert forecasts.groupby("product_id").size().eq(4).all()
    assert forecasts["product_id"].nunique() == 24
    assert set(forecasts["week_start"]) == {fake_market.plan_week}
    assert (forecasts["units_p10"] <= forecasts["units_p50"]).all()
    assert (forecasts["units_p50"] <= forecasts["units_p90"]).all()
    ordered = forecasts.sort_values(["product_id", "discount_depth"])
    for column in ("units_p10", "units_p50", "units_p90", "dip_units", "cannibalized_units"):
        assert (ordered.groupby("product_id")[column].diff().dropna() >= 0).all(), column
    at_zero = ordered[ordered["discount_depth"] == 0]
    assert (at_zero[["dip_units", "cannibalized_units"]] == 0).all().all()
    promoted = ordered[ordered["discount_depth"] > 0]
    assert (promoted["dip_units"] > 0).all() and (promoted["cannibalized_units"] > 0).all()

    # the price response follows the true elasticities: the most elastic category gains more
    wide = ordered.pivot(index="product_id", columns="discount_depth", values="units_p50")
    lift = (wide[0.3] / wide[0.0]).groupby((wide.index - 1) % 4).mean()
    assert lift[3] > lift[0] > 1.0

    metrics = json.loads(folder.metrics("forecaster").read_text())
    assert metrics["holdout_weeks"] == 8 and metrics["train_rows"] == 24 * 72
    assert metrics["fit_rows"] == 24 * 64 and metrics["validation_rows"] == 24 * 8
    for side in ("model", "baseline", "lightgbm"):
        assert set(metrics[side]) == METRIC_NAMES
    assert metrics["model"]["wape"] < 0.8 * metrics["baseline"]["wape"]
    assert metrics["model"]["mase"] < metrics["baseline"]["mase"]
    assert metrics["model"]["quantile_loss"] < metrics["baseline"]["quantile_loss"]
    assert {"bias_at_discount_0", "p10_p90_coverage", "rows"} <= set(metrics["calibration"])

    training = metrics["training"]
    assert 1 <= training["chosen_epoch"] == metrics["chosen_epoch"] <= training["epochs_run"] <= 25
    assert len(training["history"]) == training["epochs_run"]
    backtest = pd.read_parquet(backtest_path(folder))
    assert set(backtest["model"]) == {"model", "seasonal_naive", "lightgbm"}
    assert backtest["week_start"].nunique() == 8 + 1  # each holdout week, then overall
    assert len(metrics["backtest"]) == len(backtest) == 3 * 9

    state = torch.load(models / "forecaster" / "checkpoint.pt", weights_only=False)
    assert state["epoch"] == training["epochs_run"] - 1 and state["step"] > 0
    assert state["extra"]["early_stopping"]["finished"]
    assert not list(run_dir.glob(".*.tmp"))


def test_recommender_under_torchrun(fake_market, run_dir: Path, settings, tmp_path: Path) -> None:
    """Both learned models (the sequence model included) trained by DDP, the champion refitted."""
    models = tmp_path / "models"
    folder = RunFolder(run_dir)  # no run.json: the run's parameters are RunParams() defaults
    run_torchrun("training.recommender.train",
                 ["--run-dir", run_dir, "--models-dir", models, "--epochs", "6",
                  "--top-n", "50", "--embedding-dim", "16"], nproc=2, settings=settings)

    recs = pd.read_parquet(folder.recommendations)
    assert list(recs.columns) == RECOMMENDATION_COLUMNS
    assert recs["product_id"].nunique() == 24
    for _, group in recs.groupby("product_id"):
        assert group["rank"].tolist() == list(range(1, 51))
        assert group["customer_id"].is_unique
        assert (np.diff(group["score"].to_numpy()) <= 0).all()
    assert set(recs["customer_id"]) <= set(fake_market.customer_favourite)

    # customers are recommended the products of their favourite category
    products = pd.read_parquet(folder.recommender_products)
    category = recs["product_id"].map(products.set_index("product_id")["category"])
    favourite = recs["customer_id"].map(fake_market.customer_favourite)
    assert (category == favourite).mean() > 0.8

    metrics = json.loads(folder.metrics("recommender").read_text())
    assert metrics["holdout_weeks"] == 4 and metrics["train_interactions"] > 0
    assert metrics["holdout_start"] == str(fake_market.plan_week - timedelta(weeks=4))
    for side in ("model", "baseline"):
        assert set(metrics[side]) == {"recall_at_10", "ndcg_at_10"}
    assert list(metrics["models"]) == ["popularity", "item_knn", "ease", "two_tower", "sequence"]
    for name, summary in metrics["models"].items():
        for metric in ("recall_at_10", "ndcg_at_10"):
            assert (summary[f"{metric}_ci_low"] <= summary[metric]
                    <= summary[f"{metric}_ci_high"]), name
    assert metrics["models"]["popularity"]["ndcg_at_10"] == metrics["baseline"]["ndcg_at_10"]
    champion = metrics["champion"]
    assert champion == max(("two_tower", "sequence"),
                           key=lambda name: metrics["models"][name]["ndcg_at_10"])
    assert metrics["model"]["ndcg_at_10"] == metrics["models"][champion]["ndcg_at_10"]
    for name in ("two_tower", "sequence"):  # both learn the favourite categories under DDP
        assert metrics["models"][name]["ndcg_at_10"] > metrics["baseline"]["ndcg_at_10"] + 0.1
    assert metrics["model"]["recall_at_10"] > metrics["baseline"]["recall_at_10"] + 0.1

    for name in ("two_tower", "sequence"):
        state = torch.load(models / "recommender" / f"holdout_{name}.pt", weights_only=False)
        assert state["extra"]["kind"] == name and state["epoch"] == 5 and state["step"] > 0
    final = torch.load(models / "recommender" / "checkpoint.pt", weights_only=False)
    assert final["extra"]["kind"] == champion

    # what the publish stage and the run summary make of the metrics
    published = metrics_frame(folder)
    candidates = published[published["model"].str.startswith("recommender/")]
    assert set(candidates["model"]) == {f"recommender/{name}" for name in metrics["models"]}
    assert candidates.groupby("model").size().eq(6).all()
    assert (candidates["baseline"] == "popularity").all() and candidates.notna().all().all()
    lines = model_lines(run_dir)
    assert champion in lines[1] and f"champion {champion}" in lines[-1]
    assert [line.split()[0] for line in lines[3:8]] == list(metrics["models"])


def test_failed_job_raises_one_line_error(settings, tmp_path: Path) -> None:
    with pytest.raises(TrainingFailed) as failure:
        run_torchrun("training.forecaster.train", ["--run-dir", tmp_path / "missing"],
                     nproc=2, settings=settings)
    message = str(failure.value)
    assert "\n" not in message
    assert "forecaster_train.parquet does not exist" in message


def test_a_killed_worker_fails_the_job_and_a_rerun_resumes(
    run_dir: Path, settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """kill -9 of one torchrun worker mid-training: one sentence, then the same command resumes
    from the last epoch's checkpoint instead of starting over."""
    models = tmp_path / "models"
    checkpoint = models / "recommender" / "holdout_two_tower.pt"
    args = ["--run-dir", run_dir, "--models-dir", models, "--epochs", "400",
            "--sequence-epochs", "1", "--top-n", "20", "--no-refit"]
    failure: list[BaseException] = []

    def train() -> None:
        try:
            run_torchrun("training.recommender.train", args, nproc=2, settings=settings)
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            failure.append(error)

    job = threading.Thread(target=train)
    job.start()
    deadline = time.monotonic() + 240
    while not checkpoint.exists() and job.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = [p for p in psutil.process_iter(["cmdline"])
               if "training.recommender.train" in " ".join(p.info["cmdline"] or [])
               and str(run_dir) in " ".join(p.info["cmdline"] or [])
               and "torch.distributed.run" not in " ".join(p.info["cmdline"] or [])]
    assert checkpoint.exists() and len(workers) == 2, "the job ended before it could be killed"
    killed = torch.load(checkpoint, weights_only=False)["epoch"]
    assert killed < 399
    os.kill(workers[-1].pid, signal.SIGKILL)
    job.join(timeout=120)
    assert not job.is_alive() and len(failure) == 1
    assert isinstance(failure[0], TrainingFailed)
    message = str(failure[0])
    assert "\n" not in message and "exit status" in message and message.endswith(".")

    caplog.clear()
    with caplog.at_level("INFO", logger="training.launch"):
        run_torchrun("training.recommender.train", args, nproc=2, settings=settings)
    resumed = [r.getMessage() for r in caplog.records if "resumed from" in r.getMessage()
               and "holdout_two_tower.pt" in r.getMessage()]
    assert resumed, "the rerun started over instead of resuming"
    epoch = int(resumed[0].split("at epoch ")[1].split()[0])
    assert epoch >= killed
    assert torch.load(checkpoint, weights_only=False)["epoch"] == 399
    assert RunFolder(run_dir).recommendations.exists()
