"""Recall@K and NDCG@K on the holdout weeks, per customer, with bootstrap confidence intervals.

Evaluated over customers with at least one holdout purchase; relevant items are the distinct
products they bought in the holdout weeks; nothing is excluded (repeat purchases count).
Recall@K = hits / relevant; NDCG@K uses binary gains and the ideal ranking of min(K, relevant).
A model's metric is the mean over those customers; its 95% interval is the percentile
bootstrap over customers (BOOTSTRAP_RESAMPLES resamples drawn with a fixed seed, the same
resamples for every model of a run, so the intervals of two models are comparable).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BOOTSTRAP_RESAMPLES = 1000
CONFIDENCE = 0.95
CI_METHOD = (f"{CONFIDENCE:.0%} percentile bootstrap over holdout customers, "
             f"{BOOTSTRAP_RESAMPLES} seeded resamples shared by every model")


def relevant_items(holdout: pd.DataFrame) -> dict[int, set[int]]:
    """Customer index -> distinct product indices bought in the holdout."""
    by_customer = holdout.groupby("customer_idx")["product_idx"]
    return {int(c): set(map(int, group)) for c, group in by_customer}


def per_customer_metrics(top_k: np.ndarray, customers: list[int],
                         relevant: dict[int, set[int]], k: int) -> dict[str, np.ndarray]:
    """Recall@k and NDCG@k of ranked lists `top_k[i]` for `customers[i]`, one value each."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    top_k = np.asarray(top_k)[:, :k]
    hits = np.array([[item in relevant[c] for item in row] for row, c in
                     zip(top_k, customers, strict=True)], dtype=float).reshape(len(customers), -1)
    wanted = np.array([len(relevant[c]) for c in customers], dtype=float)
    ideal = np.cumsum(discounts)[np.minimum(wanted, k).astype(int) - 1] if len(wanted) else wanted
    return {f"recall_at_{k}": hits.sum(axis=1) / np.maximum(wanted, 1),
            f"ndcg_at_{k}": (hits * discounts[: hits.shape[1]]).sum(axis=1) / np.where(
                ideal > 0, ideal, 1.0)}


def ranking_metrics(top_k: np.ndarray, customers: list[int], relevant: dict[int, set[int]],
                    k: int) -> dict[str, float]:
    """Mean recall@k and NDCG@k of ranked lists `top_k[i]` for `customers[i]`."""
    values = per_customer_metrics(top_k, customers, relevant, k)
    return {name: float(v.mean()) if len(v) else 0.0 for name, v in values.items()}


def bootstrap_interval(values: np.ndarray, seed: int, resamples: int = BOOTSTRAP_RESAMPLES,
                       confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The percentile bootstrap interval of the mean of `values` (resampled with `seed`)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, (1 << 22) // len(values))  # at most 4M indices drawn at once
    for start in range(0, resamples, chunk):
        stop = min(start + chunk, resamples)
        means[start:stop] = values[rng.integers(0, len(values), (stop - start, len(values)))
                                   ].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def summarize(per_customer: dict[str, np.ndarray], seed: int) -> dict[str, float]:
    """Each metric's mean and its interval: {name, name_ci_low, name_ci_high}."""
    summary: dict[str, float] = {}
    for name, values in per_customer.items():
        low, high = bootstrap_interval(values, seed)
        summary.update({name: float(np.mean(values)) if len(values) else 0.0,
                        f"{name}_ci_low": low, f"{name}_ci_high": high})
    return summary


def popularity_ranking(train: pd.DataFrame, n_products: int, k: int) -> np.ndarray:
    """The k products with most units bought in the training period (ties: lower index)."""
    units = np.zeros(n_products)
    np.add.at(units, train["product_idx"].to_numpy(), train["units"].to_numpy())
    return np.argsort(-units, kind="stable")[:k]
