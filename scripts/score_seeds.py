"""Benchmark: plan-vs-oracle efficiency in truth over seeds and plan weeks (not a test).

    .venv/bin/python scripts/score_seeds.py [--preset demo] [--seeds 42 7 2026]
        [--history-ends 2026-11-15 2026-11-22] [--json .local/bench/score_seeds.json]

For every seed and end of history: generate the synthetic market, run the weekly flow on it
(`airflow dags test`, the same run as `make weekly`), score the published plan on the market's
ground truth (`scoring.score`), and measure where the gap to the oracle comes from
(`scoring.score.what_if`: the same optimizer on the forecast with its baseline, units, dip or
cannibalization replaced by the truth, and the truth with one dip share for every product: about
the best a model of the history can reach); keep one row. 2026-11-22 makes the plan week the Black
Friday week. Prints a table and the averages; each run takes about five minutes on the demo preset.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import time
from pathlib import Path

import pandas as pd

from local.runner import run_weekly
from planning.run import load_products
from promoflow.logs import setup_logging
from promoflow.run import RunFolder, RunParams
from promoflow.settings import get_settings
from scoring.score import WHAT_IF, publish_scores, score_run, what_if
from sources.synthetic.generate import generate
from sources.synthetic.market import holiday_names_by_week

log = logging.getLogger("score_seeds")


def one_case(preset: str, seed: int, history_end: dt.date, settings) -> dict:
    generate(preset, settings.landing_dir / preset, settings.ground_truth_dir / preset, seed,
             history_end)
    started = time.perf_counter()
    plan = run_weekly(RunParams(dataset=preset, seed=seed), settings)
    run, scores = score_run(plan["run_id"], settings)
    publish_scores(run, scores, settings)
    by_policy = {s.policy: s for s in scores}
    folder = RunFolder(settings.runs_dir / run.run_id)
    metrics = json.loads(folder.metrics("forecaster").read_text())
    plan_file = json.loads(folder.plan.read_text())
    week = run.plan_week
    return {
        "seed": seed, "plan_week": week.isoformat(),
        "events": ", ".join(holiday_names_by_week([week])[0]) or "-",
        "efficiency": by_policy["plan"].efficiency,
        "simple_rule_efficiency": by_policy["simple_rule"].efficiency,
        "plan_gain": by_policy["plan"].true_incremental_profit,
        "oracle_gain": by_policy["oracle"].true_incremental_profit,
        "promoted": by_policy["plan"].products_promoted,
        "oracle_promoted": by_policy["oracle"].products_promoted,
        "true_spend": by_policy["plan"].true_spend, "budget": run.params.budget,
        "within_budget": by_policy["plan"].within_budget,
        "violations": "; ".join(by_policy["plan"].violations) or "none",
        "expected_gain": plan_file.get("expected_incremental_profit"),
        "spend_at_confidence": plan_file.get("spend_at_confidence"),
        "mip_gap": plan_file.get("mip_gap"),
        "bias_at_discount_0": metrics.get("calibration", {}).get("bias_at_discount_0"),
        "p10_p90_coverage": metrics.get("calibration", {}).get("p10_p90_coverage"),
        "minutes": round((time.perf_counter() - started) / 60, 1),
        "what_if": what_if(run, pd.read_parquet(folder.forecasts), load_products(settings),
                           settings.ground_truth_dir / preset),
    }


def table(rows: list[dict]) -> list[str]:
    def num(value, spec):
        return "" if value is None else format(value, spec)

    out = [("| seed | plan week | event | efficiency | simple rule | plan gain | oracle gain | "
            "promoted (oracle) | true spend / budget | constraints | bias at 0 | P10-P90 |"),
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        out.append(
            f"| {r['seed']} | {r['plan_week']} | {r['events']} | {num(r['efficiency'], '.3f')} | "
            f"{num(r['simple_rule_efficiency'], '.3f')} | {r['plan_gain']:,.0f} | "
            f"{r['oracle_gain']:,.0f} | {r['promoted']} ({r['oracle_promoted']}) | "
            f"{r['true_spend']:,.0f} / {r['budget']:,.0f} | {r['violations']} | "
            f"{num(r['bias_at_discount_0'], '+.3f')} | {num(r['p10_p90_coverage'], '.3f')} |")
    out += ["", ("Efficiency of the same optimizer with parts of the forecast replaced by the "
                 "truth (scoring.score.what_if):"), "",
            "| seed | plan week | forecast | " + " | ".join(WHAT_IF) + " |",
            "| --- | --- | --- | " + " | ".join("---" for _ in WHAT_IF) + " |"]
    for r in rows:
        out.append(f"| {r['seed']} | {r['plan_week']} | {num(r['efficiency'], '.3f')} | "
                   + " | ".join(num(r["what_if"].get(name), ".3f") for name in WHAT_IF) + " |")
    scored = [r["efficiency"] for r in rows if r["efficiency"] is not None]
    if scored:
        out.append(f"\nefficiency: mean {sum(scored) / len(scored):.3f}, min {min(scored):.3f}; "
                   f"within budget in truth: {sum(r['within_budget'] for r in rows)}/{len(rows)}")
    return out


def main() -> None:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7, 2026])
    parser.add_argument("--history-ends", type=dt.date.fromisoformat, nargs="+",
                        default=[dt.date(2026, 11, 15), dt.date(2026, 11, 22)])
    parser.add_argument("--json", type=Path, default=None,
                        help="write the rows here (default .local/bench/score_seeds.json)")
    args = parser.parse_args()
    settings = get_settings()
    target = args.json or settings.work_dir / "bench" / "score_seeds.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in args.seeds:
        for end in args.history_ends:
            rows.append(one_case(args.preset, seed, end, settings))
            log.info("seed %s, plan week %s: efficiency %s", seed, rows[-1]["plan_week"],
                     rows[-1]["efficiency"])
            target.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    target.write_text(json.dumps({"machine": machine, "preset": args.preset, "rows": rows},
                                 indent=2) + "\n")
    print("\n".join(table(rows)))
    print(f"machine: {machine}; rows in {target}")


if __name__ == "__main__":
    main()
