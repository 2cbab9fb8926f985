"""Whom a contact moves: each customer's estimated incremental response (uplift).

    uplift(x) = P(buys the product | contacted, x) - P(buys it | not contacted, x)

Targeting by the chance to buy (propensity) picks the customers who buy anyway, where a contact
earns least. The plan's experiments tell the two apart: every past plan week has targets in
treatment (contacted) and holdout (not), whether each bought the targeted product that week, and
the customer's features as of that week (the Feast customer snapshot of its plan week:
spark_jobs/customer_features.py, point-in-time).

Learner: transformed outcome (Athey & Imbens 2016). With p the week's treated share of targets
and t = 1 for treatment, y* = y (t - p) / (p (1 - p)) has E[y* | x] = uplift(x), so a
least-squares fit of y* on x estimates the uplift directly:

- x: deal proneness (promo_share, avg_discount_depth), log frequency, log spend, log recency;
  standardized over the training rows;
- ridge regression with an unpenalized intercept; the penalty is chosen by 5-fold
  cross-validation over customers (the fit's mean squared error on y* of the held-out fold is
  the uplift error plus a constant, so it ranks penalties correctly);
- the intercept is the mean of y*: the average effect over the past targets, so the uplift
  averaged over them matches what the holdouts measured (planning/contacts.py pools the same
  experiments week by week).

Without any measured week (the first plans of a dataset) nothing is learned: customers are
ranked by their deal proneness (promo_share: the share of their units bought on promotion;
deal-prone shoppers are the ones promotions move, Bawa & Shoemaker 1987), and no incremental
buyer is expected from the contacts (`learned` is False).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from promoflow.settings import Settings, get_settings
from promoflow.warehouse import connect

log = logging.getLogger(__name__)

FEATURES = ("promo_share", "avg_discount_depth", "log_frequency", "log_monetary", "log_recency")
SNAPSHOT_COLUMNS = ["customer_id", "event_timestamp", "recency_days", "frequency_orders_52w",
                    "monetary_value_52w", "avg_discount_depth", "promo_share"]
#: Ridge penalties tried, per training row (scale-free: the penalty grows with the rows).
PENALTIES = (0.01, 0.1, 1.0, 10.0, 100.0)
FOLDS = 5
#: Fewer treated or holdout rows than this in the history: nothing is learned.
MIN_ROWS = 200


class UpliftError(ValueError):
    """The uplift model cannot be fitted or applied (missing features, bad rows)."""


def design(snapshots: pd.DataFrame) -> pd.DataFrame:
    """The model's inputs (FEATURES) from customer snapshot rows (SNAPSHOT_COLUMNS)."""
    return pd.DataFrame({
        "promo_share": snapshots["promo_share"].astype(float),
        "avg_discount_depth": snapshots["avg_discount_depth"].astype(float),
        "log_frequency": np.log1p(snapshots["frequency_orders_52w"].astype(float)),
        "log_monetary": np.log1p(snapshots["monetary_value_52w"].astype(float).clip(lower=0)),
        "log_recency": np.log1p(snapshots["recency_days"].astype(float).clip(lower=0)),
    }, index=snapshots.index)


@dataclass(frozen=True)
class UpliftModel:
    """uplift(x) = intercept + ((x - mean) / scale) @ coef; a prior ranking when not learned."""

    learned: bool
    intercept: float = 0.0
    coef: tuple[float, ...] = ()
    mean: tuple[float, ...] = ()
    scale: tuple[float, ...] = ()
    penalty: float = float("nan")
    rows: int = 0
    weeks: int = 0

    def predict(self, snapshots: pd.DataFrame) -> np.ndarray:
        """Estimated uplift per row (learned), or the prior score: promo_share (not learned)."""
        x = design(snapshots)
        if not self.learned:
            return x["promo_share"].to_numpy(float)
        z = (x.to_numpy(float) - np.array(self.mean)) / np.array(self.scale)
        return self.intercept + z @ np.array(self.coef)

    def expected(self, snapshots: pd.DataFrame) -> np.ndarray:
        """Expected extra buyers per contacted row: the uplift, 0 when nothing was learned."""
        return self.predict(snapshots) if self.learned else np.zeros(len(snapshots))

    def summary(self) -> dict:
        return {"uplift_learned": self.learned, "uplift_rows": self.rows,
                "uplift_weeks": self.weeks,
                "uplift_average": round(self.intercept, 6) if self.learned else None}


PRIOR = UpliftModel(learned=False)


def transformed_outcome(rows: pd.DataFrame) -> np.ndarray:
    """y* = y (t - p) / (p (1 - p)), p the treated share of the row's plan week."""
    treated = (rows["assignment"] == "treatment").to_numpy(float)
    p = pd.Series(treated).groupby(rows["plan_week"].to_numpy()).transform("mean").to_numpy()
    return rows["bought"].to_numpy(float) * (treated - p) / (p * (1.0 - p))


def _ridge(z: np.ndarray, y: np.ndarray, penalty: float) -> tuple[float, np.ndarray]:
    """Intercept and coefficients of a ridge fit on centred data (intercept unpenalized)."""
    z_mean, y_mean = z.mean(axis=0), y.mean()
    zc = z - z_mean
    coef = np.linalg.solve(zc.T @ zc + penalty * len(y) * np.eye(z.shape[1]), zc.T @ (y - y_mean))
    return float(y_mean - z_mean @ coef), coef


def fit(history: pd.DataFrame, seed: int = 0) -> UpliftModel:
    """Fit on past targets: plan_week, customer_id, assignment, bought and the SNAPSHOT_COLUMNS
    of the customer as of that plan week. PRIOR when the history is too small."""
    treated = int((history["assignment"] == "treatment").sum()) if len(history) else 0
    control = len(history) - treated
    if treated < MIN_ROWS or control < MIN_ROWS:
        log.info("Uplift: %d treated and %d holdout targets measured (fewer than %d): customers "
                 "are ranked by deal proneness", treated, control, MIN_ROWS)
        return PRIOR
    history = history.reset_index(drop=True)
    x = design(history).to_numpy(float)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    y = transformed_outcome(history)
    # folds by customer, so one customer's rows never sit on both sides
    customers = history["customer_id"].to_numpy()
    unique = np.unique(customers)
    fold_of = dict(zip(unique, np.random.default_rng(seed).permutation(len(unique)) % FOLDS))
    fold = np.array([fold_of[c] for c in customers])
    errors = []
    for penalty in PENALTIES:
        error = 0.0
        for k in range(FOLDS):
            train, test = fold != k, fold == k
            intercept, coef = _ridge(z[train], y[train], penalty)
            error += float(((y[test] - intercept - z[test] @ coef) ** 2).sum())
        errors.append(error / len(y))
    penalty = PENALTIES[int(np.argmin(errors))]
    intercept, coef = _ridge(z, y, penalty)
    model = UpliftModel(True, intercept, tuple(coef), tuple(mean), tuple(scale), penalty,
                        len(history), int(history["plan_week"].nunique()))
    log.info("Uplift learned on %d targets of %d plan weeks: average %.4f, penalty %g, "
             "coefficients %s", model.rows, model.weeks, intercept, penalty,
             ", ".join(f"{n} {c:+.4f}" for n, c in zip(FEATURES, coef)))
    return model


# --- data --------------------------------------------------------------------------------------

def snapshots(weeks: list[dt.date], settings: Settings | None = None) -> pd.DataFrame:
    """Customer snapshots (SNAPSHOT_COLUMNS plus plan_week) of the given plan weeks, from the
    lake's customer features."""
    settings = settings or get_settings()
    path = settings.feature_dir("customer_features")
    if not path.exists():
        raise UpliftError(f"No customer features in {path}; run the Spark features first.")
    dataset = ds.dataset(path, format="parquet")
    stamp_type = dataset.schema.field("event_timestamp").type  # midnight UTC of the Monday
    stamps = pa.array([pd.Timestamp(w, tz="UTC") for w in weeks], type=stamp_type)
    table = dataset.to_table(columns=SNAPSHOT_COLUMNS,
                             filter=ds.field("event_timestamp").isin(stamps))
    frame = table.to_pandas()
    frame["plan_week"] = pd.to_datetime(frame["event_timestamp"], utc=True).dt.date
    return frame.drop(columns="event_timestamp")


def measured_targets(dataset: str, plan_week: dt.date,
                     settings: Settings | None = None) -> pd.DataFrame:
    """Targets of the dataset's plan weeks measured before `plan_week` (plan_week,
    product_id, customer_id, assignment) and whether each bought the product in its week."""
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select to_regclass('published.experiment_results')")
        if cur.fetchone()[0] is None:
            return pd.DataFrame(columns=["plan_week", "product_id", "customer_id",
                                         "assignment", "bought"])
        cur.execute(
            "with weeks as (select distinct plan_week from published.experiment_results "
            "               where dataset = %s and plan_week < %s), "
            "bought as (select distinct l.week_start, l.product_id, l.customer_id "
            "           from marts.order_lines l join weeks w on l.week_start = w.plan_week "
            "           where not l.is_return and l.quantity > 0) "
            "select t.plan_week, t.product_id, t.customer_id, t.assignment, "
            "       b.customer_id is not null as bought "
            "from published.plan_targets t join published.current_plans p using (run_id) "
            "join weeks w on w.plan_week = t.plan_week "
            "left join bought b on b.week_start = t.plan_week and b.product_id = t.product_id "
            "     and b.customer_id = t.customer_id "
            "where p.dataset = %s order by 1, 2, 3", (dataset, plan_week, dataset))
        return pd.DataFrame(cur.fetchall(), columns=["plan_week", "product_id", "customer_id",
                                                     "assignment", "bought"])


def learn(dataset: str, plan_week: dt.date, seed: int,
          settings: Settings | None = None) -> UpliftModel:
    """The uplift model of a plan: fitted on the dataset's measured plan weeks before it."""
    targets = measured_targets(dataset, plan_week, settings)
    if targets.empty:
        return fit(targets, seed)
    features = snapshots(sorted(targets["plan_week"].unique()), settings)
    history = targets.merge(features, on=["plan_week", "customer_id"], how="inner")
    if len(history) < len(targets):
        log.warning("Uplift: %d of %d measured targets have no customer snapshot of their plan "
                    "week and are left out", len(targets) - len(history), len(targets))
    return fit(history, seed)
