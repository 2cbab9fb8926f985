"""Recall@K and NDCG@K on the holdout weeks, for the model and the popularity baseline.

Evaluated over customers with at least one holdout purchase; relevant items are the distinct
products they bought in the holdout weeks; nothing is excluded (repeat purchases count).
Recall@K = hits / relevant; NDCG@K uses binary gains and the ideal ranking of min(K, relevant).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def relevant_items(holdout: pd.DataFrame) -> dict[int, set[int]]:
    """Customer index -> distinct product indices bought in the holdout."""
    by_customer = holdout.groupby("customer_idx")["product_idx"]
    return {int(c): set(map(int, group)) for c, group in by_customer}


def ranking_metrics(top_k: np.ndarray, customers: list[int], relevant: dict[int, set[int]],
                    k: int) -> dict[str, float]:
    """Mean recall@k and NDCG@k of ranked lists `top_k[i]` for `customers[i]`."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    recalls, ndcgs = [], []
    for row, customer in zip(top_k, customers, strict=True):
        wanted = relevant[customer]
        hits = np.array([item in wanted for item in row[:k]], dtype=float)
        recalls.append(hits.sum() / len(wanted))
        ideal = discounts[: min(k, len(wanted))].sum()
        ndcgs.append(float((hits * discounts[: len(hits)]).sum() / ideal))
    return {f"recall_at_{k}": float(np.mean(recalls)) if recalls else 0.0,
            f"ndcg_at_{k}": float(np.mean(ndcgs)) if ndcgs else 0.0}


def popularity_ranking(train: pd.DataFrame, n_products: int, k: int) -> np.ndarray:
    """The k products with most units bought in the training period (ties: lower index)."""
    units = np.zeros(n_products)
    np.add.at(units, train["product_idx"].to_numpy(), train["units"].to_numpy())
    return np.argsort(-units, kind="stable")[:k]
