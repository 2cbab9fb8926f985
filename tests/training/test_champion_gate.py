"""The champion/challenger gate on real training (torchrun), a real MLflow registry (SQLite in
the test's work folder) and the files planning reads.

The losing challengers are real models trained badly: the forecaster with learning rate 30
(it diverges: even a calibrated untrained forecaster beats seasonal naive on the fake market),
the recommenders with 0 epochs (never fitted).
"""

from __future__ import annotations

import json
import shutil
import uuid

import pandas as pd
import pytest
import torch
from mlflow import MlflowClient

from local.runner import model_lines
from promoflow.run import Run, RunParams
from publish.publish import metrics_frame
from training.gate import TOLERANCE, decide
from training.launch import TrainingFailed, train_forecaster, train_recommender
from training.recommender.champion import carry_over
from training.recommender.model import TwoTower

BAD_FORECASTER = ["--lr", "30"]
BAD_RECOMMENDER = ["--epochs", "0"]


def _run(settings, fake_market, dataset: str, name: str) -> Run:
    """A run of `dataset` whose folder holds a copy of the fake market's training sets."""
    run = Run(f"{dataset}-{name}", RunParams(dataset=dataset, max_discount=0.3,
                                             discount_step=0.1, epochs=25))
    folder = run.folder(settings)
    shutil.copytree(fake_market.run_dir, folder.path)
    folder.write_json(folder.run_file, run.to_dict())
    return run


def _dataset() -> str:
    return f"gate{uuid.uuid4().hex[:8]}"


def _champion(settings, name: str) -> str | None:
    client = MlflowClient(tracking_uri=settings.mlflow_uri, registry_uri=settings.mlflow_uri)
    version = client.get_registered_model(name).aliases.get("champion")
    return None if version is None else str(version)


def test_decide_baseline_then_tolerance() -> None:
    baseline = {"wape": 0.30}
    assert decide("forecaster", {"wape": 0.31}, baseline, None)[0] is False
    assert decide("forecaster", {"wape": 0.25}, baseline, None)[0] is True
    within = 0.20 * (1 + TOLERANCE) - 1e-6
    assert decide("forecaster", {"wape": within}, baseline, {"wape": 0.20}, "3")[0] is True
    promoted, reason = decide("forecaster", {"wape": 0.21}, baseline, {"wape": 0.20}, "3")
    assert promoted is False and "champion version 3's 0.2000" in reason
    # the recommender beats popularity on recall alone, but regresses on NDCG@10
    popularity = {"ndcg_at_10": 0.10, "recall_at_10": 0.20}
    mine = {"ndcg_at_10": 0.09, "recall_at_10": 0.25}
    assert decide("recommender", mine, popularity, None)[0] is True
    assert decide("recommender", mine, popularity, {"ndcg_at_10": 0.12})[0] is False
    assert decide("recommender", {"ndcg_at_10": 0.09, "recall_at_10": 0.19}, popularity,
                  None)[0] is False


def test_losing_forecaster_plans_with_the_champion(fake_market, settings) -> None:
    dataset = _dataset()
    name = settings.registered_model(dataset, "forecaster")
    good = _run(settings, fake_market, dataset, "good")
    first = train_forecaster(good, settings)
    assert first["decision"]["promoted"] is True
    assert first["decision"]["planned_by_version"] == "1"
    assert _champion(settings, name) == "1"
    champion_forecasts = pd.read_parquet(good.folder(settings).forecasts)
    # a rerun of the same training is the same model: no new version, the same decision
    again = train_forecaster(_run(settings, fake_market, dataset, "again"), settings)
    assert again["decision"] == first["decision"]

    bad = _run(settings, fake_market, dataset, "bad")
    second = train_forecaster(bad, settings, args=BAD_FORECASTER)
    folder = bad.folder(settings)
    metrics = json.loads(folder.metrics("forecaster").read_text())
    decision = metrics["decision"]
    # the challenger really lost to seasonal naive, was registered, and was not promoted
    assert not metrics["model"]["wape"] < metrics["baseline"]["wape"]
    assert second["decision"] == {
        "registered_model": name, "challenger_version": "2", "promoted": False,
        "planned_by_version": "1", "reason": decision["reason"]}
    assert "does not beat seasonal naive" in decision["reason"]
    assert _champion(settings, name) == "1"
    # the champion was re-scored on this run's holdout (the same rows as the first run's)
    assert decision["champion"] == pytest.approx(first["model"]["wape"], rel=1e-4)
    # the forecasts planning reads are the champion's
    pd.testing.assert_frame_equal(pd.read_parquet(folder.forecasts), champion_forecasts,
                                  rtol=1e-4, atol=1e-4)

    rows = metrics_frame(folder).set_index(["model", "metric"])
    assert rows.loc[("forecaster", "planned_by_version"), "model_value"] == 1
    assert rows.loc[("forecaster", "promoted"), "model_value"] == 0
    assert "seasonal naive" in rows.loc[("forecaster", "promoted"), "baseline"]
    text = "\n".join(model_lines(folder.path))
    assert f"planned by champion version 1 of {name}" in text
    assert "not promoted" in text


def test_losing_first_forecaster_stops_the_run(fake_market, settings) -> None:
    dataset = _dataset()
    run = _run(settings, fake_market, dataset, "bad")
    with pytest.raises(TrainingFailed, match="no champion is registered") as failed:
        train_forecaster(run, settings, args=BAD_FORECASTER)
    assert "\n" not in str(failed.value) and str(failed.value).count(". ") == 0
    name = settings.registered_model(dataset, "forecaster")
    assert _champion(settings, name) is None
    folder = run.folder(settings)
    decision = json.loads(folder.metrics("forecaster").read_text())["decision"]
    assert decision["planned_by_version"] is None and decision["challenger_version"] == "1"


def test_losing_recommender_plans_with_the_champion(fake_market, settings) -> None:
    dataset = _dataset()
    name = settings.registered_model(dataset, "recommender")
    good = _run(settings, fake_market, dataset, "good")
    first = train_recommender(good, settings)
    assert first["decision"]["promoted"] is True
    champion_recommendations = pd.read_parquet(good.folder(settings).recommendations)

    bad = _run(settings, fake_market, dataset, "bad")
    second = train_recommender(bad, settings, args=BAD_RECOMMENDER)
    assert second["decision"]["promoted"] is False
    assert second["decision"]["planned_by_version"] == "1"
    assert _champion(settings, name) == "1"
    folder = bad.folder(settings)
    decision = json.loads(folder.metrics("recommender").read_text())["decision"]
    assert decision["champion"] == pytest.approx(first["model"]["ndcg_at_10"], rel=1e-6)
    pd.testing.assert_frame_equal(pd.read_parquet(folder.recommendations),
                                  champion_recommendations, rtol=1e-5)


def test_carry_over_moves_id_rows_with_their_ids() -> None:
    def model(customers: int, products: int, categories: int) -> TwoTower:
        torch.manual_seed(0)
        return TwoTower(torch.randn(customers, 3), torch.zeros(customers, dtype=torch.long),
                        torch.randn(products, 2), torch.zeros(products, dtype=torch.long),
                        categories, dim=4, hidden=8)

    old = model(3, 2, 2)
    weights = {key: value for key, value in old.state_dict().items()
               if not key.endswith(("_features", "_category"))}
    new = carry_over(weights, {"customer": [10, 20, 30], "product": [5, 6],
                               "category": ["a", "b"]},
                     model(2, 3, 2), {"customer": [30, 40], "product": [6, 7, 5],
                                      "category": ["b", "c"]})
    ids = old.customer_tower.id_embedding.weight
    assert torch.equal(new.customer_tower.id_embedding.weight[0], ids[2])
    assert not torch.equal(new.customer_tower.id_embedding.weight[1], ids[1])
    bias = old.product_bias.weight
    assert torch.equal(new.product_bias.weight[0], bias[1])
    assert torch.equal(new.product_bias.weight[2], bias[0])
    categories = old.product_tower.category_embedding.weight
    assert torch.equal(new.product_tower.category_embedding.weight[1], categories[2])  # b
    assert torch.equal(new.product_tower.category_embedding.weight[0], categories[0])  # unknown
    assert torch.equal(new.product_tower.mlp[0].weight, old.product_tower.mlp[0].weight)
