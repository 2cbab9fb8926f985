"""Personal offers valued with the market's truth: the scorer's value is the simulated week's."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from promoflow.run import Run, RunFolder, RunParams
from promoflow.settings import get_settings
from scoring.targeting import score_offers
from sources.synthetic.generate import generate
from sources.synthetic.simulate import simulate_week

WEEK = dt.date(2026, 11, 16)


def test_the_offers_true_profit_is_the_simulated_weeks(tmp_path: Path) -> None:
    settings = dataclasses.replace(get_settings(), work_dir=tmp_path)
    landing, truth = settings.landing_dir / "t", settings.ground_truth_dir / "t"
    generate("tiny", landing, truth, seed=42)
    products = pd.read_csv(landing / "products.csv").iloc[:6]
    lines = products[["product_id", "list_price", "unit_cost"]].assign(discount_depth=0.05)
    lines["promo_price"] = (lines["list_price"] * 0.95).round(2)
    customers = pd.read_csv(landing / "customers.csv", keep_default_na=False)
    rng = np.random.default_rng(3)
    targets = pd.DataFrame([(p, c) for p in lines["product_id"]
                            for c in rng.choice(customers["customer_id"], 60, replace=False)],
                           columns=["product_id", "customer_id"])
    targets["assignment"] = np.where(rng.random(len(targets)) < 0.2, "holdout", "treatment")
    targets["channel"] = ""  # the preferred channel
    # the first three products' treated targets get a coupon 10 points deeper
    coupon = targets["product_id"].isin(lines["product_id"].iloc[:3]) & (
        targets["assignment"] == "treatment")
    targets["offer_depth"] = np.where(coupon, 0.15, np.nan)
    offers = pd.DataFrame({"product_id": lines["product_id"].iloc[:3], "offer_spend": 1.0,
                           "offer_gain": 2.0})
    run = Run(run_id="offers", params=RunParams(dataset="t", plan_week=WEEK))
    folder = RunFolder(settings.runs_dir / "offers")
    folder.path.mkdir(parents=True)
    folder.run_file.write_text(json.dumps(run.to_dict()))
    lines.to_parquet(folder.plan_lines)
    targets.to_parquet(folder.plan_targets)
    offers.to_parquet(folder.plan_offers)

    scored = score_offers("offers", settings)
    assert scored.offers == 3 and scored.recipients == int(coupon.sum())
    assert scored.expected_incremental_profit == pytest.approx(6.0)

    simulate_week(landing, truth, WEEK, lines, targets, seed=42)
    week = pd.read_csv(truth / "weeks" / WEEK.isoformat() / "contact_effects.csv")
    held = week[week["offer_depth"] > 0].merge(lines, on="product_id")
    assert len(held) > 0 and (held["q_offer"] > held["q"]).all()
    price_e = (held["list_price"] * (1 - held["offer_depth"])).round(2)
    before = held["b"] + held["q"] * (1 - held["b"])
    after = held["b"] + held["q_offer"] * (1 - held["b"])
    profit = (after * (price_e - held["unit_cost"])
              - before * (held["promo_price"] - held["unit_cost"])).sum()
    assert scored.true_incremental_profit == pytest.approx(profit, abs=0.01)
