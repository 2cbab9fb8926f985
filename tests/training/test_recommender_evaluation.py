"""The recommender's evaluation: snapshots as of the holdout start, baselines, intervals, the
sequence model and the champion."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from promoflow.run import RunFolder
from tests.training.fake_market import FakeMarket, build_fake_market
from training.recommender import baselines, evaluate
from training.recommender import train as recommender
from training.recommender.data import load
from training.recommender.sequence import histories, ordered_purchases, training_windows


def _config(run_dir: Path, models: Path, *, epochs: int = 1, refit: bool = False,
            sequence_epochs: int = 1, sequence_lr: float = 3e-3
            ) -> recommender.RecommenderConfig:
    cfg = recommender.RecommenderConfig(
        data=recommender.DataConfig(run_dir=run_dir, top_n=20),
        model=recommender.ModelConfig(embedding_dim=8, hidden_dim=16),
        trainer=recommender.TrainerConfig(epochs=epochs, seed=3, refit=refit, models_dir=models),
    )
    return replace(cfg, sequence=replace(cfg.sequence, dim=16, epochs=sequence_epochs,
                                         lr=sequence_lr))


def _copy(fake_market: FakeMarket, target: Path) -> RunFolder:
    shutil.copytree(fake_market.run_dir, target)
    return RunFolder(target)


def test_the_evaluation_sees_only_the_snapshot_as_of_the_holdout_start(fake_market,
                                                                       tmp_path: Path) -> None:
    """Scrambling the plan-week snapshots (features that cover the holdout weeks) leaves every
    holdout metric as it was; scrambling the holdout-start snapshots changes the learned ones."""
    results = {}
    for case in ("as_built", "plan_week_changed", "holdout_start_changed"):
        folder = _copy(fake_market, tmp_path / case)
        if case != "as_built":
            suffix = "" if case == "plan_week_changed" else "_at_holdout"
            customers_path = getattr(folder, f"recommender_customers{suffix}")
            customers = pd.read_parquet(customers_path)
            customers["monetary_value_52w"] = customers["monetary_value_52w"].to_numpy()[::-1]
            customers["top_category"] = "cat_0"
            customers.to_parquet(customers_path)
            products_path = getattr(folder, f"recommender_products{suffix}")
            products = pd.read_parquet(products_path)
            products["list_price"] = products["list_price"].to_numpy()[::-1]
            products.to_parquet(products_path)
        results[case] = recommender.train(_config(folder.path, tmp_path / f"models_{case}"))
    as_built = results["as_built"]["models"]
    assert results["plan_week_changed"]["models"] == as_built
    changed = results["holdout_start_changed"]["models"]
    assert changed["two_tower"] != as_built["two_tower"]
    assert changed["sequence"] != as_built["sequence"]
    assert changed["popularity"] == as_built["popularity"]  # the baselines read no features


def test_the_holdout_model_reads_the_holdout_start_tables(fake_market) -> None:
    data = load(fake_market.run_dir, holdout_weeks=4)
    assert data.holdout_start == pd.Timestamp(fake_market.plan_week) - pd.Timedelta(weeks=4)
    assert data.train["week_start"].max() < data.holdout_start <= data.holdout["week_start"].min()
    cfg = recommender.RecommenderConfig()
    model = recommender.build_model("sequence", cfg, data, data.at_holdout, data.train)
    assert torch.equal(model.customer_features, data.at_holdout.customer_features)
    assert not torch.equal(model.customer_features, data.at_plan_week.customer_features)
    items, lengths = histories(data.train, data.n_customers, data.n_products,
                               cfg.sequence.max_length)
    assert torch.equal(model.histories, items) and torch.equal(model.history_lengths, lengths)


def test_a_missing_or_mismatched_holdout_snapshot_is_one_sentence(fake_market,
                                                                  tmp_path: Path) -> None:
    folder = _copy(fake_market, tmp_path / "run")
    with pytest.raises(ValueError) as mismatch:  # the files were built for 4 holdout weeks
        load(folder.path, holdout_weeks=6)
    message = str(mismatch.value)
    assert "\n" not in message and message.count(". ") == 0 and message.endswith(".")
    assert "recommender_customers_at_holdout.parquet holds features as of 2026-06-22" in message
    assert "not the holdout start 2026-06-08" in message

    frame = pd.read_parquet(folder.recommender_products_at_holdout)
    frame.drop(columns="event_timestamp").to_parquet(folder.recommender_products_at_holdout)
    with pytest.raises(ValueError, match="recommender_products_at_holdout.parquet holds no "
                                         "event_timestamp stamp"):
        load(folder.path, holdout_weeks=4)

    folder.recommender_products_at_holdout.unlink()  # a run folder from before these files
    with pytest.raises(FileNotFoundError) as missing:
        recommender.train(_config(folder.path, tmp_path / "models"))
    assert "\n" not in str(missing.value)
    assert "rebuild the training sets" in str(missing.value)


def test_item_knn_and_ease_on_a_hand_made_matrix() -> None:
    """Items 0 and 1 are bought together, so are 2 and 3; 2 is the most popular."""
    baskets = [{0, 1}, {0, 1}, {0, 1, 2}, {2, 3}, {2, 3}, {2}, {0}, {3}]
    rows = [(c, i) for c, basket in enumerate(baskets) for i in basket]
    train = pd.DataFrame(rows, columns=["customer_idx", "product_idx"]).assign(units=1.0)
    matrix = baselines.purchase_matrix(train, len(baskets), 4)
    units = baselines.popularity(train, 4)
    assert units.tolist() == [4.0, 3.0, 4.0, 3.0]

    knn = baselines.item_knn(matrix, units, neighbours=1)
    # cosine: sim(0, 1) = 3 / sqrt(4 * 3); item 2's nearest is 3 (2 / sqrt(4 * 3))
    np.testing.assert_allclose(knn.weights[0], [0, 3 / np.sqrt(12), 0, 0])
    np.testing.assert_allclose(knn.weights[2], [0, 0, 0, 2 / np.sqrt(12)])
    assert knn.top_k(matrix, [6, 7], 2).tolist() == [[1, 0], [2, 0]]  # then by popularity

    lam = 1.0
    ease = baselines.ease(matrix, units, lam)
    assert np.allclose(np.diag(ease.weights), 0.0)
    x = matrix.toarray()
    for j in range(4):  # each column is the ridge regression of item j on the other items
        others = [i for i in range(4) if i != j]
        ridge = np.linalg.solve(x[:, others].T @ x[:, others] + lam * np.eye(3),
                                x[:, others].T @ x[:, j])
        np.testing.assert_allclose(ease.weights[others, j], ridge, rtol=1e-9, atol=1e-12)
    assert ease.top_k(matrix, [6, 7], 1).tolist() == [[1], [2]]
    # customers without purchases get the popularity list (ties: the lower index)
    empty = sp.csr_matrix((1, 4))
    assert ease.top_k(empty, [0], 4).tolist() == [[0, 2, 1, 3]]


def test_the_catalogue_cap_keeps_the_most_bought_products(monkeypatch) -> None:
    train = pd.DataFrame({"customer_idx": [0, 0, 1, 1, 2], "product_idx": [0, 1, 1, 2, 2],
                          "units": [1.0, 1.0, 1.0, 5.0, 5.0]})
    matrix = baselines.purchase_matrix(train, 3, 3)
    units = baselines.popularity(train, 3)
    monkeypatch.setattr(baselines, "MAX_ITEMS", 2)
    for model in (baselines.ease(matrix, units, 1.0), baselines.item_knn(matrix, units)):
        assert model.items.tolist() == [1, 2] and model.weights.shape == (2, 2)
        assert 0 not in model.top_k(matrix, [0, 1, 2], 2)


def test_a_cap_above_the_catalogue_gives_the_uncapped_baselines() -> None:
    """With max_items >= the products nothing is left out: EASE is the closed form over the
    whole catalogue, item-kNN the same, and their rankings do not depend on the cap."""
    rng = np.random.default_rng(11)
    n_customers, n_products, lam = 200, 40, 5.0
    bought = rng.random((n_customers, n_products)) < rng.uniform(0.02, 0.3, n_products)
    customer, product = np.nonzero(bought)
    train = pd.DataFrame({"customer_idx": customer, "product_idx": product,
                          "units": rng.integers(1, 4, len(customer)).astype(float)})
    matrix = baselines.purchase_matrix(train, n_customers, n_products)
    units = baselines.popularity(train, n_products)
    customers = list(range(n_customers))

    x = bought.astype(float)
    p = np.linalg.inv(x.T @ x + lam * np.eye(n_products))
    uncapped = np.eye(n_products) - p / np.diag(p)[None, :]
    for cap in (n_products, n_products + 1, 10 * n_products):
        ease = baselines.ease(matrix, units, lam, max_items=cap)
        assert ease.items.tolist() == list(range(n_products))
        np.testing.assert_allclose(ease.weights, uncapped, rtol=1e-9, atol=1e-12)
        scores = x @ uncapped + 1e-9 * units / units.max()
        expected = np.argsort(-scores, axis=1, kind="stable")[:, :10]
        assert (ease.top_k(matrix, customers, 10) == expected).all()
    knn = [baselines.item_knn(matrix, units, max_items=cap) for cap in (n_products, 999)]
    np.testing.assert_array_equal(knn[0].weights, knn[1].weights)
    assert (knn[0].top_k(matrix, customers, 10) == knn[1].top_k(matrix, customers, 10)).all()

    # a binding cap keeps the most bought and ranks the others after them, by popularity
    capped = baselines.ease(matrix, units, lam, max_items=5)
    assert sorted(capped.items) == sorted(np.argsort(-units, kind="stable")[:5])
    top = capped.top_k(matrix, customers, 8)
    assert (np.sort(top[:, :5], axis=1) == np.sort(capped.items)).all()
    others = [i for i in np.argsort(-units, kind="stable") if i not in set(capped.items)]
    assert (top[:, 5:] == others[:3]).all()
    with pytest.raises(ValueError, match="at least one product"):
        baselines.ease(matrix, units, lam, max_items=0)


def test_the_interval_holds_the_mean_and_narrows_with_more_customers() -> None:
    rng = np.random.default_rng(0)
    widths = []
    for n in (100, 10_000):
        values = rng.binomial(1, 0.3, n).astype(float)
        low, high = evaluate.bootstrap_interval(values, seed=5)
        assert low < values.mean() < high
        assert (low, high) == evaluate.bootstrap_interval(values, seed=5)  # seeded
        widths.append(high - low)
    assert widths[1] < widths[0] / 5  # about 1/sqrt(100) as wide
    summary = evaluate.summarize({"ndcg_at_10": np.array([0.0, 1.0, 0.5, 0.5])}, seed=1)
    assert set(summary) == {"ndcg_at_10", "ndcg_at_10_ci_low", "ndcg_at_10_ci_high"}
    assert summary["ndcg_at_10_ci_low"] <= 0.5 <= summary["ndcg_at_10_ci_high"]


def test_histories_and_windows_follow_the_purchase_order() -> None:
    """Weeks in order, a fixed order within a week; windows cut from the latest purchase."""
    weeks = pd.to_datetime(["2025-01-06", "2025-01-13", "2025-01-13", "2025-01-20", "2025-01-27",
                            "2025-01-06"])
    frame = pd.DataFrame({"customer_idx": [0, 0, 0, 0, 0, 2], "product_idx": [4, 1, 2, 3, 0, 1],
                          "week_start": weeks})
    order = ordered_purchases(frame)
    first = order[order["customer_idx"] == 0]["product_idx"].tolist()
    assert first[0] == 4 and set(first[1:3]) == {1, 2} and first[3:] == [3, 0]
    assert ordered_purchases(frame.iloc[::-1]).equals(order)  # the input order does not matter
    items, lengths = histories(frame, n_customers=3, pad=9, max_length=3)
    assert items.tolist() == [first[2:], [9, 9, 9], [1, 9, 9]]
    assert lengths.tolist() == [3, 0, 1]
    owners, windows = training_windows(frame, pad=9, max_length=2)  # windows of 3 purchases
    assert owners.tolist() == [0, 0, 2]
    assert windows.tolist() == [first[2:], first[:2] + [9], [1, 9, 9]]


def test_choose_champion_takes_the_higher_ndcg_and_says_why() -> None:
    def summary(ndcg: float, half_width: float) -> dict[str, float]:
        return {"ndcg_at_10": ndcg, "ndcg_at_10_ci_low": ndcg - half_width,
                "ndcg_at_10_ci_high": ndcg + half_width}

    name, reason = recommender.choose_champion({"two_tower": summary(0.30, 0.01),
                                                "sequence": summary(0.20, 0.01)})
    assert name == "two_tower"
    assert reason == ("higher holdout NDCG@10 than sequence: 0.3000 vs 0.2000 "
                      "(95% intervals do not overlap)")
    name, reason = recommender.choose_champion({"two_tower": summary(0.20, 0.05),
                                                "sequence": summary(0.25, 0.05)})
    assert name == "sequence" and reason.endswith("(95% intervals overlap)")
    name, _ = recommender.choose_champion({"two_tower": summary(0.2, 0.0),
                                           "sequence": summary(0.2, 0.0)})
    assert name == "two_tower"


@pytest.fixture(scope="module")
def sequential_market(tmp_path_factory: pytest.TempPathFactory) -> FakeMarket:
    """150 customers walking a hidden cycle of 24 products for 30 weeks."""
    return build_fake_market(tmp_path_factory.mktemp("sequential") / "run", seed=11,
                             n_customers=150, n_weeks=30, sequential=True)


def test_the_sequence_model_learns_the_order_and_as_champion_writes_the_recommendations(
    sequential_market: FakeMarket, tmp_path: Path
) -> None:
    folder = _copy(sequential_market, tmp_path / "run")
    models = tmp_path / "models"
    cfg = _config(folder.path, models, epochs=2, refit=True, sequence_epochs=8,
                  sequence_lr=1e-2)
    metrics = recommender.train(cfg)

    scores = {name: metrics["models"][name]["ndcg_at_10"] for name in metrics["models"]}
    assert list(scores) == ["popularity", "item_knn", "ease", "two_tower", "sequence"]
    assert scores["sequence"] > scores["popularity"] + 0.3
    assert metrics["models"]["sequence"]["ndcg_at_10_ci_low"] > max(
        metrics["models"][name]["ndcg_at_10_ci_high"] for name in ("popularity", "two_tower"))
    assert metrics["champion"] == "sequence"
    assert metrics["model"] == {key: metrics["models"]["sequence"][key]
                                for key in ("recall_at_10", "ndcg_at_10")}
    assert metrics["baseline"] == {key: metrics["models"]["popularity"][key]
                                   for key in ("recall_at_10", "ndcg_at_10")}

    # the written recommendations are the refitted sequence model's, read back from its checkpoint
    state = torch.load(models / "recommender" / "checkpoint.pt", weights_only=False)
    assert state["extra"]["kind"] == "sequence"
    data = load(folder.path, cfg.data.holdout_weeks)
    final = recommender.build_model("sequence", cfg, data, data.at_plan_week, data.interactions)
    final.load_state_dict(state["model"])
    again = tmp_path / "again.parquet"
    recommender.write_recommendations(final, data, cfg.data.top_n, again)
    written = pd.read_parquet(folder.recommendations)
    pd.testing.assert_frame_equal(written, pd.read_parquet(again))

    # ...and follow the cycle: a product's best customers just bought the product before it
    previous = {after: before for before, after in sequential_market.next_product.items()}
    last = (ordered_purchases(data.interactions).groupby("customer_idx")["product_idx"]
            .apply(lambda items: set(items.tail(2))))
    last.index = data.customer_ids[last.index]
    product_index = pd.Series(np.arange(data.n_products), index=data.product_ids)
    best = written[written["rank"] <= 5]
    follows = [product_index[previous[p]] in last[c]
               for p, c in zip(best["product_id"], best["customer_id"], strict=True)]
    assert np.mean(follows) > 0.7


def test_top_k_columns_is_the_stable_argsort_s_head() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        rows, columns, k = rng.integers(1, 20), rng.integers(1, 30), rng.integers(1, 35)
        scores = rng.integers(0, 4, (rows, columns)) * rng.choice([1.0, 0.5])  # many ties
        assert np.array_equal(baselines.top_k_columns(scores, k),
                              np.argsort(-scores, axis=1, kind="stable")[:, :k])
