"""Rolling-origin backtest of the forecaster against seasonal naive and LightGBM.

Every holdout week is a forecast origin: its rows are forecast from their own features, which
are point-in-time (lags and rolling statistics use only weeks before it), with the realized
promotions of the week as covariates. The models are fitted once, at the first origin: the
forecaster, its calibration and the LightGBM baseline see only the weeks before the holdout,
and nothing is refit between origins. Metrics (evaluate.score: WAPE, bias, MASE, quantile
loss, P10-P90 coverage) per origin week and over all of them (week_start "overall"), on the
rows whose units are demand (not stocked out; every row when the data has no stock-outs).

The LightGBM baseline is three quantile regressions (P10, P50, P90) of log1p(units) on the
forecaster's inputs: the body's features, the category, and the promotion inputs (depth,
promotion flag, promotion types, lagged depths, category pressure), unconstrained (LightGBM's
quantile objective takes no monotone constraints). It is trained on the same fitting rows
(less the stocked-out ones, whose units are only a lower bound), early-stopped on the
validation slice, seeded, deterministic and not calibrated.

Written to the run folder as `backtest.parquet` (`backtest_path`) and to the metrics JSON under
`backtest`: one row per week_start and model (`model`, `seasonal_naive`, `lightgbm`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from promoflow.run import RunFolder
from training.forecaster import evaluate
from training.forecaster.data import (
    DISCOUNT_LAG_COLUMNS,
    PROMO_TYPE_COLUMNS,
    Vocab,
    price_inputs,
    raw_features,
    stocked_out,
)
from training.forecaster.model import QUANTILES

log = logging.getLogger(__name__)

BACKTEST_FILE = "backtest.parquet"
OVERALL = "overall"
#: promotion inputs of the baseline, besides the body's features and the category
PROMOTION_INPUTS = ["discount_depth", "is_promoted", *PROMO_TYPE_COLUMNS, *DISCOUNT_LAG_COLUMNS,
                    "category_promo_pressure"]
LIGHTGBM_PARAMS = {
    "objective": "quantile", "learning_rate": 0.1, "num_leaves": 31, "min_child_samples": 20,
    "feature_fraction": 1.0, "bagging_fraction": 1.0, "lambda_l2": 1.0, "max_bin": 255,
    "deterministic": True, "force_col_wise": True, "verbosity": -1,
}
LIGHTGBM_ROUNDS = 300
LIGHTGBM_EARLY_STOP = 20
#: one thread: as fast as more on these sizes, and the same trees on every machine
LIGHTGBM_THREADS = 1
#: fitting rows of the baseline at most (a seeded sample above it): 4.4M product-weeks of the
#: xl market took about 15 minutes on one thread, and a 31-leaf tree needs far fewer rows
LIGHTGBM_MAX_ROWS = 1_000_000


def backtest_path(folder: RunFolder) -> Path:
    """The backtest table of a run: runs/<run_id>/backtest.parquet."""
    return folder.path / BACKTEST_FILE


def lightgbm_inputs(frame: pd.DataFrame, vocab: Vocab) -> pd.DataFrame:
    """The forecaster's inputs as one table (NaN left for LightGBM to route)."""
    inputs = raw_features(frame).reset_index(drop=True)
    inputs["category_index"] = vocab.category_index(frame)
    depth, promoted = price_inputs(pd.to_numeric(frame["discount_depth"], errors="coerce"))
    inputs["discount_depth"] = depth
    flag = pd.to_numeric(frame["is_promoted"], errors="coerce").fillna(0).to_numpy() > 0
    inputs["is_promoted"] = np.maximum(promoted, flag.astype(np.float32))
    for column in PROMOTION_INPUTS[2:]:  # read_frame fills absent ones with 0
        inputs[column] = pd.to_numeric(frame[column], errors="coerce").fillna(0.0).to_numpy()
    return inputs


@dataclass
class LightGBMBaseline:
    """Three LightGBM quantile boosters on log1p(units), fitted on at most LIGHTGBM_MAX_ROWS
    rows (a sample drawn with the run's seed; the demo and large markets have fewer)."""

    boosters: list
    vocab: Vocab
    rounds: list[int]

    @classmethod
    def fit(cls, fit_rows: pd.DataFrame, validation_rows: pd.DataFrame, vocab: Vocab,
            seed: int) -> LightGBMBaseline:
        import lightgbm as lgb

        train = fit_rows[~stocked_out(fit_rows)]
        if len(train) > LIGHTGBM_MAX_ROWS:
            keep = np.random.default_rng(seed).choice(len(train), LIGHTGBM_MAX_ROWS,
                                                      replace=False)
            train = train.iloc[np.sort(keep)]
        valid = validation_rows[~stocked_out(validation_rows)]
        x = lightgbm_inputs(train, vocab)
        y = np.log1p(pd.to_numeric(train["units"]).clip(lower=0).to_numpy(dtype=float))
        boosters, rounds = [], []
        for alpha in QUANTILES:
            params = {**LIGHTGBM_PARAMS, "alpha": alpha, "seed": seed,
                      "num_threads": LIGHTGBM_THREADS}
            data = lgb.Dataset(x, y, categorical_feature=["category_index"], free_raw_data=False)
            callbacks, valid_sets = [], []
            if len(valid):
                yv = np.log1p(pd.to_numeric(valid["units"]).clip(lower=0).to_numpy(dtype=float))
                valid_sets = [lgb.Dataset(lightgbm_inputs(valid, vocab), yv, reference=data)]
                callbacks = [lgb.early_stopping(LIGHTGBM_EARLY_STOP, verbose=False)]
            booster = lgb.train(params, data, num_boost_round=LIGHTGBM_ROUNDS,
                                valid_sets=valid_sets, callbacks=callbacks)
            boosters.append(booster)
            rounds.append(int(booster.best_iteration or booster.current_iteration()))
        return cls(boosters, vocab, rounds)

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        """[rows, 3] P10/P50/P90 units (sorted per row, so they never cross)."""
        x = lightgbm_inputs(rows, self.vocab)
        logs = np.stack([b.predict(x, num_iteration=r) for b, r in
                         zip(self.boosters, self.rounds, strict=True)], axis=1)
        return np.clip(np.expm1(np.sort(logs, axis=1)), 0.0, None)


def backtest_table(
    holdout_rows: pd.DataFrame, predictions: dict[str, np.ndarray], scale: float
) -> pd.DataFrame:
    """Metrics per origin week and model, then over all weeks (week_start "overall")."""
    rows = holdout_rows.reset_index(drop=True)
    keep = ~stocked_out(rows)
    actual = pd.to_numeric(rows["units"]).to_numpy(dtype=float)
    weeks = pd.to_datetime(rows["week_start"]).dt.date.astype(str).to_numpy()
    records = []
    for week in [*sorted(set(weeks)), OVERALL]:
        mask = keep & ((weeks == week) if week != OVERALL else True)
        for name, quantiles in predictions.items():
            records.append({"week_start": week, "model": name, "rows": int(mask.sum()),
                            **evaluate.score(actual[mask], quantiles[mask], scale)})
    return pd.DataFrame(records)
