"""Train the demand forecaster with DDP, evaluate it on a time holdout, forecast the plan week.

    torchrun --standalone --nproc_per_node=2 -m training.forecaster.train --run-dir DIR

Reads the forecaster training and scoring sets from the run folder and writes the forecasts
(P10/P50/P90 units of every product at each candidate discount of the run's discount grid,
`RunParams.discount_levels`) and the metrics (model vs seasonal-naive baseline) there; the
checkpoint goes to <models-dir>/forecaster/checkpoint.pt. The model is trained on the weeks
before the holdout and used as is for the plan week (no refit).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import TensorDataset

from promoflow.run import RunFolder, RunParams
from training.common import barrier, cleanup_distributed, seed_everything, setup_distributed
from training.common.checkpoint import make_run_key
from training.common.cli import base_parser, configure, default_models_dir, run_main, run_params
from training.common.distributed import DistContext
from training.common.io import write_parquet
from training.common.loop import fit
from training.forecaster import evaluate
from training.forecaster.data import (
    FEATURE_NAMES,
    Standardizer,
    Vocab,
    make_batch,
    raw_features,
    read_frame,
    split_holdout,
)
from training.forecaster.model import DemandForecaster, pinball_loss, to_units

log = logging.getLogger("training.forecaster")


@dataclass
class DataConfig:
    run_dir: Path = Path(".")
    holdout_weeks: int = 8
    #: candidate discounts to forecast: the run's grid (RunParams.discount_levels)
    discount_levels: tuple[float, ...] = RunParams().discount_levels


@dataclass
class ModelConfig:
    embedding_dim: int = 8
    hidden_dim: int = 64
    dropout: float = 0.0


@dataclass
class OptimConfig:
    lr: float = 5e-3
    weight_decay: float = 1e-4
    batch_size: int = 512  # per process; lowered on small data (see effective_batch_size)


@dataclass
class TrainerConfig:
    epochs: int = 30
    seed: int = 42
    models_dir: Path | None = None  # default: the settings' models folder


@dataclass
class ForecasterConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


def candidate_levels(cfg: DataConfig) -> list[float]:
    """The discount levels to forecast, 0 (the no-promotion baseline) included."""
    levels = sorted(set(cfg.discount_levels) | {0.0})
    if levels[0] < 0 or levels[-1] >= 1:
        raise ValueError(f"candidate discounts {levels} must lie in [0, 1).")
    return levels


@torch.no_grad()
def predict_units(model: DemandForecaster, batch, device: torch.device) -> np.ndarray:
    """[rows, 3] P10/P50/P90 units."""
    model.eval()
    inputs = [t.to(device) for t in batch.tensors()[:5]]
    return to_units(model(*inputs)).cpu().numpy().astype(float)


def forecast_plan_week(
    model: DemandForecaster, score: pd.DataFrame, standardizer: Standardizer, vocab: Vocab,
    levels: list[float], device: torch.device,
) -> pd.DataFrame:
    """One row per product and candidate discount; demand checked non-decreasing in discount."""
    parts = []
    for level in levels:
        batch = make_batch(score, standardizer, vocab, discount=np.full(len(score), level))
        units = predict_units(model, batch, device)
        parts.append(pd.DataFrame({
            "product_id": score["product_id"].to_numpy(),
            "week_start": score["week_start"].dt.date.to_numpy(),
            "discount_depth": float(level),
            "units_p10": units[:, 0], "units_p50": units[:, 1], "units_p90": units[:, 2],
        }))
    forecasts = pd.concat(parts, ignore_index=True)
    forecasts = forecasts.sort_values(["product_id", "discount_depth"]).reset_index(drop=True)
    steps = forecasts.groupby("product_id")["units_p50"].diff().dropna()
    if (steps < -1e-6).any():
        raise RuntimeError("forecast demand decreases with discount depth; the model is broken.")
    return forecasts


def _run_key(cfg: ForecasterConfig, frame: pd.DataFrame, ctx: DistContext) -> str:
    settings = asdict(cfg)
    settings["trainer"].pop("models_dir")
    fingerprint = [len(frame), float(frame["units"].sum()), str(frame["week_start"].min()),
                   str(frame["week_start"].max()), str(cfg.data.run_dir.resolve())]
    return make_run_key("forecaster", settings, fingerprint, ctx.world_size)


def train(cfg: ForecasterConfig) -> dict | None:
    """Train, evaluate and forecast; returns the metrics on rank 0 (None on other ranks)."""
    if cfg.data.holdout_weeks < 1:
        raise ValueError("holdout_weeks must be at least 1 so the model can be evaluated.")
    levels = candidate_levels(cfg.data)
    ctx = setup_distributed()
    try:
        seed_everything(cfg.trainer.seed)
        folder = RunFolder(cfg.data.run_dir)
        frame = read_frame(folder.forecaster_train, label=True)
        score_rows = read_frame(folder.forecaster_score, label=False)
        fit_rows, holdout_rows = split_holdout(frame, cfg.data.holdout_weeks)
        standardizer = Standardizer.fit(raw_features(fit_rows))
        vocab = Vocab.fit(fit_rows, score_rows)
        train_batch = make_batch(fit_rows, standardizer, vocab)
        model = DemandForecaster(
            n_features=len(FEATURE_NAMES), n_products=len(vocab.products),
            n_categories=len(vocab.categories), embedding_dim=cfg.model.embedding_dim,
            hidden_dim=cfg.model.hidden_dim, dropout=cfg.model.dropout,
            initial_level=float(train_batch.target.mean()),
        )
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay
        )
        models_dir = cfg.trainer.models_dir or default_models_dir()
        log.info("forecaster: %d training rows, %d holdout rows, %d products, world size %d",
                 len(fit_rows), len(holdout_rows), len(vocab.products), ctx.world_size)
        fit(
            ctx, model, optimizer, TensorDataset(*train_batch.tensors()),
            lambda m, b: pinball_loss(m(*b[:5]), b[5]),
            epochs=cfg.trainer.epochs, batch_size=cfg.optim.batch_size, seed=cfg.trainer.seed,
            checkpoint_path=models_dir / "forecaster" / "checkpoint.pt",
            run_key=_run_key(cfg, frame, ctx), name="forecaster",
            extra={"standardizer": standardizer.to_dict(), "feature_names": FEATURE_NAMES,
                   "products": list(vocab.products), "categories": list(vocab.categories),
                   "model": asdict(cfg.model)},
        )
        metrics = None
        if ctx.is_main:
            metrics = _evaluate(model, fit_rows, holdout_rows, standardizer, vocab, cfg, ctx)
            forecasts = forecast_plan_week(model, score_rows, standardizer, vocab, levels,
                                           ctx.device)
            write_parquet(forecasts, folder.forecasts)
            folder.write_json(folder.metrics("forecaster"), metrics)
        barrier(ctx)
        return metrics
    finally:
        cleanup_distributed()


def _evaluate(
    model: DemandForecaster, fit_rows: pd.DataFrame, holdout_rows: pd.DataFrame,
    standardizer: Standardizer, vocab: Vocab, cfg: ForecasterConfig, ctx: DistContext,
) -> dict:
    actual = holdout_rows["units"].astype(float).to_numpy()
    scale = evaluate.naive_scale(fit_rows)
    predicted = predict_units(model, make_batch(holdout_rows, standardizer, vocab), ctx.device)
    baseline = evaluate.baseline_quantiles(fit_rows, holdout_rows)
    all_categories = torch.tensor(list(vocab.categories.values()), device=ctx.device)
    elasticity = torch.nn.functional.softplus(model.category_elasticity[all_categories])
    metrics = {
        "model": evaluate.score(actual, predicted, scale),
        "baseline": evaluate.score(actual, baseline, scale),
        "holdout_weeks": cfg.data.holdout_weeks,
        "train_rows": len(fit_rows),
        "holdout_rows": len(holdout_rows),
        "category_elasticity": dict(zip(vocab.categories, elasticity.tolist(), strict=True)),
    }
    log.info("forecaster holdout: model %s, seasonal naive %s", metrics["model"],
             metrics["baseline"])
    return metrics


def parse_args(argv: list[str] | None = None) -> ForecasterConfig:
    """The configuration from the command line and the run folder's run.json."""
    args = base_parser(__doc__.splitlines()[0]).parse_args(argv)
    params = run_params(args.run_dir)
    return configure(ForecasterConfig(), args, params,
                     data={"discount_levels": params.discount_levels})


def main(argv: list[str] | None = None) -> None:
    run_main(parse_args, train, argv)


if __name__ == "__main__":
    main()
