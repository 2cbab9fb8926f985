"""Target customers per promoted product by recommender score, keeping a deterministic holdout.

The holdout is drawn per customer and plan week (a hash of seed, plan week and customer id), so a
customer is either treated or held out for the whole plan: the groups never overlap, and the
same inputs always give the same assignment.
"""

from __future__ import annotations

import hashlib
from datetime import date

import numpy as np
import pandas as pd


def holdout_draw(customer_ids: pd.Series, plan_week: date, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per customer, fixed by seed and plan week."""
    def draw(customer_id: int) -> float:
        digest = hashlib.sha256(f"{seed}:{plan_week.isoformat()}:{int(customer_id)}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    unique = pd.unique(customer_ids)
    table = {cid: draw(cid) for cid in unique}
    return customer_ids.map(table).to_numpy(dtype=float)


def target_customers(plan_lines: pd.DataFrame, recommendations: pd.DataFrame,
                     customers: pd.DataFrame, plan_week: date, audience_size: int,
                     holdout_fraction: float, seed: int) -> pd.DataFrame:
    """Top `audience_size` customers of each promoted product, tagged treatment or holdout."""
    promoted = plan_lines.loc[plan_lines["discount_depth"] > 0, ["product_id"]]
    recs = recommendations.merge(promoted, on="product_id", how="inner")
    recs = recs.sort_values(["product_id", "rank", "customer_id"])
    recs = recs.groupby("product_id", sort=False).head(audience_size).copy()
    recs["holdout_draw"] = holdout_draw(recs["customer_id"], plan_week, seed)
    recs["assignment"] = np.where(recs["holdout_draw"] < holdout_fraction, "holdout", "treatment")
    channels = customers.set_index("customer_id")["preferred_channel"]
    recs["channel"] = recs["customer_id"].map(channels).fillna("email")
    columns = ["product_id", "customer_id", "score", "rank", "assignment", "channel"]
    return recs[columns].reset_index(drop=True)
