"""Baselines of the recommender, fitted on the same training weeks as the learned models.

All work on the training customer x product matrix X (1 where the customer bought the product
in a training week; scipy.sparse) and score a customer's products as x_u W for an item-item
matrix W:

- item-kNN: W = the cosine similarity of X's columns with a zero diagonal, each row keeping only
  its ITEM_KNN_NEIGHBOURS largest entries (a product votes for its nearest neighbours).
- EASE (Steck, 2019): W = B = I - P / diag(P) column-wise, P = (X^T X + lambda I)^-1, so
  diag(B) = 0. lambda is chosen from EASE_LAMBDAS by NDCG@10 on an inner split: the last
  holdout-length weeks of the training weeks are scored by a fit on the weeks before them;
  B is then refitted on every training week.

Both hold a dense products x products matrix (float64: 8 x n^2 bytes, 20 GB at the xl
market's 50,000 products, 68 GB at The Complete Journey's 92,000), and the fit holds a few such
matrices at once (the Gram matrix, its inverse or the similarities, their neighbour cut). So
they keep only the `max_items` most bought products of the training weeks (MAX_ITEMS = 3,000 by
default: 72 MB a matrix, under 0.5 GB for a fit; logged when it binds). A customer's scores are
computed over the kept products only (customers x kept at a time); the other products rank
after them by popularity, so with at least k kept they are never in a top k. Ties, and customers
without a training purchase, fall back to popularity. With `max_items` at least the number of
products nothing is left out and the models are the uncapped ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from training.recommender import evaluate

log = logging.getLogger(__name__)

ITEM_KNN_NEIGHBOURS = 50
EASE_LAMBDAS = (10.0, 50.0, 200.0, 1000.0, 5000.0)
MAX_ITEMS = 3000
#: weight of popularity in the scores: breaks ties only
_TIE_WEIGHT = 1e-9
#: scores held at once while ranking (customers x products)
_SCORE_CELLS = 1 << 22


def purchase_matrix(interactions: pd.DataFrame, n_customers: int, n_products: int
                    ) -> sp.csr_matrix:
    """[customers, products] 1 where the customer bought the product in `interactions`."""
    ones = np.ones(len(interactions), dtype=np.float64)
    matrix = sp.csr_matrix(
        (ones, (interactions["customer_idx"].to_numpy(), interactions["product_idx"].to_numpy())),
        shape=(n_customers, n_products),
    )
    matrix.data[:] = 1.0  # duplicates summed: back to 1
    return matrix


def popularity(interactions: pd.DataFrame, n_products: int) -> np.ndarray:
    """Units bought per product in `interactions`."""
    units = np.zeros(n_products)
    np.add.at(units, interactions["product_idx"].to_numpy(), interactions["units"].to_numpy())
    return units


def kept_items(units: np.ndarray, max_items: int | None = None) -> np.ndarray:
    """The indices of the `max_items` (default MAX_ITEMS) most bought products, ascending (all
    when there are fewer; equal units keep the lower index)."""
    cap = MAX_ITEMS if max_items is None else max_items
    if cap < 1:
        raise ValueError(f"the baselines must keep at least one product, not {cap}.")
    if len(units) <= cap:
        return np.arange(len(units))
    items = np.sort(np.argsort(-units, kind="stable")[:cap])
    log.info("item-item baselines keep the %d most bought of %d products (%.1f%% of the units; "
             "dense matrices of %.0f MB instead of %.0f MB); the others rank by popularity",
             cap, len(units), 100 * units[items].sum() / max(float(units.sum()), 1e-12),
             8 * cap**2 / 1e6, 8 * len(units) ** 2 / 1e6)
    return items


def top_k_columns(scores: np.ndarray, k: int) -> np.ndarray:
    """The columns of the `k` best scores of each row, best first, equal scores by the lower
    column: np.argsort(-scores, kind="stable")[:, :k] without sorting whole rows (a partition
    finds each row's k-th best score; only the k kept are sorted)."""
    n = scores.shape[1]
    if k >= n:
        return np.argsort(-scores, axis=1, kind="stable")
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1:k]  # each row's k-th best score
    above, tied = scores > kth, scores == kth
    room = k - above.sum(axis=1, keepdims=True)  # tied columns kept: the lowest ones
    if (tied.sum(axis=1, keepdims=True) > room).any():
        tied &= np.cumsum(tied, axis=1) <= room
    keep = above | tied
    columns = np.nonzero(keep)[1].reshape(-1, k)  # ascending within each row
    order = np.argsort(-np.take_along_axis(scores, columns, axis=1), axis=1, kind="stable")
    return np.take_along_axis(columns, order, axis=1)


@dataclass
class ItemModel:
    """An item-item matrix over the kept products; scores = x_u W, popularity breaking ties."""

    items: np.ndarray  # kept product indices
    weights: np.ndarray  # [kept, kept]
    units: np.ndarray  # training popularity of every product

    def top_k(self, matrix: sp.csr_matrix, customers: list[int], k: int) -> np.ndarray:
        """[customers, k] product indices ranked for each customer by their row of `matrix`:
        the kept products by score (ties: the more popular, then the lower index), then the
        others by popularity."""
        tie = _TIE_WEIGHT * self.units[self.items] / max(float(self.units.max()), 1.0)
        others = np.setdiff1d(np.arange(len(self.units)), self.items)
        others = others[np.argsort(-self.units[others], kind="stable")]
        chunk = max(1, _SCORE_CELLS // max(1, len(self.items)))
        rows = []
        for start in range(0, len(customers), chunk):
            block = matrix[customers[start:start + chunk]][:, self.items]
            scores = np.asarray(block @ self.weights) + tie
            best = self.items[top_k_columns(scores, k)]
            if best.shape[1] < k and len(others):  # fewer kept products than k
                best = np.hstack([best, np.tile(others[:k - best.shape[1]], (len(best), 1))])
            rows.append(best)
        return np.concatenate(rows) if rows else np.zeros((0, k), dtype=np.int64)


def item_knn(matrix: sp.csr_matrix, units: np.ndarray, neighbours: int = ITEM_KNN_NEIGHBOURS,
             max_items: int | None = None) -> ItemModel:
    """Cosine item-item similarity over the `max_items` most bought products, each keeping its
    `neighbours` most similar."""
    items = kept_items(units, max_items)
    x = matrix[:, items]
    gram = np.asarray((x.T @ x).todense(), dtype=np.float64)
    norms = np.sqrt(np.diag(gram))
    norms[norms == 0] = 1.0
    similarity = gram / norms[:, None] / norms[None, :]
    np.fill_diagonal(similarity, 0.0)
    if neighbours < len(items):
        cut = np.partition(similarity, -neighbours, axis=1)[:, -neighbours][:, None]
        # ties at the cut are kept: at most a few extra neighbours
        similarity = np.where(similarity >= cut, similarity, 0.0)
    return ItemModel(items, similarity, units)


def ease(matrix: sp.csr_matrix, units: np.ndarray, lam: float,
         max_items: int | None = None) -> ItemModel:
    """EASE: B = I - P / diag(P), P = (X^T X + lambda I)^-1, over the `max_items` most bought
    products."""
    items = kept_items(units, max_items)
    x = matrix[:, items]
    gram = np.asarray((x.T @ x).todense(), dtype=np.float64)
    gram[np.diag_indices_from(gram)] += lam
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return ItemModel(items, b, units)


def choose_ease_lambda(train: pd.DataFrame, n_customers: int, n_products: int,
                       validation_weeks: int, k: int, grid: tuple[float, ...] = EASE_LAMBDAS,
                       max_items: int | None = None) -> tuple[float, dict[str, float]]:
    """The lambda of `grid` with the best NDCG@k on the last `validation_weeks` training weeks
    (fitted on the weeks before them); the validation NDCG of every lambda. With too few weeks
    to split, the middle of the grid."""
    weeks = np.sort(train["week_start"].unique())
    if len(weeks) <= validation_weeks:
        return grid[len(grid) // 2], {}
    cut = weeks[-validation_weeks]
    fit_rows, validation = train[train["week_start"] < cut], train[train["week_start"] >= cut]
    relevant = evaluate.relevant_items(validation)
    customers = sorted(relevant)
    matrix = purchase_matrix(fit_rows, n_customers, n_products)
    units = popularity(fit_rows, n_products)
    scores: dict[str, float] = {}
    for lam in grid:
        top = ease(matrix, units, lam, max_items).top_k(matrix, customers, k)
        scores[f"{lam:g}"] = evaluate.ranking_metrics(top, customers, relevant, k)[f"ndcg_at_{k}"]
    best = max(grid, key=lambda lam: (scores[f"{lam:g}"], -lam))  # ties: the smaller penalty
    log.info("EASE lambda %g (validation NDCG@%d by lambda: %s)", best, k, scores)
    return best, scores
