"""The registered champion forecaster scored on another run: its holdout metrics and its
plan-week forecasts, from its saved bundle (train.save_bundle) and this run's training sets.

Run in one CPU process by the gate (training/gate.py). The holdout is the run's own (the last
`holdout_weeks` weeks), so champion and challenger are compared on the same rows; products and
categories the champion never saw get its unseen index, as in training.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from promoflow.run import RunFolder
from training.common.io import write_parquet
from training.forecaster import evaluate
from training.forecaster.data import read_frame, split_holdout, split_validation, stocked_out
from training.forecaster.train import (
    candidate_levels,
    forecast_plan_week,
    load_bundle,
    parse_args,
    predict_promoted,
)

CPU = torch.device("cpu")


def holdout_metrics(bundle: Path, argv: list[str]) -> dict[str, float]:
    """The bundle's model scored on the holdout of the run that `argv` trains (evaluate.score
    over the rows whose units are demand, as the challenger is)."""
    cfg = parse_args(argv)
    model, standardizer, vocab, calibration = load_bundle(bundle)
    frame = read_frame(RunFolder(cfg.data.run_dir).forecaster_train, label=True)
    before, holdout_rows = split_holdout(frame, cfg.data.holdout_weeks)
    fit_rows, _ = split_validation(before, cfg.data.validation_weeks)
    holdout_rows = holdout_rows.reset_index(drop=True)
    actual = pd.to_numeric(holdout_rows["units"]).to_numpy(dtype=float)
    predicted = predict_promoted(model, holdout_rows, standardizer, vocab, CPU, calibration)
    demand = ~stocked_out(holdout_rows)
    return evaluate.score(actual[demand], predicted[demand], evaluate.naive_scale(fit_rows))


def write_outputs(bundle: Path, argv: list[str]) -> int:
    """Replace the run's forecasts.parquet with the bundle's model's; returns the rows."""
    cfg = parse_args(argv)
    model, standardizer, vocab, calibration = load_bundle(bundle)
    folder = RunFolder(cfg.data.run_dir)
    score_rows = read_frame(folder.forecaster_score, label=False)
    with torch.no_grad():
        forecasts = forecast_plan_week(model, score_rows, standardizer, vocab,
                                       candidate_levels(cfg.data), CPU, calibration)
    write_parquet(forecasts, folder.forecasts)
    return len(forecasts)
