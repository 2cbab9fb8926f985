"""Two-tower recommender: customer tower and product tower meet in a dot product.

Customer tower: id embedding + MLP(customer features, top-category embedding).
Product tower: id embedding + MLP(product features, category embedding), plus a per-product
bias (popularity). Training is a softmax over the whole catalogue for each observed purchase
while the catalogue is small enough to score in full; above that (`NegativeSampler`, both
learned models) a sampled softmax: each step scores its targets against a few thousand
products drawn from the purchase frequencies, with the logQ correction (each logit minus the
log of its expected draws) so the estimate stays that of the full softmax, and a draw of the
target itself removed. Ranking always scores the whole catalogue.
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


class NegativeSampler(nn.Module):
    """Draws a step's shared negatives from q (purchase counts ** 0.75, every product at least
    one count) and holds log q; its draws use torch's generator, seeded by the training."""

    def __init__(self, counts: torch.Tensor, negatives: int) -> None:
        super().__init__()
        weights = (counts.double().clamp(min=0) + 1.0) ** 0.75
        self.register_buffer("q", (weights / weights.sum()).float())
        self.negatives = negatives

    def draw(self) -> torch.Tensor:
        return torch.multinomial(self.q, self.negatives, replacement=True)

    def loss(self, hidden: torch.Tensor, targets: torch.Tensor, negatives: torch.Tensor,
             target_vectors: torch.Tensor, target_bias: torch.Tensor,
             negative_vectors: torch.Tensor, negative_bias: torch.Tensor) -> torch.Tensor:
        """Sampled-softmax cross-entropy of `targets` [n] from `hidden` [n, dim] against the
        shared `negatives` [s], logQ-corrected; draws equal to the row's target are masked."""
        expected = torch.log(self.q * self.negatives)
        positive = ((hidden * target_vectors).sum(-1) + target_bias - expected[targets]).float()
        negative = torch.addmm(negative_bias - expected[negatives], hidden,
                               negative_vectors.T).float()  # [n, s] in one pass
        negative.masked_fill_(negatives[None, :] == targets[:, None], float("-inf"))
        # -log softmax of the positive among itself and the draws
        return (torch.logaddexp(positive, torch.logsumexp(negative, dim=1)) - positive).mean()


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
        sampler: NegativeSampler | None = None,
    ) -> None:
        super().__init__()
        register_features(self, customer_features, customer_category, product_features,
                          product_category)
        self.sampler = sampler
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

    def product_vectors(self, ids: torch.Tensor | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """([products, dim] vectors, [products] bias) of `ids` (default: the catalogue)."""
        if ids is None:
            ids = torch.arange(len(self.product_features), device=self.product_features.device)
            vectors = self.product_tower(ids, self.product_features, self.product_category)
            return vectors, self.product_bias.weight.squeeze(-1)
        vectors = self.product_tower(ids, self.product_features[ids], self.product_category[ids])
        return vectors, self.product_bias(ids).squeeze(-1)

    def forward(self, customers: torch.Tensor,
                products: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [batch, n_products]; with a sampler and the purchased `products`, the sampled
        softmax loss (computed in the forward pass, so DDP sees every gradient)."""
        if self.sampler is None or products is None:
            vectors, bias = self.product_vectors()
            return self.customer_vectors(customers) @ vectors.T + bias
        negatives = self.sampler.draw()
        ids, where = torch.unique(torch.cat([products, negatives]), return_inverse=True)
        vectors, bias = self.product_vectors(ids)
        target, negative = where[:len(products)], where[len(products):]
        return self.sampler.loss(self.customer_vectors(customers), products, negatives,
                                 vectors[target], bias[target], vectors[negative],
                                 bias[negative])


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if hasattr(model, "module") else model


def two_tower_loss(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Cross-entropy of each purchased product against the whole catalogue, or the sampled
    softmax when the model has a sampler."""
    customers, products = batch
    if unwrap(model).sampler is None:
        return F.cross_entropy(model(customers).float(), products)
    return model(customers, products)
