"""A small SASRec-style sequence recommender: the next purchase from the recent ones.

A customer's history is their distinct products per week, ordered by week and, within a week,
by a fixed hash of (customer, product) (a basket has no order; the hash is deterministic and
tells the model nothing). The model reads a customer token (an MLP of the customer's Feast
features and top-category embedding) followed by the last `max_length` purchases, each an item
vector (id embedding + an MLP of the product's Feast features and category embedding) plus a
position embedding, through a causal `nn.TransformerEncoder` (pre-norm). The output at each
position scores the next purchase against every product of the catalogue: the dot product with
the same item vectors (tied input and output embeddings) plus a per-product bias, trained with
the catalogue softmax (the sampled softmax of `model.NegativeSampler` on large catalogues).

Training examples are windows of `max_length + 1` consecutive purchases of a customer (cut from
the most recent backwards, so every purchase is a target once). For ranking, the customer's
vector is the output after their last `max_length` purchases, held as a buffer with the
features; a customer without purchases gets the output at the customer token alone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from training.recommender.model import NegativeSampler, Tower, register_features, unwrap

#: Multipliers of the within-week order hash (Knuth's multiplicative hashing).
_HASH_PRODUCT = np.uint64(2654435761)
_HASH_CUSTOMER = np.uint64(40503)


def ordered_purchases(interactions: pd.DataFrame) -> pd.DataFrame:
    """customer_idx, product_idx rows in history order: customer, week, the within-week hash."""
    customers = interactions["customer_idx"].to_numpy(dtype=np.int64)
    products = interactions["product_idx"].to_numpy(dtype=np.int64)
    within_week = (products.astype(np.uint64) * _HASH_PRODUCT
                   + customers.astype(np.uint64) * _HASH_CUSTOMER) % np.uint64(1 << 32)
    weeks = interactions["week_start"].to_numpy()
    order = np.lexsort((products, within_week, weeks, customers))
    return pd.DataFrame({"customer_idx": customers[order], "product_idx": products[order]})


def _positions(customers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's position in its customer's history and that history's length."""
    starts = np.flatnonzero(np.r_[True, customers[1:] != customers[:-1]])
    lengths = np.diff(np.r_[starts, len(customers)])
    position = np.arange(len(customers)) - np.repeat(starts, lengths)
    return position, np.repeat(lengths, lengths)


def histories(interactions: pd.DataFrame, n_customers: int, pad: int,
              max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """([customers, max_length] last purchases, left-aligned, `pad` after; [customers] count)."""
    rows = ordered_purchases(interactions)
    customers = rows["customer_idx"].to_numpy()
    position, length = _positions(customers)
    keep = position >= length - max_length
    slot = position[keep] - np.maximum(length[keep] - max_length, 0)
    items = np.full((n_customers, max_length), pad, dtype=np.int64)
    items[customers[keep], slot] = rows["product_idx"].to_numpy()[keep]
    counts = np.bincount(customers[keep], minlength=n_customers)
    return torch.from_numpy(items), torch.from_numpy(counts.astype(np.int64))


def training_windows(interactions: pd.DataFrame, pad: int,
                     max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """([windows] customer, [windows, max_length + 1] purchases, left-aligned, `pad` after).

    Windows are cut from each customer's most recent purchase backwards; the oldest may be
    shorter. In a window, purchase j is predicted from the customer token and purchases < j.
    """
    width = max_length + 1
    rows = ordered_purchases(interactions)
    customers = rows["customer_idx"].to_numpy()
    if len(customers) == 0:
        return torch.zeros(0, dtype=torch.long), torch.zeros((0, width), dtype=torch.long)
    position, length = _positions(customers)
    from_end = length - 1 - position
    window_of_customer = from_end // width
    start = np.maximum(length - (window_of_customer + 1) * width, 0)
    slot = position - start
    # one id per (customer, window): rows are sorted by customer, windows descend within one
    key = customers.astype(np.int64) * (int(length.max()) // width + 1) + window_of_customer
    unique, window = np.unique(key, return_inverse=True)
    items = np.full((len(unique), width), pad, dtype=np.int64)
    items[window, slot] = rows["product_idx"].to_numpy()
    owners = np.zeros(len(unique), dtype=np.int64)
    owners[window] = customers
    return torch.from_numpy(owners), torch.from_numpy(items)


class SequenceRecommender(nn.Module):
    """Causal transformer over a customer token and their recent purchases."""

    def __init__(
        self,
        customer_features: torch.Tensor,
        customer_category: torch.Tensor,
        product_features: torch.Tensor,
        product_category: torch.Tensor,
        n_categories: int,
        histories: torch.Tensor,
        history_lengths: torch.Tensor,
        dim: int = 48,
        heads: int = 2,
        layers: int = 2,
        dropout: float = 0.0,
        hidden: int = 64,
        sampler: NegativeSampler | None = None,
    ) -> None:
        super().__init__()
        register_features(self, customer_features, customer_category, product_features,
                          product_category)
        self.sampler = sampler
        self.register_buffer("histories", histories.long())
        self.register_buffer("history_lengths", history_lengths.long())
        self.n_products = len(product_features)
        self.max_length = histories.shape[1]
        self.items = Tower(self.n_products, product_features.shape[1], n_categories, dim, hidden)
        self.customer_category_embedding = nn.Embedding(n_categories + 1, dim)
        self.customer_mlp = nn.Sequential(
            nn.Linear(customer_features.shape[1] + dim, hidden), nn.ReLU(), nn.Linear(hidden, dim)
        )
        self.positions = nn.Embedding(self.max_length + 1, dim)
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=2 * dim, dropout=dropout, activation="gelu",
            batch_first=True, norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.product_bias = nn.Embedding(self.n_products, 1)
        nn.init.normal_(self.positions.weight, std=0.02)
        nn.init.normal_(self.customer_category_embedding.weight, std=0.1)
        nn.init.zeros_(self.product_bias.weight)

    def product_vectors(self, ids: torch.Tensor | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """([products, dim] item vectors, [products] bias) of `ids` (default: the catalogue):
        the input and output embeddings."""
        if ids is None:
            ids = torch.arange(self.n_products, device=self.product_features.device)
            vectors = self.items(ids, self.product_features, self.product_category)
            return vectors, self.product_bias.weight.squeeze(-1)
        vectors = self.items(ids, self.product_features[ids], self.product_category[ids])
        return vectors, self.product_bias(ids).squeeze(-1)

    def _encode(self, customers: torch.Tensor, purchases: torch.Tensor,
                item_vectors: torch.Tensor) -> torch.Tensor:
        """[batch, length + 1, dim] outputs for the customer token and `purchases`, rows of
        `item_vectors` (pad: any index >= its length; the mask is causal, so pads after a
        position never reach it)."""
        side = torch.cat([self.customer_features[customers],
                          self.customer_category_embedding(self.customer_category[customers])],
                         dim=-1)
        padded = torch.cat([item_vectors, item_vectors.new_zeros(1, item_vectors.shape[1])])
        tokens = torch.cat([self.customer_mlp(side)[:, None, :],
                            padded[purchases.clamp(max=len(item_vectors))]], dim=1)
        length = tokens.shape[1]
        tokens = self.dropout(tokens + self.positions.weight[:length])
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=tokens.device,
                                                              dtype=tokens.dtype)
        return self.norm(self.encoder(tokens, mask=mask, is_causal=True))

    def forward(self, customers: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
        """Logits [targets, products] of every purchase of `windows` [batch, max_length + 1]
        (pads excluded), each from the customer token and the window's earlier purchases; with
        a sampler, their sampled softmax loss (in the forward pass, so DDP sees every
        gradient)."""
        wanted = windows < self.n_products
        if self.sampler is None:
            item_vectors, bias = self.product_vectors()
            hidden = self._encode(customers, windows[:, :-1], item_vectors)
            return hidden[wanted] @ item_vectors.T + bias
        targets, negatives = windows[wanted], self.sampler.draw()
        ids = torch.unique(torch.cat([targets, negatives]))  # every purchase is a target
        row = torch.full((self.n_products + 1,), len(ids), device=ids.device)
        row[ids] = torch.arange(len(ids), device=ids.device)
        vectors, bias = self.product_vectors(ids)
        hidden = self._encode(customers, row[windows[:, :-1].clamp(max=self.n_products)],
                              vectors)
        target, negative = row[targets], row[negatives]
        return self.sampler.loss(hidden[wanted], targets, negatives, vectors[target],
                                 bias[target], vectors[negative], bias[negative])

    def customer_vectors(self, customers: torch.Tensor) -> torch.Tensor:
        """[batch, dim]: the output after each customer's last purchases (held as a buffer)."""
        item_vectors, _ = self.product_vectors()
        hidden = self._encode(customers, self.histories[customers], item_vectors)
        last = self.history_lengths[customers]
        return hidden[torch.arange(len(customers), device=hidden.device), last]


def sequence_loss(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Catalogue (or, with a sampler, sampled) cross-entropy of every purchase of the batch's
    windows."""
    customers, windows = batch
    module = unwrap(model)
    if module.sampler is not None:
        return model(customers, windows)
    targets = windows[windows < module.n_products]
    return F.cross_entropy(model(customers, windows).float(), targets)
