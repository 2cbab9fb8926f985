"""Two-tower recommender: customer tower and product tower meet in a dot product.

Customer tower: id embedding + MLP(customer features, top-category embedding).
Product tower: id embedding + MLP(product features, category embedding), plus a per-product
bias (popularity). Training is a softmax over the whole catalogue for each observed purchase
(the catalogue is small enough to score in full, so no negatives need to be sampled).
The feature tables are buffers of the module, so a forward pass needs only customer indices.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Tower(nn.Module):
    """id embedding + MLP over features and a category embedding."""

    def __init__(self, n_ids: int, n_features: int, n_categories: int, dim: int, hidden: int):
        super().__init__()
        self.id_embedding = nn.Embedding(n_ids, dim)
        self.category_embedding = nn.Embedding(n_categories + 1, dim)
        self.mlp = nn.Sequential(
            nn.Linear(n_features + dim, hidden), nn.ReLU(), nn.Linear(hidden, dim)
        )
        nn.init.normal_(self.id_embedding.weight, std=0.01)
        nn.init.normal_(self.category_embedding.weight, std=0.1)

    def forward(self, ids: torch.Tensor, features: torch.Tensor, category: torch.Tensor):
        side = torch.cat([features, self.category_embedding(category)], dim=-1)
        return self.id_embedding(ids) + self.mlp(side)


def register_features(module: nn.Module, customer_features: torch.Tensor,
                      customer_category: torch.Tensor, product_features: torch.Tensor,
                      product_category: torch.Tensor) -> None:
    """The feature tables as buffers of `module` (so a forward pass needs only indices)."""
    module.register_buffer("customer_features", customer_features.float())
    module.register_buffer("customer_category", customer_category.long())
    module.register_buffer("product_features", product_features.float())
    module.register_buffer("product_category", product_category.long())


class TwoTower(nn.Module):
    """Scores every product for a batch of customers."""

    def __init__(
        self,
        customer_features: torch.Tensor,
        customer_category: torch.Tensor,
        product_features: torch.Tensor,
        product_category: torch.Tensor,
        n_categories: int,
        dim: int = 32,
        hidden: int = 64,
    ) -> None:
        super().__init__()
        register_features(self, customer_features, customer_category, product_features,
                          product_category)
        self.customer_tower = Tower(len(customer_features), customer_features.shape[1],
                                    n_categories, dim, hidden)
        self.product_tower = Tower(len(product_features), product_features.shape[1],
                                   n_categories, dim, hidden)
        self.product_bias = nn.Embedding(len(product_features), 1)
        nn.init.zeros_(self.product_bias.weight)

    def customer_vectors(self, customers: torch.Tensor) -> torch.Tensor:
        return self.customer_tower(
            customers, self.customer_features[customers], self.customer_category[customers]
        )

    def product_vectors(self) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.arange(len(self.product_features), device=self.product_features.device)
        vectors = self.product_tower(ids, self.product_features, self.product_category)
        return vectors, self.product_bias.weight.squeeze(-1)

    def forward(self, customers: torch.Tensor) -> torch.Tensor:
        """Logits [batch, n_products]."""
        vectors, bias = self.product_vectors()
        return self.customer_vectors(customers) @ vectors.T + bias


def softmax_loss(logits: torch.Tensor, products: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the purchased product against the whole catalogue."""
    return F.cross_entropy(logits, products)
