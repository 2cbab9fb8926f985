"""The registered champion recommender used on another run: its saved weights (train.save_bundle)
carried onto this run's customers, products and categories, then scored on this run's holdout
or asked for this run's recommendations.

Rows of the id and category tables move with the id they stand for; customers, products and
categories the champion never saw keep the new model's seeded initialization (as a fresh model
would start them). The feature tables and purchase histories are this run's: the holdout
weights read the snapshot as of the holdout start and the weeks before it (no holdout week),
the final weights the plan week's snapshot and every week. Run in one CPU process by the gate.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from promoflow.run import RunFolder
from training.common import seed_everything
from training.recommender import evaluate
from training.recommender.data import FeatureTables, RecommenderData, load
from training.recommender.train import (
    METRIC_K,
    ModelConfig,
    RecommenderConfig,
    SequenceConfig,
    build_model,
    customer_top_k,
    parse_args,
    write_recommendations,
)

CPU = torch.device("cpu")


def _space(key: str) -> str | None:
    """Which ids the rows of parameter `key` stand for (None: not an id table)."""
    if "category_embedding" in key:
        return "category"
    if key.startswith("customer_tower.id_embedding"):
        return "customer"
    if key.startswith(("product_tower.id_embedding", "items.id_embedding", "product_bias")):
        return "product"
    return None


def carry_over(weights: dict[str, torch.Tensor], old: dict[str, list], model: nn.Module,
               new: dict[str, list]) -> nn.Module:
    """`model` with `weights` loaded, id-table rows moved from the `old` ids to the `new` ones
    (spaces customer, product, category; category row 0 is the unknown one)."""
    target = model.state_dict()
    for key, value in weights.items():
        if key not in target:
            raise ValueError(f"the registered recommender has a parameter {key} that the "
                             "current model code lacks; retrain it.")
        space = _space(key)
        if space is None:
            target[key] = value
            continue
        offset = 1 if space == "category" else 0
        rows = target[key].clone()
        position = pd.Index(old[space]).get_indexer(pd.Index(new[space]))
        known = np.flatnonzero(position >= 0)
        rows[known + offset] = value[position[known] + offset]
        if offset:
            rows[0] = value[0]
        target[key] = rows
    model.load_state_dict(target)
    return model.eval()


def _rebuild(state: dict, phase: str, cfg: RecommenderConfig, data: RecommenderData,
             tables: FeatureTables, interactions: pd.DataFrame) -> nn.Module:
    kind = state["kind"]
    if kind == "sequence":
        cfg = replace(cfg, sequence=SequenceConfig(**state["config"]))
    else:
        cfg = replace(cfg, model=ModelConfig(**state["config"]))
    seed_everything(cfg.trainer.seed)
    model = build_model(kind, cfg, data, tables, interactions)
    old = {"customer": state["customer_ids"], "product": state["product_ids"],
           "category": state["categories"]}
    new = {"customer": data.customer_ids.tolist(), "product": data.product_ids.tolist(),
           "category": list(data.categories)}
    return carry_over(state[phase], old, model, new)


def _load(bundle: Path, argv: list[str]) -> tuple[dict, RecommenderConfig, RecommenderData]:
    cfg = parse_args(argv)
    state = torch.load(bundle, map_location=CPU, weights_only=False)
    return state, cfg, load(cfg.data.run_dir, cfg.data.holdout_weeks)


def holdout_metrics(bundle: Path, argv: list[str]) -> dict[str, float]:
    """The champion's evaluated weights on this run's holdout: recall@10 and NDCG@10 with their
    bootstrap intervals (evaluate.summarize, the challenger's seed and customers)."""
    state, cfg, data = _load(bundle, argv)
    model = _rebuild(state, "holdout", cfg, data, data.at_holdout, data.train)
    relevant = evaluate.relevant_items(data.holdout)
    customers = sorted(relevant)
    top = customer_top_k(model, customers, METRIC_K, CPU, cfg.trainer.score_chunk)
    return evaluate.summarize(
        evaluate.per_customer_metrics(top, customers, relevant, METRIC_K), cfg.trainer.seed)


def write_outputs(bundle: Path, argv: list[str]) -> int:
    """Replace the run's recommendations.parquet with the champion's; returns the rows."""
    state, cfg, data = _load(bundle, argv)
    model = _rebuild(state, "final", cfg, data, data.at_plan_week, data.interactions)
    return write_recommendations(model, data, cfg.data.top_n,
                                 RunFolder(cfg.data.run_dir).recommendations,
                                 cfg.trainer.score_chunk)
