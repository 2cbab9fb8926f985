"""Train the two-tower recommender with DDP, evaluate on a time holdout, rank customers per product.

    torchrun --standalone --nproc_per_node=2 -m training.recommender.train --run-dir DIR

Reads recommender_interactions/customers/products.parquet from the run folder and writes
recommendations.parquet (the top N customers of every product) and recommender_metrics.json
(model vs popularity baseline) there. A first model is trained on the weeks before the holdout
and evaluated; with `refit` (the default) a second one is trained on all weeks and used for the
recommendations. Checkpoints: <models-dir>/recommender/checkpoint.pt (the final model) and
holdout_checkpoint.pt (the evaluated one).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import TensorDataset

from promoflow.logs import setup_logging
from training.common import barrier, cleanup_distributed, seed_everything, setup_distributed
from training.common.checkpoint import make_run_key
from training.common.distributed import DistContext
from training.common.loop import fit
from training.recommender import evaluate
from training.recommender.data import RecommenderData, load
from training.recommender.model import TwoTower, softmax_loss

log = logging.getLogger("training.recommender")

RECOMMENDATIONS_FILE = "recommendations.parquet"
METRICS_FILE = "recommender_metrics.json"
METRIC_K = 10


@dataclass
class DataConfig:
    run_dir: Path = Path(".")
    holdout_weeks: int = 4
    top_n: int = 200


@dataclass
class ModelConfig:
    embedding_dim: int = 32
    hidden_dim: int = 64


@dataclass
class OptimConfig:
    lr: float = 5e-3
    weight_decay: float = 1e-5
    batch_size: int = 1024  # per process; lowered on small data (see effective_batch_size)


@dataclass
class TrainerConfig:
    epochs: int = 10
    seed: int = 42
    refit: bool = True
    score_chunk: int = 4096
    models_dir: Path | None = None  # default: the settings' models folder


@dataclass
class RecommenderConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


def _train_model(
    cfg: RecommenderConfig, ctx: DistContext, data: RecommenderData, interactions: pd.DataFrame,
    checkpoint: Path, phase: str,
) -> TwoTower:
    seed_everything(cfg.trainer.seed)
    model = TwoTower(
        data.customer_features, data.customer_category, data.product_features,
        data.product_category, data.n_categories,
        dim=cfg.model.embedding_dim, hidden=cfg.model.hidden_dim,
    )
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay
    )
    dataset = TensorDataset(
        torch.tensor(interactions["customer_idx"].to_numpy(), dtype=torch.long),
        torch.tensor(interactions["product_idx"].to_numpy(), dtype=torch.long),
    )
    settings = asdict(cfg)
    settings["trainer"].pop("models_dir")
    fingerprint = [len(interactions), float(interactions["units"].sum()), data.n_customers,
                   data.n_products, str(cfg.data.run_dir.resolve())]
    return fit(
        ctx, model, optimizer, dataset, lambda m, b: softmax_loss(m(b[0]), b[1]),
        epochs=cfg.trainer.epochs, batch_size=cfg.optim.batch_size, seed=cfg.trainer.seed,
        checkpoint_path=checkpoint,
        run_key=make_run_key("recommender", phase, settings, fingerprint, ctx.world_size),
        name=f"recommender[{phase}]",
        extra={"customer_ids": data.customer_ids.tolist(), "product_ids": data.product_ids.tolist(),
               "model": asdict(cfg.model)},
    )


@torch.no_grad()
def customer_top_k(model: TwoTower, customers: list[int], k: int, device: torch.device,
                   chunk: int = 4096) -> np.ndarray:
    """[customers, k] product indices ranked by the model for each customer."""
    model.eval()
    rows = []
    for start in range(0, len(customers), chunk):
        ids = torch.tensor(customers[start:start + chunk], dtype=torch.long, device=device)
        rows.append(model(ids).topk(min(k, model.product_features.shape[0]), dim=1).indices.cpu())
    return torch.cat(rows).numpy() if rows else np.zeros((0, k), dtype=np.int64)


@torch.no_grad()
def top_customers_per_product(
    model: TwoTower, n_customers: int, top_n: int, device: torch.device, chunk: int = 4096
) -> tuple[torch.Tensor, torch.Tensor]:
    """[n, products] best scores and customer indices, scoring customers chunk by chunk.

    The score is the customer's softmax probability of the product over the catalogue.
    """
    model.eval()
    vectors, bias = model.product_vectors()
    n_products = vectors.shape[0]
    best_scores = torch.empty(0, n_products, device=device)
    best_customers = torch.empty(0, n_products, dtype=torch.long, device=device)
    for start in range(0, n_customers, chunk):
        ids = torch.arange(start, min(start + chunk, n_customers), device=device)
        scores = torch.softmax(model.customer_vectors(ids) @ vectors.T + bias, dim=1)
        scores = torch.cat([best_scores, scores])
        candidates = torch.cat([best_customers, ids[:, None].expand(-1, n_products)])
        top = scores.topk(min(top_n, len(scores)), dim=0)
        best_scores, best_customers = top.values, candidates.gather(0, top.indices)
    return best_scores, best_customers


def recommendations_frame(
    data: RecommenderData, scores: torch.Tensor, customers: torch.Tensor
) -> pd.DataFrame:
    n, n_products = scores.shape
    return pd.DataFrame({
        "product_id": np.repeat(data.product_ids, n),
        "customer_id": data.customer_ids[customers.T.reshape(-1).cpu().numpy()],
        "score": scores.T.reshape(-1).cpu().numpy().astype(float),
        "rank": np.tile(np.arange(1, n + 1, dtype=np.int64), n_products),
    })


def _evaluate(model: TwoTower, data: RecommenderData, cfg: RecommenderConfig,
              ctx: DistContext) -> dict:
    relevant = evaluate.relevant_items(data.holdout)
    customers = sorted(relevant)
    model_top = customer_top_k(model, customers, METRIC_K, ctx.device, cfg.trainer.score_chunk)
    popular = evaluate.popularity_ranking(data.train, data.n_products, METRIC_K)
    baseline_top = np.tile(popular, (len(customers), 1))
    metrics = {
        "model": evaluate.ranking_metrics(model_top, customers, relevant, METRIC_K),
        "baseline": evaluate.ranking_metrics(baseline_top, customers, relevant, METRIC_K),
        "holdout_weeks": cfg.data.holdout_weeks,
        "train_interactions": len(data.train),
        "holdout_customers": len(customers),
    }
    log.info("recommender holdout: model %s, popularity %s", metrics["model"], metrics["baseline"])
    return metrics


def train(cfg: RecommenderConfig) -> dict | None:
    """Train, evaluate and recommend; returns the metrics on rank 0 (None on other ranks)."""
    if cfg.data.holdout_weeks < 1 or cfg.data.top_n < 1:
        raise ValueError("holdout_weeks and top_n must be at least 1.")
    ctx = setup_distributed()
    try:
        data = load(cfg.data.run_dir, cfg.data.holdout_weeks)
        models_dir = (cfg.trainer.models_dir or _default_models_dir()) / "recommender"
        log.info("recommender: %d customers, %d products, %d training and %d holdout "
                 "interactions, world size %d", data.n_customers, data.n_products,
                 len(data.train), len(data.holdout), ctx.world_size)
        model = _train_model(cfg, ctx, data, data.train,
                             models_dir / "holdout_checkpoint.pt", "holdout")
        metrics = _evaluate(model, data, cfg, ctx) if ctx.is_main else None
        if cfg.trainer.refit:
            everything = pd.concat([data.train, data.holdout], ignore_index=True)
            model = _train_model(cfg, ctx, data, everything, models_dir / "checkpoint.pt", "all")
        else:
            _copy_checkpoint(models_dir, ctx)
        if ctx.is_main:
            scores, customers = top_customers_per_product(
                model.to(ctx.device), data.n_customers, cfg.data.top_n, ctx.device,
                cfg.trainer.score_chunk,
            )
            _write_outputs(cfg.data.run_dir, recommendations_frame(data, scores, customers),
                           metrics)
        barrier(ctx)
        return metrics
    finally:
        cleanup_distributed()


def _copy_checkpoint(models_dir: Path, ctx: DistContext) -> None:
    """Without refit the evaluated model is the final one: publish it as checkpoint.pt."""
    if ctx.is_main:
        tmp = models_dir / ".checkpoint.pt.tmp"
        tmp.write_bytes((models_dir / "holdout_checkpoint.pt").read_bytes())
        os.replace(tmp, models_dir / "checkpoint.pt")
    barrier(ctx)


def _write_outputs(run_dir: Path, recommendations: pd.DataFrame, metrics: dict) -> None:
    tmp = run_dir / f".{RECOMMENDATIONS_FILE}.tmp"
    recommendations.to_parquet(tmp, index=False)
    os.replace(tmp, run_dir / RECOMMENDATIONS_FILE)
    tmp = run_dir / f".{METRICS_FILE}.tmp"
    tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    os.replace(tmp, run_dir / METRICS_FILE)
    log.info("wrote %s (%d rows) and %s", RECOMMENDATIONS_FILE, len(recommendations),
             METRICS_FILE)


def _default_models_dir() -> Path:
    from promoflow.settings import get_settings

    return get_settings().models_dir


def parse_args(argv: list[str] | None = None) -> RecommenderConfig:
    defaults = RecommenderConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True,
                        help="folder with the training sets; outputs are written there")
    parser.add_argument("--models-dir", type=Path, default=None,
                        help="models folder; checkpoints go to <dir>/recommender/")
    parser.add_argument("--epochs", type=int, default=defaults.trainer.epochs)
    parser.add_argument("--seed", type=int, default=defaults.trainer.seed)
    parser.add_argument("--top-n", type=int, default=defaults.data.top_n)
    parser.add_argument("--holdout-weeks", type=int, default=defaults.data.holdout_weeks)
    parser.add_argument("--batch-size", type=int, default=defaults.optim.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.optim.lr)
    parser.add_argument("--embedding-dim", type=int, default=defaults.model.embedding_dim)
    parser.add_argument("--hidden-dim", type=int, default=defaults.model.hidden_dim)
    parser.add_argument("--refit", action=argparse.BooleanOptionalAction,
                        default=defaults.trainer.refit,
                        help="retrain on all weeks before recommending (default: on)")
    args = parser.parse_args(argv)
    return RecommenderConfig(
        data=DataConfig(run_dir=args.run_dir, holdout_weeks=args.holdout_weeks, top_n=args.top_n),
        model=ModelConfig(embedding_dim=args.embedding_dim, hidden_dim=args.hidden_dim),
        optim=OptimConfig(lr=args.lr, batch_size=args.batch_size),
        trainer=TrainerConfig(epochs=args.epochs, seed=args.seed, refit=args.refit,
                              models_dir=args.models_dir),
    )


def main(argv: list[str] | None = None) -> None:
    setup_logging()
    if int(os.environ.get("RANK", "0")) != 0:
        logging.getLogger().setLevel(logging.WARNING)
    train(parse_args(argv))


if __name__ == "__main__":
    main()
