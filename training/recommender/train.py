"""Train the two-tower recommender with DDP, evaluate on a time holdout, rank customers per product.

    torchrun --standalone --nproc_per_node=2 -m training.recommender.train --run-dir DIR

Reads the recommender training sets from the run folder and writes the recommendations (the
top N customers of every product, N = CANDIDATE_FACTOR x the run's audience size, capped by
the customers there are; streamed product by product to Parquet: the targeting picks the
audience among them by uplift and consent) and the metrics (model vs popularity baseline)
there. A first model is trained on the weeks before the holdout
and evaluated; with `refit` (the default) a second one is trained on all weeks and used for the
recommendations. Checkpoints: <models-dir>/recommender/checkpoint.pt (the final model) and
holdout_checkpoint.pt (the evaluated one).
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import TensorDataset

from promoflow.run import RunFolder, RunParams
from training.common import barrier, cleanup_distributed, seed_everything, setup_distributed
from training.common.checkpoint import make_run_key
from training.common.cli import base_parser, configure, default_models_dir, run_main, run_params
from training.common.distributed import DistContext
from training.common.io import temporary_path
from training.common.loop import fit
from training.recommender import evaluate
from training.recommender.data import RecommenderData, load
from training.recommender.model import TwoTower, softmax_loss

log = logging.getLogger("training.recommender")

METRIC_K = 10
#: scores held in memory at once while ranking customers per product
SCORE_BLOCK = 1 << 22
RECOMMENDATION_SCHEMA = pa.schema([("product_id", pa.int64()), ("customer_id", pa.int64()),
                                   ("score", pa.float64()), ("rank", pa.int64())])


#: Candidates kept per product for each customer of the audience: the targeting chooses the
#: audience among them (by estimated uplift, among customers who consented to a channel).
CANDIDATE_FACTOR = 3


@dataclass
class DataConfig:
    run_dir: Path = Path(".")
    holdout_weeks: int = 4
    top_n: int = CANDIDATE_FACTOR * RunParams().audience_size  # candidates kept per product


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
def customer_vectors_and_normalizers(
    model: TwoTower, n_customers: int, chunk: int = 4096
) -> tuple[torch.Tensor, torch.Tensor]:
    """[customers, dim] vectors and [customers] log-sum-exp of the logits over the catalogue."""
    model.eval()
    products, bias = model.product_vectors()
    device = products.device
    vectors, normalizers = [], []
    for start in range(0, n_customers, chunk):
        ids = torch.arange(start, min(start + chunk, n_customers), device=device)
        block = model.customer_vectors(ids)
        vectors.append(block)
        normalizers.append(torch.logsumexp(block @ products.T + bias, dim=1))
    return torch.cat(vectors), torch.cat(normalizers)


def top_rows(scores: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The `n` best scores of every column of `scores` [rows, columns] and their rows, both
    [columns, n], best first; equal scores rank the lower row first (so do ties at the cut)."""
    if not torch.isfinite(scores).all():
        raise RuntimeError("recommender scores are not finite; the model diverged.")
    cut = scores.topk(n, dim=0).values[-1]  # the n-th best score of each column
    keep = scores >= cut
    if (keep.sum(dim=0) > n).any():  # ties at the cut: keep the lowest rows among them
        tied = scores == cut
        room = n - (scores > cut).sum(dim=0)
        keep = (scores > cut) | (tied & (tied.cumsum(dim=0) <= room))
    rows = keep.T.nonzero(as_tuple=True)[1].view(-1, n)  # per column, rows ascending
    values = scores.T.gather(1, rows)
    order = values.argsort(dim=1, descending=True, stable=True)
    return values.gather(1, order), rows.gather(1, order)


@torch.no_grad()
def write_recommendations(model: TwoTower, data: RecommenderData, top_n: int, path: Path,
                          chunk: int = 4096) -> int:
    """The `top_n` customers of every product by the customer's softmax probability of it.

    Streamed: each customer's log-sum-exp over the catalogue is computed first, then products
    are ranked a block at a time (at most SCORE_BLOCK scores held) and appended to the Parquet
    file (written through a temporary file), so memory does not grow with top_n x products.
    Rows are grouped per product in product order, rank 1 first. Returns the rows written.
    """
    customers, normalizers = customer_vectors_and_normalizers(model, data.n_customers, chunk)
    products, bias = model.product_vectors()
    n = min(top_n, data.n_customers)
    block = max(1, SCORE_BLOCK // max(1, data.n_customers))
    rows = 0
    tmp = temporary_path(path)
    with pq.ParquetWriter(tmp, RECOMMENDATION_SCHEMA) as writer:
        for start in range(0, data.n_products, block):
            stop = min(start + block, data.n_products)
            logits = customers @ products[start:stop].T + bias[start:stop]
            scores, best = top_rows(torch.exp(logits - normalizers[:, None]), n)  # [block, n]
            writer.write_table(pa.table({
                "product_id": np.repeat(data.product_ids[start:stop], n).astype(np.int64),
                "customer_id": data.customer_ids[best.reshape(-1).cpu().numpy()].astype(np.int64),
                "score": scores.reshape(-1).cpu().numpy().astype(np.float64),
                "rank": np.tile(np.arange(1, n + 1, dtype=np.int64), stop - start),
            }, schema=RECOMMENDATION_SCHEMA))
            rows += n * (stop - start)
    os.replace(tmp, path)
    log.info("wrote %s (%d rows: %d customers for each of %d products)", path.name, rows, n,
             data.n_products)
    return rows


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
        folder = RunFolder(cfg.data.run_dir)
        data = load(folder.path, cfg.data.holdout_weeks)
        models_dir = (cfg.trainer.models_dir or default_models_dir()) / "recommender"
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
            write_recommendations(model.to(ctx.device), data, cfg.data.top_n,
                                  folder.recommendations, cfg.trainer.score_chunk)
            folder.write_json(folder.metrics("recommender"), metrics)
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


def parse_args(argv: list[str] | None = None) -> RecommenderConfig:
    """The configuration from the command line and the run folder's run.json."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--top-n", type=int, default=None,
                        help="customers kept per product (default: CANDIDATE_FACTOR x the run's "
                        "audience size)")
    parser.add_argument("--refit", action=argparse.BooleanOptionalAction, default=None,
                        help="retrain on all weeks before recommending (default: on)")
    args = parser.parse_args(argv)
    params = run_params(args.run_dir)
    return configure(RecommenderConfig(), args, params,
                     data={"top_n": CANDIDATE_FACTOR * params.audience_size
                           if args.top_n is None else args.top_n},
                     trainer={"refit": args.refit})


def main(argv: list[str] | None = None) -> None:
    run_main(parse_args, train, argv)


if __name__ == "__main__":
    main()
