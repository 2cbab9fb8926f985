"""Train the recommenders with DDP, evaluate them on a time holdout, rank customers per product.

    torchrun --standalone --nproc_per_node=2 -m training.recommender.train --run-dir DIR

Reads the recommender training sets from the run folder (docs/recommender.md). Two learned
models, the two-tower model (model.py) and the sequence model (sequence.py), are trained on
the weeks before the holdout with the features as of the holdout start, and scored on the
holdout weeks next to three baselines fitted on the same weeks (popularity, item-kNN and EASE,
baselines.py): Recall@10 and NDCG@10 with 95% bootstrap intervals (evaluate.py). The learned
model with the higher holdout NDCG@10 is the champion: with `refit` (the default) it is trained
again on all weeks with the features as of the plan week; without, its evaluated weights are
fed the plan week's features and histories. It writes the recommendations (the top N customers
of every product, N = CANDIDATE_FACTOR x the run's audience size, capped by the customers there
are; streamed product by product to Parquet: the targeting picks the audience among them by
uplift and consent), and the metrics go to recommender_metrics.json, with the training
throughput (`train_samples_per_s`: rows or windows per second over every epoch of the learned
models, all processes together; `device`, `world_size`; per epoch under `throughput`).

Memory and time: up to `full_softmax_max_products` products both learned models score the
whole catalogue for every training row (a [rows, products] logits matrix per step, and per
target purchase for the sequence model); on a larger catalogue they train with a sampled
softmax over `sampled_negatives` products drawn per step (model.NegativeSampler, logQ
corrected), so a step's cost no longer grows with the catalogue. A step takes at most
`max_logit_cells` logits (times `cuda_batch_scale` on a GPU). Each training is held to
`max_train_samples` rows (two-tower) or target purchases (sequence) over all its epochs: on
more data it runs fewer epochs (at least one), so the cost stops growing with the epochs. Ranking holds at most SCORE_BLOCK scores (products
per block) or CUSTOMER_BLOCK logits (customers per block) at once, and the baselines keep the
`baseline_max_items` most bought products (baselines.py).

Checkpoints: <models-dir>/recommender/holdout_<model>.pt (the evaluated models) and checkpoint.pt (the
champion's final model, its name in the checkpoint's extra "kind"); model.pt holds the
champion's evaluated and final weights with their ids, the bundle the registry keeps
(training/gate.py, docs/models.md).
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import TensorDataset

from promoflow.run import RECOMMENDER_HOLDOUT_WEEKS, RunFolder, RunParams
from training.common import barrier, cleanup_distributed, seed_everything, setup_distributed
from training.common.checkpoint import make_run_key
from training.common.cli import base_parser, configure, default_models_dir, run_main, run_params
from training.common.distributed import DistContext, main_takes_idle_threads
from training.common.io import temporary_path
from training.common.loop import Throughput, epochs_within_budget, fit
from training.recommender import baselines, evaluate
from training.recommender.data import FeatureTables, RecommenderData, load
from training.recommender.model import NegativeSampler, TwoTower, two_tower_loss
from training.recommender.sequence import (
    SequenceRecommender,
    histories,
    sequence_loss,
    training_windows,
)

log = logging.getLogger("training.recommender")

METRIC_K = 10
#: scores held in memory at once while ranking customers per product
SCORE_BLOCK = 1 << 22
#: logits held at once while scoring customers against the catalogue (256 MB in float32)
CUSTOMER_BLOCK = 1 << 26
RECOMMENDATION_SCHEMA = pa.schema([("product_id", pa.int64()), ("customer_id", pa.int64()),
                                   ("score", pa.float64()), ("rank", pa.int64())])
#: The learned candidates; the champion is one of them (ties: the first).
LEARNED = ("two_tower", "sequence")
BASELINES = ("popularity", "item_knn", "ease")
CHAMPION_METRIC = f"ndcg_at_{METRIC_K}"


#: Candidates kept per product for each customer of the audience: the targeting chooses the
#: audience among them (by estimated uplift, among customers who consented to a channel).
CANDIDATE_FACTOR = 3


class Recommender(Protocol):
    """What ranking needs of a learned model: customer vectors against product vectors."""

    def customer_vectors(self, customers: torch.Tensor) -> torch.Tensor: ...

    def product_vectors(self) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass
class DataConfig:
    run_dir: Path = Path(".")
    holdout_weeks: int = RECOMMENDER_HOLDOUT_WEEKS
    top_n: int = CANDIDATE_FACTOR * RunParams().audience_size  # candidates kept per product


@dataclass
class ModelConfig:
    """The two-tower model."""

    embedding_dim: int = 32
    hidden_dim: int = 64


@dataclass
class SequenceConfig:
    """The sequence model (its own optimizer settings: it learns from windows, not rows)."""

    max_length: int = 30  # purchases read before the next one
    dim: int = 32
    heads: int = 2
    layers: int = 1
    dropout: float = 0.0  # 0.1 and 0.2 did no better on the demo market's holdout, and cost time
    lr: float = 3e-3
    batch_size: int = 256  # windows per process
    epochs: int = 4  # the run's or the command line's epochs when given


@dataclass
class OptimConfig:
    lr: float = 5e-3
    weight_decay: float = 1e-5
    batch_size: int = 1024  # per process; lowered on small data (see effective_batch_size)
    #: the batch on a GPU is this many times batch_size (also the sequence model's)
    cuda_batch_scale: int = 8
    #: logits of one step at most (rows x products, x targets per window for the sequence
    #: model; times cuda_batch_scale on a GPU): 2^25 float32 logits are 128 MB per copy
    max_logit_cells: int = 1 << 25
    #: catalogues up to this size train with the full softmax, larger ones a sampled one
    full_softmax_max_products: int = 4096
    #: products drawn per step for the sampled softmax
    sampled_negatives: int = 1024
    #: rows (two-tower) or target purchases (sequence) one training sees over all its epochs
    #: at most: epochs are cut to fit, at least one
    max_train_samples: int = 12_000_000


@dataclass
class TrainerConfig:
    epochs: int = 10
    seed: int = 42
    refit: bool = True
    score_chunk: int = 4096
    #: the item-kNN and EASE baselines keep this many of the most bought products
    baseline_max_items: int = baselines.MAX_ITEMS
    models_dir: Path | None = None  # default: the settings' models folder


@dataclass
class RecommenderConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    sequence: SequenceConfig = field(default_factory=SequenceConfig)


def negative_sampler(cfg: RecommenderConfig, n_products: int,
                     interactions: pd.DataFrame) -> NegativeSampler | None:
    """The sampled softmax's sampler over the purchases of `interactions`, or None while the
    catalogue is small enough for the full softmax."""
    if n_products <= cfg.optim.full_softmax_max_products:
        return None
    counts = np.bincount(interactions["product_idx"].to_numpy(), minlength=n_products)
    return NegativeSampler(torch.from_numpy(counts), cfg.optim.sampled_negatives)


def build_model(name: str, cfg: RecommenderConfig, data: RecommenderData,
                tables: FeatureTables, interactions: pd.DataFrame,
                sampler: NegativeSampler | None = None) -> nn.Module:
    """The learned model `name` reading `tables` (and, for the sequence model, the histories of
    `interactions`); trained with `sampler`'s sampled softmax when one is given."""
    common = (tables.customer_features, tables.customer_category, tables.product_features,
              tables.product_category, data.n_categories)
    if name == "two_tower":
        return TwoTower(*common, dim=cfg.model.embedding_dim, hidden=cfg.model.hidden_dim,
                        sampler=sampler)
    if name == "sequence":
        seq = cfg.sequence
        items, lengths = histories(interactions, data.n_customers, data.n_products,
                                   seq.max_length)
        return SequenceRecommender(*common, items, lengths, dim=seq.dim, heads=seq.heads,
                                   layers=seq.layers, dropout=seq.dropout, sampler=sampler)
    raise ValueError(f"unknown recommender {name!r}; choose one of {', '.join(LEARNED)}.")


def _training_rows(name: str, cfg: RecommenderConfig, data: RecommenderData,
                   interactions: pd.DataFrame) -> TensorDataset:
    if name == "sequence":
        return TensorDataset(*training_windows(interactions, data.n_products,
                                               cfg.sequence.max_length))
    return TensorDataset(
        torch.tensor(interactions["customer_idx"].to_numpy(), dtype=torch.long),
        torch.tensor(interactions["product_idx"].to_numpy(), dtype=torch.long),
    )


def max_rows_per_step(name: str, cfg: RecommenderConfig, ctx: DistContext,
                      n_products: int) -> int:
    """The most training rows of model `name` whose logits (over the catalogue, or over the
    sampled negatives) fit the step's budget."""
    scored = (n_products if n_products <= cfg.optim.full_softmax_max_products
              else cfg.optim.sampled_negatives + 1)
    cells = scored * (cfg.sequence.max_length + 1 if name == "sequence" else 1)
    scale = cfg.optim.cuda_batch_scale if ctx.device.type == "cuda" else 1
    return max(1, cfg.optim.max_logit_cells * scale // max(1, cells))


def _train_model(
    name: str, cfg: RecommenderConfig, ctx: DistContext, data: RecommenderData,
    tables: FeatureTables, interactions: pd.DataFrame, checkpoint: Path, phase: str,
    throughput: Throughput,
) -> nn.Module:
    seed_everything(cfg.trainer.seed)
    model = build_model(name, cfg, data, tables, interactions,
                        negative_sampler(cfg, data.n_products, interactions))
    if name == "sequence":
        lr, batch_size = cfg.sequence.lr, cfg.sequence.batch_size
        epochs = cfg.sequence.epochs
        loss_fn, config = sequence_loss, asdict(cfg.sequence)
    else:
        lr, batch_size, epochs = cfg.optim.lr, cfg.optim.batch_size, cfg.trainer.epochs
        loss_fn, config = two_tower_loss, asdict(cfg.model)
    rows = _training_rows(name, cfg, data, interactions)
    epochs = epochs_within_budget(epochs, len(interactions), cfg.optim.max_train_samples)
    if model.sampler is not None and ctx.is_main:
        log.info("recommender[%s, %s]: sampled softmax over %d of %d products a step, %d "
                 "epochs", name, phase, cfg.optim.sampled_negatives, data.n_products, epochs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=cfg.optim.weight_decay)
    settings = asdict(cfg)
    settings["trainer"].pop("models_dir")
    fingerprint = [len(interactions), float(interactions["units"].sum()), data.n_customers,
                   data.n_products, str(data.holdout_start.date()), str(cfg.data.run_dir.resolve())]
    return fit(
        ctx, model, optimizer, rows, loss_fn,
        epochs=epochs, batch_size=batch_size, seed=cfg.trainer.seed,
        checkpoint_path=checkpoint,
        run_key=make_run_key("recommender", name, phase, settings, fingerprint, ctx.world_size),
        name=f"recommender[{name}, {phase}]",
        extra={"kind": name, "customer_ids": data.customer_ids.tolist(),
               "product_ids": data.product_ids.tolist(), "model": config},
        cuda_batch_scale=cfg.optim.cuda_batch_scale,
        max_batch=max_rows_per_step(name, cfg, ctx, data.n_products), throughput=throughput,
    )


def _with_latest_inputs(name: str, model: nn.Module, cfg: RecommenderConfig,
                        data: RecommenderData) -> nn.Module:
    """The evaluated weights of `model` reading the plan week's features and all histories."""
    latest = build_model(name, cfg, data, data.at_plan_week, data.interactions)
    buffers = {buffer for buffer, _ in latest.named_buffers()}
    latest.load_state_dict({key: value for key, value in model.state_dict().items()
                            if key not in buffers}, strict=False)
    return latest.eval()


@torch.no_grad()
def customer_top_k(model: Recommender, customers: list[int], k: int, device: torch.device,
                   chunk: int = 4096) -> np.ndarray:
    """[customers, k] product indices ranked by the model for each customer."""
    model.eval()
    products, bias = model.product_vectors()
    chunk = max(1, min(chunk, CUSTOMER_BLOCK // max(1, len(bias))))
    rows = []
    for start in range(0, len(customers), chunk):
        ids = torch.tensor(customers[start:start + chunk], dtype=torch.long, device=device)
        logits = model.customer_vectors(ids) @ products.T + bias
        rows.append(logits.topk(min(k, len(bias)), dim=1).indices.cpu())
    return torch.cat(rows).numpy() if rows else np.zeros((0, k), dtype=np.int64)


@torch.no_grad()
def customer_vectors_and_normalizers(
    model: Recommender, n_customers: int, chunk: int = 4096
) -> tuple[torch.Tensor, torch.Tensor]:
    """[customers, dim] vectors and [customers] log-sum-exp of the logits over the catalogue."""
    model.eval()
    products, bias = model.product_vectors()
    device = products.device
    chunk = max(1, min(chunk, CUSTOMER_BLOCK // max(1, len(bias))))
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
def write_recommendations(model: Recommender, data: RecommenderData, top_n: int, path: Path,
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


def baseline_rankings(data: RecommenderData, customers: list[int], cfg: RecommenderConfig
                      ) -> tuple[dict[str, np.ndarray], dict]:
    """Top-10 lists of the baselines fitted on the training weeks, and how they were set."""
    units = baselines.popularity(data.train, data.n_products)
    matrix = baselines.purchase_matrix(data.train, data.n_customers, data.n_products)
    cap = cfg.trainer.baseline_max_items
    lam, by_lambda = baselines.choose_ease_lambda(
        data.train, data.n_customers, data.n_products, cfg.data.holdout_weeks, METRIC_K,
        max_items=cap)
    popular = evaluate.popularity_ranking(data.train, data.n_products, METRIC_K)
    tops = {
        "popularity": np.tile(popular, (len(customers), 1)),
        "item_knn": baselines.item_knn(matrix, units, max_items=cap).top_k(
            matrix, customers, METRIC_K),
        "ease": baselines.ease(matrix, units, lam, max_items=cap).top_k(
            matrix, customers, METRIC_K),
    }
    settings = {"item_knn_neighbours": baselines.ITEM_KNN_NEIGHBOURS,
                "ease_lambda": lam, "ease_validation_ndcg_at_10": by_lambda,
                "baseline_max_items": cap,
                "baseline_items_kept": int(min(cap, data.n_products))}
    return tops, settings


def choose_champion(summaries: dict[str, dict[str, float]]) -> tuple[str, str]:
    """The learned model with the higher holdout NDCG@10 (ties: the first of LEARNED), and why."""
    champion = max(LEARNED, key=lambda name: (summaries[name][CHAMPION_METRIC],
                                              -LEARNED.index(name)))
    other = next(name for name in LEARNED if name != champion)
    mine, theirs = summaries[champion], summaries[other]
    overlap = (mine[f"{CHAMPION_METRIC}_ci_low"] <= theirs[f"{CHAMPION_METRIC}_ci_high"]
               and theirs[f"{CHAMPION_METRIC}_ci_low"] <= mine[f"{CHAMPION_METRIC}_ci_high"])
    reason = (f"higher holdout NDCG@{METRIC_K} than {other}: {mine[CHAMPION_METRIC]:.4f} vs "
              f"{theirs[CHAMPION_METRIC]:.4f} (95% intervals "
              f"{'overlap' if overlap else 'do not overlap'})")
    if mine[CHAMPION_METRIC] == theirs[CHAMPION_METRIC]:
        reason = f"the same holdout NDCG@{METRIC_K} as {other}; the first candidate is kept"
    return champion, reason


def _evaluate(models: dict[str, nn.Module], data: RecommenderData, cfg: RecommenderConfig,
              ctx: DistContext) -> dict:
    """Every model's holdout metrics with intervals, and the champion among the learned ones."""
    relevant = evaluate.relevant_items(data.holdout)
    customers = sorted(relevant)
    tops, settings = baseline_rankings(data, customers, cfg)
    for name, model in models.items():
        tops[name] = customer_top_k(model, customers, METRIC_K, ctx.device,
                                    cfg.trainer.score_chunk)
    summaries = {
        name: evaluate.summarize(
            evaluate.per_customer_metrics(top, customers, relevant, METRIC_K), cfg.trainer.seed)
        for name, top in tops.items()
    }
    champion, reason = choose_champion(summaries)
    means = [f"recall_at_{METRIC_K}", f"ndcg_at_{METRIC_K}"]
    metrics = {
        "model": {name: summaries[champion][name] for name in means},
        "baseline": {name: summaries["popularity"][name] for name in means},
        "champion": champion,
        "champion_reason": reason,
        "models": summaries,
        "confidence_interval": evaluate.CI_METHOD,
        **settings,
        "holdout_weeks": cfg.data.holdout_weeks,
        "holdout_start": str(data.holdout_start.date()),
        "train_interactions": len(data.train),
        "holdout_customers": len(customers),
    }
    for name, summary in summaries.items():
        cells = [f"{metric} {summary[metric]:.4f} [{summary[metric + '_ci_low']:.4f}, "
                 f"{summary[metric + '_ci_high']:.4f}]" for metric in means]
        log.info("recommender holdout %-10s %s", name, "  ".join(cells))
    log.info("recommender champion: %s (%s)", champion, reason)
    return metrics


def _from_main(value: object, ctx: DistContext) -> object:
    """Rank 0's `value` on every rank."""
    if not dist.is_initialized():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0, device=ctx.device if ctx.device.type == "cuda"
                               else None)
    return box[0]


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
                 "interactions (holdout from %s), world size %d", data.n_customers,
                 data.n_products, len(data.train), len(data.holdout), data.holdout_start.date(),
                 ctx.world_size)
        throughput = Throughput.of(ctx)
        evaluated = {
            name: _train_model(name, cfg, ctx, data, data.at_holdout, data.train,
                               models_dir / f"holdout_{name}.pt", "holdout", throughput)
            for name in LEARNED
        }
        with main_takes_idle_threads(ctx):
            metrics = _evaluate(evaluated, data, cfg, ctx) if ctx.is_main else None
        champion = str(_from_main(metrics["champion"] if metrics else None, ctx))
        if cfg.trainer.refit:
            model = _train_model(champion, cfg, ctx, data, data.at_plan_week, data.interactions,
                                 models_dir / "checkpoint.pt", "all", throughput)
        else:
            model = _with_latest_inputs(champion, evaluated[champion], cfg, data)
            _copy_checkpoint(models_dir, champion, ctx)
        if ctx.is_main:
            metrics.update(throughput.to_metrics())
            log.info("recommender training throughput: %s samples/s over %d epochs on %s x %d",
                     metrics["train_samples_per_s"], len(throughput.epochs), ctx.device.type,
                     ctx.world_size)
            save_bundle(models_dir / BUNDLE_NAME, champion, cfg, data,
                        holdout=evaluated[champion], final=model)
            with main_takes_idle_threads(ctx):
                write_recommendations(model.to(ctx.device), data, cfg.data.top_n,
                                      folder.recommendations, cfg.trainer.score_chunk)
            folder.write_json(folder.metrics("recommender"), metrics)
        barrier(ctx)
        return metrics
    finally:
        cleanup_distributed()


BUNDLE_NAME = "model.pt"


def model_config(name: str, cfg: RecommenderConfig) -> dict:
    """The architecture settings of the learned model `name`."""
    return asdict(cfg.sequence if name == "sequence" else cfg.model)


def save_bundle(path: Path, name: str, cfg: RecommenderConfig, data: RecommenderData, *,
                holdout: nn.Module, final: nn.Module) -> None:
    """The chosen model's weights as evaluated on the holdout and as recommending, with the
    ids and categories their rows stand for (the registry's artifact; feature tables and
    histories are left out: they are rebuilt from the run that uses it). Written atomically."""
    def weights(model: nn.Module) -> dict:
        buffers = {key for key, _ in model.named_buffers()}
        return {key: value.detach().cpu() for key, value in model.state_dict().items()
                if key not in buffers}

    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"kind": name, "config": model_config(name, cfg),
             "customer_ids": data.customer_ids.tolist(), "product_ids": data.product_ids.tolist(),
             "categories": list(data.categories), "holdout": weights(holdout),
             "final": weights(final)}
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _copy_checkpoint(models_dir: Path, champion: str, ctx: DistContext) -> None:
    """Without refit the evaluated champion is the final model: publish it as checkpoint.pt."""
    if ctx.is_main:
        tmp = models_dir / ".checkpoint.pt.tmp"
        tmp.write_bytes((models_dir / f"holdout_{champion}.pt").read_bytes())
        os.replace(tmp, models_dir / "checkpoint.pt")
    barrier(ctx)


def parse_args(argv: list[str] | None = None) -> RecommenderConfig:
    """The configuration from the command line and the run folder's run.json."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--top-n", type=int, default=None,
                        help="customers kept per product (default: CANDIDATE_FACTOR x the run's "
                        "audience size)")
    parser.add_argument("--refit", action=argparse.BooleanOptionalAction, default=None,
                        help="retrain the champion on all weeks before recommending (default: on)")
    parser.add_argument("--sequence-epochs", type=int, default=None,
                        help="epochs of the sequence model (default: --epochs or the run's "
                        "epochs when given, else its own default)")
    args = parser.parse_args(argv)
    params = run_params(args.run_dir)
    cfg = configure(RecommenderConfig(), args, params,
                    data={"top_n": CANDIDATE_FACTOR * params.audience_size
                          if args.top_n is None else args.top_n},
                    trainer={"refit": args.refit})
    epochs = next((e for e in (args.sequence_epochs, args.epochs, params.epochs or None)
                   if e is not None), None)
    if epochs is not None:
        cfg = replace(cfg, sequence=replace(cfg.sequence, epochs=epochs))
    return cfg


def main(argv: list[str] | None = None) -> None:
    run_main(parse_args, train, argv)


if __name__ == "__main__":
    main()
