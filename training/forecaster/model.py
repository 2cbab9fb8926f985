"""A global quantile demand model whose demand is non-decreasing in discount depth by design.

On the log1p(units) scale the median is

    f(features, product, category) + softplus(e_category + e_product) * (-log(1 - depth))
                                   + softplus(p_category) * is_promoted

The price term is the constant-elasticity demand curve (1 - depth) ** (-elasticity) with a
non-negative elasticity, plus a non-negative promotion bump; no other input sees the discount,
so raising the discount (and with it the promotion flag) can only raise every quantile.
P10 and P90 sit below and above the median by softplus gaps, so quantiles never cross.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

QUANTILES = (0.1, 0.5, 0.9)


class DemandForecaster(nn.Module):
    """Predicts P10/P50/P90 of log1p(weekly units)."""

    def __init__(
        self,
        n_features: int,
        n_products: int,
        n_categories: int,
        embedding_dim: int = 8,
        hidden_dim: int = 64,
        dropout: float = 0.0,
        initial_level: float = 0.0,
    ) -> None:
        super().__init__()
        self.product_embedding = nn.Embedding(n_products + 1, embedding_dim)
        self.category_embedding = nn.Embedding(n_categories + 1, embedding_dim)
        self.body = nn.Sequential(
            nn.Linear(n_features + 2 * embedding_dim, hidden_dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, 3),
        )
        # softplus(raw) = 1.0: start from unit elasticity, a neutral prior for retail demand
        unit = math.log(math.e - 1.0)
        self.category_elasticity = nn.Parameter(torch.full((n_categories + 1,), unit))
        self.product_elasticity = nn.Embedding(n_products + 1, 1)
        self.category_promo = nn.Parameter(torch.full((n_categories + 1,), -2.0))
        nn.init.normal_(self.product_embedding.weight, std=0.05)
        nn.init.normal_(self.category_embedding.weight, std=0.05)
        nn.init.zeros_(self.product_elasticity.weight)
        with torch.no_grad():
            last = self.body[-1]
            last.bias.copy_(torch.tensor([initial_level, 0.0, 0.0]))

    def elasticity(self, product: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        """Non-negative price elasticity of each row."""
        raw = self.category_elasticity[category] + self.product_elasticity(product).squeeze(-1)
        return F.softplus(raw)

    def price_effect(
        self, product: torch.Tensor, category: torch.Tensor,
        discount: torch.Tensor, promoted: torch.Tensor,
    ) -> torch.Tensor:
        """Log-demand lift of the discount; non-decreasing in `discount` and in `promoted`."""
        depth = discount.clamp(0.0, 0.95)
        lift = self.elasticity(product, category) * (-torch.log1p(-depth))
        return lift + F.softplus(self.category_promo[category]) * promoted

    def forward(
        self, features: torch.Tensor, product: torch.Tensor, category: torch.Tensor,
        discount: torch.Tensor, promoted: torch.Tensor,
    ) -> torch.Tensor:
        """Quantiles [batch, 3] (P10, P50, P90) of log1p(units), ordered."""
        inputs = torch.cat(
            [features, self.product_embedding(product), self.category_embedding(category)], dim=-1
        )
        out = self.body(inputs)
        median = out[:, 0] + self.price_effect(product, category, discount, promoted)
        low = median - F.softplus(out[:, 1])
        high = median + F.softplus(out[:, 2])
        return torch.stack([low, median, high], dim=-1)


def pinball_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean pinball (quantile) loss of [batch, 3] predictions at QUANTILES."""
    taus = torch.tensor(QUANTILES, dtype=predicted.dtype, device=predicted.device)
    error = target.unsqueeze(-1) - predicted
    return torch.maximum(taus * error, (taus - 1) * error).mean()


def to_units(log_quantiles: torch.Tensor) -> torch.Tensor:
    """Units from log1p quantiles (monotone, so order and monotonicity carry over)."""
    return torch.expm1(log_quantiles).clamp(min=0.0)
