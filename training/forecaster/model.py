"""A global quantile demand model, monotone in the planned discount by construction.

The network body gives the product's level without promotion on the log1p(units) scale,
f(features, p, c). The promotion and calendar terms multiply the units (not units + 1), so a
lift means the same for a product selling 1 unit a week and one selling 100:

    P50 = log1p(expm1(f+) * exp(E) + r * contacts) + min(f, 0)        f+ = max(f, 0)

    E = a_p * sum_k w_ck * b_k(depth)                       price response (own lift)
        + sum_t softplus(v_t + v_ct) * promo_type_t         display / mailer / coupon bumps
        - kappa_c * sum_l omega_l * expm1(lift_l)           post-promotion dip, l = 1..3
        - gamma_c * category_promo_pressure                 cannibalization

- Price response: the basis is b_0(d) = d and b_k(d) = s_k * (1 - exp(-d / s_k)) for the scales
  s_k in PRICE_SCALES; every b_k is 0 at d = 0, increasing and concave, so a deep discount can
  saturate (the lift flattens) as much as the data says. w_ck = softplus(.) >= 0 per category
  and basis; a_p = 2 * sigmoid(.) in (0, 2) is the product's non-negative scale of its
  category's curve. This is `own_lift(p, c, depth)`: 0 at depth 0 (no step: a plain price cut
  of 1% does about 1% of what 1% more does, as in the data; the visibility of a promotion is
  in the type bumps) and non-decreasing in depth.
- The type bumps are >= 0 (a global value per type plus a category offset inside the softplus);
  in the plan week the flags are 0 (plain price cuts).
- Dip: lift_l = own_lift(p, c, discount_depth_lag_l) is the lift of the product's own promotion
  l weeks before (taken as a constant of the current curve: no gradient flows through it), so
  expm1(lift_l) is that week's extra units per unit of level, 0 without a promotion and
  non-decreasing in its depth. kappa_c = softplus(.) >= 0 per category, omega = softmax(.)
  (non-negative, summing to 1 over the three lags): kappa_c is about the share of a
  promotion's extra units that the next three weeks lose (the stockpiled units).
- Cannibalization: gamma_c = softplus(.) >= 0 per category; the pressure is the sum over the
  other promoted products of the category of their category-units share x depth.
- Contacts: r = softplus(.) >= 0 extra units per customer contacted about the product in the
  week (the campaign's send log, `contacted_customers`). A contact adds units, it does not
  multiply them: a targeted customer buys one more unit or not, whatever the product's level.
  Without it, the units that contacts drive in the measured plan weeks would read as a deeper
  price response. r is learned from the weeks that had contacts only (0 elsewhere); without
  any in the fitting weeks it is set to 0 (`forget_contacts`).

No other input sees the planned discount (nor the contacts), so raising it can only raise every quantile. P10 and
P90 sit below and above the median by softplus gaps of the body, so quantiles never cross and
keep the median's monotonicity.

The body's level inputs (units 1 and 2 weeks before, the 4- and 12-week means) are deflated by
lift_1..3 (`level_index`): a promotion last week inflates last week's units, and without this the
model would read that as a higher level and learn a too-deep dip to make up for it.

The loss is the pinball loss of P10/P50/P90 on log1p(units), censored on stocked-out weeks
(their units are a lower bound of demand): there only predicting below the record costs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

QUANTILES = (0.1, 0.5, 0.9)
#: saturation scales of the concave price basis (besides the linear one)
PRICE_SCALES = (0.05, 0.15, 0.4)
PROMO_TYPES = ("display", "mailer", "coupon")
DIP_LAGS = 3


def _inverse_softplus(value: float) -> float:
    return math.log(math.expm1(value))


def price_basis(depth: torch.Tensor, scales: torch.Tensor | None = None) -> torch.Tensor:
    """[..., 1 + len(PRICE_SCALES)] monotone concave functions of depth [...], 0 at depth 0."""
    d = depth.clamp(0.0, 0.95).unsqueeze(-1)
    if scales is None:
        scales = torch.tensor(PRICE_SCALES, dtype=d.dtype, device=d.device)
    return torch.cat([d, -scales * torch.expm1(-d / scales)], dim=-1)


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
        level_index: Sequence[int] | None = None,
        level_scale: Sequence[float] | None = None,
        level_window: Sequence[Sequence[float]] | None = None,
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
        n_basis = 1 + len(PRICE_SCALES)
        # w = 0.4 per basis: a slope of 1.6 at depth 0, about unit elasticity for small cuts
        self.category_price = nn.Parameter(
            torch.full((n_categories + 1, n_basis), _inverse_softplus(0.4))
        )
        self.product_price = nn.Embedding(n_products + 1, 1)  # 0: the category's curve
        self.type_bump = nn.Parameter(torch.full((len(PROMO_TYPES),), -2.0))
        self.category_type_bump = nn.Parameter(torch.zeros(n_categories + 1, len(PROMO_TYPES)))
        self.category_dip = nn.Parameter(torch.full((n_categories + 1,), -3.0))
        self.dip_lag_logits = nn.Parameter(torch.zeros(DIP_LAGS))
        self.category_cannibalization = nn.Parameter(torch.full((n_categories + 1,), -2.0))
        self.contact_rate_logit = nn.Parameter(torch.tensor(-3.0))  # r = softplus: 0.05
        nn.init.normal_(self.product_embedding.weight, std=0.05)
        nn.init.normal_(self.category_embedding.weight, std=0.05)
        nn.init.zeros_(self.product_price.weight)
        with torch.no_grad():
            last = self.body[-1]
            last.bias.copy_(torch.tensor([initial_level, 0.0, 0.0]))
        self.register_buffer("price_scales", torch.tensor(PRICE_SCALES), persistent=False)
        self.deflates = level_index is not None and len(level_index) > 0
        if self.deflates:
            placement = torch.zeros(len(level_index), n_features)
            placement[torch.arange(len(level_index)), torch.tensor(list(level_index))] = 1.0
            self.register_buffer("level_placement", placement)
            self.register_buffer("level_scale",
                                 torch.tensor(list(level_scale), dtype=torch.float32))
            self.register_buffer("level_window",
                                 torch.tensor([list(w) for w in level_window], dtype=torch.float32))

    #: parameters of the promotion terms (optimized with their own learning rate)
    EFFECT_PARAMETERS = ("category_price", "product_price.weight", "type_bump",
                         "category_type_bump", "category_dip", "dip_lag_logits",
                         "category_cannibalization", "contact_rate_logit")

    def parameter_groups(self, lr: float, weight_decay: float, effect_lr_scale: float
                         ) -> list[dict]:
        """Optimizer groups: the body (and embeddings) at `lr` with weight decay, the few
        promotion-term parameters at `effect_lr_scale` x `lr` without it (they are learned from
        the promoted rows only, a minority, and must not lag behind the body)."""
        named = dict(self.named_parameters())
        effects = [named[name] for name in self.EFFECT_PARAMETERS]
        ids = {id(p) for p in effects}
        body = [p for p in self.parameters() if id(p) not in ids]
        return [{"params": body, "lr": lr, "weight_decay": weight_decay},
                {"params": effects, "lr": lr * effect_lr_scale, "weight_decay": 0.0}]

    # --- the promotion terms ------------------------------------------------------------------
    def price_weights(self, category: torch.Tensor) -> torch.Tensor:
        """[rows, basis] non-negative weights of the category's price curve."""
        return F.softplus(self.category_price[category])

    def product_factor(self, product: torch.Tensor) -> torch.Tensor:
        """Non-negative scale of the category's price curve for each product (1 when unseen)."""
        return 2.0 * torch.sigmoid(self.product_price(product).squeeze(-1))

    def own_lift(self, product: torch.Tensor, category: torch.Tensor, discount: torch.Tensor
                 ) -> torch.Tensor:
        """Log-demand lift of a plain price cut; 0 at depth 0, non-decreasing in `discount`."""
        return self._lifts(product, category, discount.unsqueeze(-1))[:, 0]

    def _lifts(self, product: torch.Tensor, category: torch.Tensor, depth: torch.Tensor
               ) -> torch.Tensor:
        """own_lift of [rows, n] depths at once."""
        basis = price_basis(depth, self.price_scales)  # [rows, n, basis]
        curve = (basis * self.price_weights(category).unsqueeze(1)).sum(dim=-1)
        return self.product_factor(product).unsqueeze(-1) * curve

    def type_bumps(self, category: torch.Tensor) -> torch.Tensor:
        """[rows, 3] non-negative log-demand bumps of display, mailer and coupon promotions."""
        return F.softplus(self.type_bump + self.category_type_bump[category])

    def dip_share(self, category: torch.Tensor) -> torch.Tensor:
        """kappa_c >= 0: about the share of a promotion's extra units the next weeks lose."""
        return F.softplus(self.category_dip[category])

    def dip_weights(self) -> torch.Tensor:
        """omega_l >= 0 over the lags 1..3, summing to 1."""
        return torch.softmax(self.dip_lag_logits, dim=0)

    def cannibalization_rate(self, category: torch.Tensor) -> torch.Tensor:
        """gamma_c >= 0: log-demand lost per unit of category promotion pressure."""
        return F.softplus(self.category_cannibalization[category])

    def past_lift(
        self, product: torch.Tensor, category: torch.Tensor, lag_depth: torch.Tensor
    ) -> torch.Tensor:
        """[rows, 3] own lift of the product's promotions 1-3 weeks before (no gradient)."""
        with torch.no_grad():
            return self._lifts(product, category, lag_depth)

    def dip_effect(self, category: torch.Tensor, past_lift: torch.Tensor) -> torch.Tensor:
        """Log-demand lost to the product's promotions of the last 3 weeks (>= 0)."""
        extra = torch.expm1(past_lift)
        return self.dip_share(category) * (extra * self.dip_weights()).sum(dim=-1)

    def contact_rate(self) -> torch.Tensor:
        """r >= 0: extra units per customer contacted about the product in the week."""
        return F.softplus(self.contact_rate_logit)

    @torch.no_grad()
    def forget_contacts(self) -> None:
        """r = 0: a contact term that was never fitted (no contact in the data) counts nothing."""
        self.contact_rate_logit.fill_(-50.0)

    # --- the whole model ----------------------------------------------------------------------
    def forward(
        self, features: torch.Tensor, product: torch.Tensor, category: torch.Tensor,
        discount: torch.Tensor, promo_type: torch.Tensor | None = None, lag_depth: torch.Tensor | None = None,
        pressure: torch.Tensor | None = None, contacts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Quantiles [batch, 3] (P10, P50, P90) of log1p(units), ordered."""
        rows = features.shape[0]
        if promo_type is None:
            promo_type = features.new_zeros(rows, len(PROMO_TYPES))
        if lag_depth is None:
            lag_depth = features.new_zeros(rows, DIP_LAGS)
        if pressure is None:
            pressure = features.new_zeros(rows)
        # the week's own lift and those of the last 3 weeks' promotions in one pass
        lifts = self._lifts(product, category, torch.cat([discount.unsqueeze(-1), lag_depth], -1))
        own, past = lifts[:, 0], lifts[:, 1:].detach()
        if self.deflates:
            deflation = torch.log1p(torch.expm1(past) @ self.level_window.T) * self.level_scale
            features = features - deflation @ self.level_placement
        inputs = torch.cat(
            [features, self.product_embedding(product), self.category_embedding(category)], dim=-1
        )
        out = self.body(inputs).float()  # float32 also under bfloat16 autocast
        effect = (own
                  + (self.type_bumps(category) * promo_type).sum(dim=-1)
                  - self.dip_effect(category, past)
                  - self.cannibalization_rate(category) * pressure)
        level = out[:, 0]
        units = torch.expm1(level.clamp(min=0.0)) * torch.exp(effect)
        if contacts is not None:
            units = units + self.contact_rate() * contacts.clamp(min=0.0)
        median = torch.log1p(units) + level.clamp(max=0.0)
        low = median - F.softplus(out[:, 1])
        high = median + F.softplus(out[:, 2])
        return torch.stack([low, median, high], dim=-1)


def pinball_terms(
    predicted: torch.Tensor, target: torch.Tensor, censored: torch.Tensor | None = None
) -> torch.Tensor:
    """[batch, 3] pinball losses at QUANTILES; on censored rows (the target is a lower bound)
    only predicting below the target costs."""
    taus = torch.tensor(QUANTILES, dtype=predicted.dtype, device=predicted.device)
    error = target.unsqueeze(-1) - predicted
    loss = torch.maximum(taus * error, (taus - 1) * error)
    if censored is not None:
        above = (error < 0) & (censored.unsqueeze(-1) > 0.5)
        loss = torch.where(above, torch.zeros_like(loss), loss)
    return loss


def pinball_loss(
    predicted: torch.Tensor, target: torch.Tensor, censored: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean (censored) pinball loss of [batch, 3] predictions at QUANTILES."""
    return pinball_terms(predicted, target, censored).mean()


def to_units(log_quantiles: torch.Tensor) -> torch.Tensor:
    """Units from log1p quantiles (monotone, so order and monotonicity carry over)."""
    return torch.expm1(log_quantiles).clamp(min=0.0)
