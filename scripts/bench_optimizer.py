"""Benchmark of the discount MIP: build and solve time and proven gap by catalogue size.

    .venv/bin/python scripts/bench_optimizer.py [--products 50000] [--step 0.05] [--max-discount 0.5]

Random but seeded demand curves (constant elasticity 1-5, stock, costs, a post-promotion dip of
10-40% of the extra units, siblings losing 20-50% of them, P10-P90 at 0.7-1.3 x P50), a budget of
3% of the week's revenue and a per-category limit; the whole planning path (`plan_discounts`:
candidates, presolve, the MIP with the category cannibalization terms, the budget held at 90%
confidence). Prints one table row per size and writes JSON when --json is given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date

import numpy as np
import pandas as pd

from planning.optimize import _presolve, candidate_table, plan_discounts
from promoflow.run import RunParams

WEEK = date(2026, 11, 16)


def market(n_products: int, levels: tuple[float, ...], seed: int = 0):
    rng = np.random.default_rng(seed)
    products = pd.DataFrame({
        "product_id": np.arange(1, n_products + 1),
        "category": rng.integers(0, max(n_products // 50, 1), n_products).astype(str),
        "list_price": rng.uniform(5, 100, n_products).round(2),
        "on_hand_units": rng.integers(20, 2000, n_products),
    })
    products["unit_cost"] = (products["list_price"] * rng.uniform(0.4, 0.8, n_products)).round(2)
    base = rng.gamma(2.0, 5.0, n_products)
    elasticity = rng.uniform(1.0, 5.0, n_products)
    depth = np.array(levels)
    units = base[:, None] * (1 - depth[None, :]) ** (-elasticity[:, None])
    extra = (units - units[:, :1]).reshape(-1)
    dip = np.repeat(rng.uniform(0.1, 0.4, n_products), len(levels))
    switched = np.repeat(rng.uniform(0.2, 0.5, n_products), len(levels))
    forecasts = pd.DataFrame({
        "product_id": np.repeat(products["product_id"].to_numpy(), len(levels)),
        "week_start": WEEK,
        "discount_depth": np.tile(depth, n_products),
        "units_p10": 0.7 * units.reshape(-1), "units_p50": units.reshape(-1),
        "units_p90": 1.3 * units.reshape(-1),
        "dip_units": dip * extra, "cannibalized_units": switched * extra,
    })
    revenue = float((base * products["list_price"]).sum())
    return products, forecasts, revenue


def bench_size(n: int, step: float, max_discount: float, gap: float) -> dict:
    """Build and solve the plan of a random market of n products; one result row."""
    probe = RunParams(max_discount=max_discount, discount_step=step)
    products, forecasts, revenue = market(n, probe.discount_levels)
    params = RunParams(plan_week=WEEK, budget=round(0.03 * revenue, 2),
                       max_discount=max_discount, discount_step=step,
                       margin_floor=0.1, max_promos_per_category=100)
    started = time.perf_counter()
    candidates = candidate_table(forecasts, products, params)
    built = time.perf_counter()
    solution = plan_discounts(forecasts, products, params, mip_rel_gap=gap)
    solved = time.perf_counter()
    return {"products": n, "levels": len(params.discount_levels),
            "columns": int(candidates["meets_margin_floor"].sum()),
            "offered": len(_presolve(candidates)),
            "build_s": round(built - started, 2), "solve_s": round(solved - built, 2),
            "status": solution.status, "mip_gap": solution.mip_gap,
            "promoted": int((solution.chosen["discount_depth"] > 0).sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--step", type=float, default=0.05)
    parser.add_argument("--max-discount", type=float, default=0.5)
    parser.add_argument("--gap", type=float, default=1e-3, help="relative MIP gap to prove")
    parser.add_argument("--json", default=None, help="write the rows to this JSON file")
    args = parser.parse_args()
    rows = []
    print(f"{'products':>9} {'levels':>6} {'columns':>8} {'offered':>8} {'build s':>8} "
          f"{'solve s':>8} {'status':>10} {'gap':>9} {'promoted':>9}")
    for n in args.products:
        row = bench_size(n, args.step, args.max_discount, args.gap)
        rows.append(row)
        print(f"{n:>9} {row['levels']:>6} {row['columns']:>8} {row['offered']:>8} "
              f"{row['build_s']:>8.2f} "
              f"{row['solve_s']:>8.2f} {row['status']:>10} {row['mip_gap']:>9.2e} "
              f"{row['promoted']:>9}")
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    print(f"machine: {machine}; HiGHS single thread")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": machine, "rows": rows}, handle, indent=2)


if __name__ == "__main__":
    main()
