"""Train the demand forecaster with DDP, evaluate it on a time holdout, forecast the plan week.

    torchrun --standalone --nproc_per_node=2 -m training.forecaster.train --run-dir DIR

Reads the forecaster training and scoring sets from the run folder. The weeks are split in
time (data.py): fitting weeks, then the validation slice (`validation_weeks`, early stopping
and calibration), then the holdout (`holdout_weeks`, evaluation and backtest). The model is
fitted on the fitting weeks, early-stopped on the validation slice (the epoch kept is reported),
calibrated there (calibration.py), and used as is for the holdout and the plan week (no refit).

Writes to the run folder:

- `forecasts.parquet`: every product at each candidate discount of the run's discount grid
  (`RunParams.discount_levels`): units_p10, units_p50, units_p90 (calibrated), and for the
  planner `dip_units` and `cannibalized_units` (below);
- `forecaster_metrics.json`: `train_samples_per_s` (training rows per second, all processes
  together; `device`, `world_size`, and per epoch under `throughput`), and
  `model`, `baseline` (seasonal naive) and `lightgbm` on the holdout
  (evaluate.score), `calibration` (bias at discount 0 and P10-P90 coverage on the holdout rows
  not promoted and not stocked out, with the fitted correction and the uncorrected values),
  `training` (chosen epoch, also top-level `chosen_epoch`, epochs run, validation history),
  the learned promotion effects
  (`price_response`, `type_bump`, `dip_share`, `cannibalization_rate` per category,
  `dip_lag_weights`, `contact_rate`) and `backtest` (backtest.py);
- `backtest.parquet` (`backtest.backtest_path`).

The checkpoint goes to <models-dir>/forecaster/checkpoint.pt, and the model as it forecasts
(weights, standardizer, vocabulary, calibration) to <models-dir>/forecaster/model.pt, the bundle
the registry keeps (training/gate.py, docs/models.md).

Planner inputs, for product p of category c at candidate depth d, with B_p its calibrated P50 at
depth 0 in the plan week (taken as the baseline of each of the next weeks too):

    dip_units(p, d) = B_p * sum_{l=1..3} (1 - exp(-kappa_c * omega_l * expm1(lift_p(d))))

the units the product's next three weeks lose when it is promoted at d now (lift_p(d) is its
own log lift at d, the dip term of model.py with the promotion l weeks back), and

    cannibalized_units(p, d) = (sum_{q in c, q != p} B_q) * (1 - exp(-gamma_c * share_p * d))

the units its category siblings lose in total when p alone is promoted at d: the pressure each
sibling then sees is share_p * d, with share_p = p's share of the category's units over the 12
weeks before the plan week (units_roll_mean_12 of the scoring rows, the definition of the
category_promo_pressure feature). Both are 0 at d = 0 and non-decreasing in d (checked).

The plan-week forecasts are those of plain price cuts with nobody contacted: the units that the
targeting's contacts add are the planner's, from the measured treatment effects
(planning/contacts.py). Rows with contacts (`contacted_customers`, the campaign send log of
measured plan weeks) are explained by the model's contact term where they are fitted, left out
of the calibration's lift factor (their extra units are not price response), and a contact term
that never saw a contact in the fitting weeks counts nothing (`contact_rate` 0).
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
from training.common.loop import Throughput, epochs_within_budget
from training.forecaster import evaluate
from training.forecaster.backtest import LightGBMBaseline, backtest_path, backtest_table
from training.forecaster.calibration import Calibration, measure
from training.forecaster.data import (
    FEATURE_NAMES,
    N_INPUTS,
    Standardizer,
    Vocab,
    make_batch,
    promoted_rows,
    raw_features,
    read_frame,
    split_holdout,
    split_validation,
    stocked_out,
)
from training.forecaster.fitting import fit_with_early_stopping
from training.forecaster.model import PROMO_TYPES, DemandForecaster, pinball_terms

log = logging.getLogger("training.forecaster")

#: depths at which the metrics report each category's price response (units multiplier)
RESPONSE_DEPTHS = (0.1, 0.2, 0.3, 0.4, 0.5)


@dataclass
class DataConfig:
    run_dir: Path = Path(".")
    holdout_weeks: int = 8
    #: weeks before the holdout for early stopping and calibration (fewer on short data)
    validation_weeks: int = 8
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
    #: learning rate of the promotion terms' parameters, as a multiple of lr
    effect_lr_scale: float = 5.0
    batch_size: int = 512  # per process; lowered on small data (see effective_batch_size)
    #: the batch on a GPU is this many times batch_size (training.common.loop)
    cuda_batch_scale: int = 8
    #: lower the batch on small data so each rank takes at least this many steps an epoch
    min_steps: int = 32


@dataclass
class TrainerConfig:
    epochs: int = 30  # at most; early stopping may keep an earlier epoch
    patience: int = 8  # epochs without a better validation loss before stopping
    #: fitting rows over all epochs at most: epochs are cut to fit (at least one); a year of
    #: 50,000 products' weeks gets 9 epochs, the demo and large markets are not cut
    max_train_samples: int = 40_000_000
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


def row_loss(model: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Per-row censored pinball loss (the dataset's columns: inputs, target, censored)."""
    predicted = model(*batch[:N_INPUTS])
    return pinball_terms(predicted, batch[N_INPUTS], batch[N_INPUTS + 1]).mean(dim=-1)


@torch.no_grad()
def predict_log(model: DemandForecaster, batch, device: torch.device,
                chunk: int = 65536) -> np.ndarray:
    """[rows, 3] P10/P50/P90 of log1p(units), uncalibrated."""
    model.eval()
    inputs = batch.inputs()
    parts = [model(*[t[s:s + chunk].to(device) for t in inputs]).cpu()
             for s in range(0, len(inputs[0]), chunk)]
    return torch.cat(parts).numpy().astype(float) if parts else np.zeros((0, 3))


def predict_units(model: DemandForecaster, batch, device: torch.device,
                  calibration: Calibration | None = None) -> np.ndarray:
    """[rows, 3] P10/P50/P90 units (calibrated when a calibration is given)."""
    return (calibration or Calibration()).units(predict_log(model, batch, device))


@torch.no_grad()
def _effects(model: DemandForecaster, frame: pd.DataFrame, vocab: Vocab, level: float,
             device: torch.device) -> tuple[np.ndarray, ...]:
    """Per row of `frame`: own lift at `level`, dip share, dip weights, cannibalization rate."""
    product = torch.from_numpy(vocab.product_index(frame)).to(device)
    category = torch.from_numpy(vocab.category_index(frame)).to(device)
    depth = torch.full((len(frame),), float(np.clip(level, 0.0, 0.95)), device=device)
    lift = model.own_lift(product, category, depth)
    return (lift.cpu().numpy().astype(float), model.dip_share(category).cpu().numpy(),
            model.dip_weights().cpu().numpy(), model.cannibalization_rate(category).cpu().numpy())


def category_shares(score: pd.DataFrame) -> np.ndarray:
    """Each product's share of its category's units over the 12 weeks before the plan week."""
    recent = pd.to_numeric(score["units_roll_mean_12"], errors="coerce").fillna(0.0).clip(lower=0)
    total = recent.groupby(score["category"].astype(str)).transform("sum")
    return np.where(total > 0, recent / total.where(total > 0, 1.0), 0.0)


def forecast_plan_week(
    model: DemandForecaster, score: pd.DataFrame, standardizer: Standardizer, vocab: Vocab,
    levels: list[float], device: torch.device, calibration: Calibration | None = None,
) -> pd.DataFrame:
    """One row per product and candidate discount; demand quantiles, dip and cannibalized units
    checked non-decreasing in discount (module docstring for the formulas)."""
    if 0.0 not in levels:
        raise ValueError("the candidate levels must include 0 (the no-promotion baseline).")
    score = score.reset_index(drop=True)
    shares = category_shares(score)
    parts = []
    for level in levels:
        batch = make_batch(score, standardizer, vocab, discount=np.full(len(score), level))
        units = predict_units(model, batch, device, calibration)
        parts.append((level, units, *_effects(model, score, vocab, level, device)))
    at_0 = next(units for level, units, *_ in parts if level == 0.0)
    if calibration is not None:
        parts = [(level, calibration.lift(units, at_0), *rest) for level, units, *rest in parts]
    baseline = at_0[:, 1]
    siblings = (pd.Series(baseline).groupby(score["category"].astype(str).to_numpy())
                .transform("sum").to_numpy() - baseline)
    frames = []
    for level, units, lift, kappa, omega, gamma in parts:
        extra = np.expm1(lift)
        dip = baseline * (1.0 - np.exp(-kappa[:, None] * omega[None, :] * extra[:, None])
                          ).sum(axis=1)
        cannibalized = siblings * (1.0 - np.exp(-gamma * shares * level))
        frames.append(pd.DataFrame({
            "product_id": score["product_id"].to_numpy(),
            "week_start": score["week_start"].dt.date.to_numpy(),
            "discount_depth": float(level),
            "units_p10": units[:, 0], "units_p50": units[:, 1], "units_p90": units[:, 2],
            "dip_units": dip if level > 0 else np.zeros(len(score)),
            "cannibalized_units": cannibalized if level > 0 else np.zeros(len(score)),
        }))
    forecasts = pd.concat(frames, ignore_index=True)
    forecasts = forecasts.sort_values(["product_id", "discount_depth"]).reset_index(drop=True)
    by_product = forecasts.groupby("product_id")
    for column in ("units_p10", "units_p50", "units_p90", "dip_units", "cannibalized_units"):
        if (by_product[column].diff().dropna() < -1e-6).any():
            raise RuntimeError(f"forecast {column} decreases with discount depth; "
                               "the model is broken.")
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
    threads = torch.get_num_threads()
    # the network is small: one intra-op thread is the fastest (under torchrun the launcher
    # sets OMP_NUM_THREADS=1 anyway), and a plain in-process run gets the same
    torch.set_num_threads(1)
    try:
        seed_everything(cfg.trainer.seed)
        folder = RunFolder(cfg.data.run_dir)
        frame = read_frame(folder.forecaster_train, label=True)
        score_rows = read_frame(folder.forecaster_score, label=False)
        run_key = _run_key(cfg, frame, ctx)
        throughput = Throughput.of(ctx)
        before, holdout_rows = split_holdout(frame, cfg.data.holdout_weeks)
        fit_rows, validation_rows = split_validation(before, cfg.data.validation_weeks)
        standardizer = Standardizer.fit(raw_features(fit_rows))
        vocab = Vocab.fit(fit_rows, score_rows)
        train_batch = make_batch(fit_rows, standardizer, vocab)
        validation_batch = make_batch(validation_rows, standardizer, vocab)
        shape = dict(
            n_features=len(FEATURE_NAMES), n_products=len(vocab.products),
            n_categories=len(vocab.categories), embedding_dim=cfg.model.embedding_dim,
            hidden_dim=cfg.model.hidden_dim, dropout=cfg.model.dropout,
            initial_level=float(train_batch.target.mean()), **standardizer.level_inputs(),
        )
        del frame, before  # only the splits are used from here on (memory: rows x columns)
        model = DemandForecaster(**shape)
        # fused: one kernel over all the (many small) parameters, CPU and CUDA alike
        optimizer = torch.optim.AdamW(model.parameter_groups(
            cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.effect_lr_scale), fused=True)
        models_dir = cfg.trainer.models_dir or default_models_dir()
        log.info("forecaster: %d fitting rows, %d validation rows, %d holdout rows, %d products, "
                 "world size %d", len(fit_rows), len(validation_rows), len(holdout_rows),
                 len(vocab.products), ctx.world_size)
        epochs = epochs_within_budget(cfg.trainer.epochs, len(fit_rows),
                                      cfg.trainer.max_train_samples)
        result = fit_with_early_stopping(
            ctx, model, optimizer, TensorDataset(*train_batch.tensors()),
            validation_batch.tensors(), row_loss,
            epochs=epochs, patience=cfg.trainer.patience,
            batch_size=cfg.optim.batch_size, seed=cfg.trainer.seed,
            checkpoint_path=models_dir / "forecaster" / "checkpoint.pt",
            run_key=run_key, name="forecaster",
            extra={"standardizer": standardizer.to_dict(), "feature_names": FEATURE_NAMES,
                   "products": list(vocab.products), "categories": list(vocab.categories),
                   "model": asdict(cfg.model)},
            min_steps=cfg.optim.min_steps, cuda_batch_scale=cfg.optim.cuda_batch_scale,
            throughput=throughput,
        )
        metrics = None
        if not contacted(fit_rows).any():
            model.forget_contacts()
        if ctx.is_main:
            calibration = _calibrate(model, validation_rows, validation_batch, standardizer,
                                     vocab, ctx)
            metrics = _evaluate(model, calibration, fit_rows, validation_rows, holdout_rows,
                                standardizer, vocab, cfg, ctx)
            metrics["training"] = result.to_dict(epochs, cfg.trainer.patience)
            metrics["chosen_epoch"] = result.best_epoch
            metrics.update(throughput.to_metrics())
            save_bundle(models_dir / "forecaster" / BUNDLE_NAME, model, shape, standardizer,
                        vocab, calibration)
            forecasts = forecast_plan_week(model, score_rows, standardizer, vocab, levels,
                                           ctx.device, calibration)
            write_parquet(forecasts, folder.forecasts)
            write_parquet(pd.DataFrame(metrics["backtest"]), backtest_path(folder))
            folder.write_json(folder.metrics("forecaster"), metrics)
        barrier(ctx)
        return metrics
    finally:
        torch.set_num_threads(threads)
        cleanup_distributed()


BUNDLE_NAME = "model.pt"


def save_bundle(path: Path, model: DemandForecaster, shape: dict, standardizer: Standardizer,
                vocab: Vocab, calibration: Calibration) -> None:
    """Everything that scores rows again later (the registry's artifact), written atomically:
    weights, constructor arguments, standardizer, vocabulary and calibration."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), "shape": shape,
             "standardizer": standardizer.to_dict(),
             "products": {_plain(p): i for p, i in vocab.products.items()},
             "categories": dict(vocab.categories), "calibration": calibration.to_dict()}
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _plain(value: object) -> object:
    """A numpy scalar as the Python value it holds."""
    return value.item() if hasattr(value, "item") else value


def load_bundle(path: Path) -> tuple[DemandForecaster, Standardizer, Vocab, Calibration]:
    """The model, standardizer, vocabulary and calibration saved by `save_bundle`."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    model = DemandForecaster(**state["shape"])
    model.load_state_dict(state["model"])
    standardizer = Standardizer(**{k: np.asarray(v, dtype=float)
                                   for k, v in state["standardizer"].items()})
    return (model.eval(), standardizer, Vocab(state["products"], state["categories"]),
            Calibration(**state["calibration"]))


def contacted(rows: pd.DataFrame) -> np.ndarray:
    """True where customers were contacted about the product in the week (send log)."""
    return rows["contacted_customers"].to_numpy(dtype=float) > 0


def _at_discount_0(rows: pd.DataFrame) -> np.ndarray:
    """Rows without a promotion whose units are demand (not stocked out)."""
    return ~promoted_rows(rows) & ~stocked_out(rows)


def _calibrate(model: DemandForecaster, validation_rows: pd.DataFrame, validation_batch,
               standardizer: Standardizer, vocab: Vocab, ctx: DistContext) -> Calibration:
    """The post-hoc correction fitted on the validation slice: the level and the gaps at
    discount 0, then the lift factor on the promoted rows without contacts (calibration.py)."""
    if validation_rows.empty:
        return Calibration()
    keep = _at_discount_0(validation_rows)
    log_q = predict_log(model, validation_batch, ctx.device)
    units = pd.to_numeric(validation_rows["units"]).to_numpy(dtype=float)
    calibration = Calibration.fit(log_q[keep], units[keep])
    promoted = (promoted_rows(validation_rows) & ~stocked_out(validation_rows)
                & ~contacted(validation_rows))
    rows = validation_rows[promoted]
    at_0 = make_batch(rows, standardizer, vocab, discount=np.zeros(len(rows)))
    return calibration.with_lift(calibration.units(log_q[promoted]),
                                 predict_units(model, at_0, ctx.device, calibration),
                                 units[promoted])


def predict_promoted(model: DemandForecaster, rows: pd.DataFrame, standardizer: Standardizer,
                     vocab: Vocab, device: torch.device, calibration: Calibration) -> np.ndarray:
    """[rows, 3] calibrated quantiles of rows with their recorded promotions, the lift factor
    applied to the promoted ones."""
    units = predict_units(model, make_batch(rows, standardizer, vocab), device, calibration)
    promoted = promoted_rows(rows)
    if promoted.any() and calibration.lift_factor != 1.0:
        part = rows[promoted]
        at_0 = predict_units(model, make_batch(part, standardizer, vocab,
                                               discount=np.zeros(len(part))), device, calibration)
        units[promoted] = calibration.lift(units[promoted], at_0)
    return units


def _evaluate(
    model: DemandForecaster, calibration: Calibration, fit_rows: pd.DataFrame,
    validation_rows: pd.DataFrame, holdout_rows: pd.DataFrame, standardizer: Standardizer,
    vocab: Vocab, cfg: ForecasterConfig, ctx: DistContext,
) -> dict:
    holdout_rows = holdout_rows.reset_index(drop=True)
    actual = pd.to_numeric(holdout_rows["units"]).to_numpy(dtype=float)
    scale = evaluate.naive_scale(fit_rows)
    log_q = predict_log(model, make_batch(holdout_rows, standardizer, vocab), ctx.device)
    predictions = {
        "model": predict_promoted(model, holdout_rows, standardizer, vocab, ctx.device,
                                  calibration),
        "seasonal_naive": evaluate.baseline_quantiles(fit_rows, holdout_rows),
        "lightgbm": LightGBMBaseline.fit(fit_rows, validation_rows, vocab,
                                         cfg.trainer.seed).predict(holdout_rows),
    }
    demand = ~stocked_out(holdout_rows)  # units are demand, not a lower bound
    base = _at_discount_0(holdout_rows)
    backtest = backtest_table(holdout_rows, predictions, scale)
    metrics = {
        "model": evaluate.score(actual[demand], predictions["model"][demand], scale),
        "baseline": evaluate.score(actual[demand], predictions["seasonal_naive"][demand], scale),
        "lightgbm": evaluate.score(actual[demand], predictions["lightgbm"][demand], scale),
        "holdout_weeks": cfg.data.holdout_weeks,
        "validation_weeks": int(validation_rows["week_start"].nunique()),
        "train_rows": len(fit_rows) + len(validation_rows),
        "fit_rows": len(fit_rows),
        "validation_rows": len(validation_rows),
        "holdout_rows": len(holdout_rows),
        "evaluated_rows": int(demand.sum()),
        "calibration": {
            **measure(actual[base], predictions["model"][base]),
            "uncalibrated": measure(actual[base], Calibration().units(log_q)[base]),
            "correction": calibration.to_dict(),
            "fitted_on": "validation weeks before the holdout, rows at discount 0",
        },
        **_learned_effects(model, vocab, ctx.device),
        "backtest": backtest.to_dict(orient="records"),
    }
    log.info("forecaster holdout: model %s, seasonal naive %s, lightgbm %s; calibration %s",
             metrics["model"], metrics["baseline"], metrics["lightgbm"],
             {k: metrics["calibration"][k] for k in ("bias_at_discount_0", "p10_p90_coverage")})
    return metrics


@torch.no_grad()
def _learned_effects(model: DemandForecaster, vocab: Vocab, device: torch.device) -> dict:
    """Per category: units multiplier of a plain price cut at RESPONSE_DEPTHS (for a product
    at its category's curve), type bumps (units multiplier - 1), dip share, cannibalization."""
    names = list(vocab.categories)
    category = torch.tensor([vocab.categories[c] for c in names], device=device)
    unseen = torch.zeros_like(category)  # product index 0: the category's own curve
    response, bumps = {}, model.type_bumps(category).cpu().numpy()
    for depth in RESPONSE_DEPTHS:
        d = torch.full((len(names),), depth, device=device)
        lift = model.own_lift(unseen, category, d).cpu().numpy()
        response[f"{depth:g}"] = np.exp(lift)
    return {
        "price_response": {c: {k: float(v[i]) for k, v in response.items()}
                           for i, c in enumerate(names)},
        "type_bump": {c: {t: float(np.expm1(bumps[i, j])) for j, t in enumerate(PROMO_TYPES)}
                      for i, c in enumerate(names)},
        "dip_share": dict(zip(names, model.dip_share(category).cpu().tolist(), strict=True)),
        "dip_lag_weights": model.dip_weights().cpu().tolist(),
        "contact_rate": float(model.contact_rate()),
        "cannibalization_rate": dict(zip(
            names, model.cannibalization_rate(category).cpu().tolist(), strict=True)),
    }


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
