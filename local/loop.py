"""The closed loop on a synthetic market: plan -> the week happens -> measure -> plan the next.

    python -m local.loop --preset demo --weeks 4 [--seed 42] [weekly options]   (make loop)

A fresh market of the preset is written to the dataset `<preset>_loop` (the demo's own landing
folder is left alone), its history ending WEEKS weeks before the last full week, so that every
simulated week lies in the past (ingest refuses rows dated after now). Then, WEEKS times: the
weekly DAG plans the week after the data (ingesting the week simulated before it), the DAG
`promo_measure` measures the plan weeks whose sales are in, and the plan week is simulated on
the market's truth (sources/synthetic/simulate.py). A last weekly run ingests the last week and
plans the next one; every week is measured again, so the dips of the following weeks are in.

Printed per week: planned vs realized incremental profit of the plan lines, with the truth's
(the same actual sales minus the market's true no-promotion units), the week's control level
(the baseline's correction measured on the unpromoted products of each line's category, mean
over the lines), the measured treatment effect on the purchase rate with its 95% interval next
to the true contact effect, and the forecast's WAPE. Then, per plan week, targeting by uplift
against targeting by propensity at the same audience size, valued with the truth
(scoring/targeting.py), and the personal offers' expected and true incremental profit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import time

import pandas as pd

from local.runner import DAG_ID, dag_test, prepare_airflow, run_weekly
from promoflow.logs import setup_logging
from promoflow.run import RunConfigError, add_cli_arguments, params_from_cli
from promoflow.settings import Settings, get_settings
from promoflow.warehouse import connect, engine

log = logging.getLogger("local.loop")


def loop_history_end(weeks: int, today: dt.date | None = None) -> dt.date:
    """The Sunday that ends the loop's history: `weeks` weeks before the last full week."""
    today = today or dt.datetime.now(dt.UTC).date()
    last_sunday = today - dt.timedelta(days=today.weekday() + 1)  # the day before this Monday
    return last_sunday - dt.timedelta(weeks=weeks)


def measure_with_dag(dataset: str, env: dict[str, str], settings: Settings) -> None:
    """Run promo_measure once in-process, as the Asset event of the weekly run would."""
    dag_test("promo_measure", {"dataset": dataset, "plan_week": ""}, env, settings)


def week_table(dataset: str, settings: Settings) -> pd.DataFrame:
    """Per measured plan week of the dataset: measured and true values side by side."""
    with engine(settings).connect() as conn:
        results = pd.read_sql(
            "select r.plan_week, r.product_id, r.actual_units, r.planned_incremental_profit, "
            "r.control_level, "
            "r.realized_incremental_profit, l.list_price, l.promo_price, l.unit_cost "
            "from published.plan_results r join published.plan_lines l using (run_id, product_id) "
            "where r.dataset = %(d)s order by 1, 2", conn, params={"d": dataset})
        effects = pd.read_sql(
            "select plan_week, difference, ci_low, ci_high, p_value, mde from "
            "published.experiment_results where dataset = %(d)s and scope = 'overall' "
            "and metric = 'purchase_rate'", conn, params={"d": dataset})
        accuracy = pd.read_sql("select plan_week, wape, bias from published.forecast_accuracy "
                               "where dataset = %(d)s", conn, params={"d": dataset})
    truth_dir = settings.ground_truth_dir / dataset / "weeks"
    rows = []
    for week, lines in results.groupby("plan_week"):
        week_dir = truth_dir / pd.Timestamp(week).date().isoformat()
        effects_truth = pd.read_csv(week_dir / "plan_effects.csv").set_index("product_id")
        summary = json.loads((week_dir / "summary.json").read_text())
        base = lines["product_id"].map(effects_truth["baseline_units"]).to_numpy(float)
        true_profit = (lines["actual_units"] * (lines["promo_price"] - lines["unit_cost"])
                       - base * (lines["list_price"] - lines["unit_cost"])).sum()
        effect = effects[effects["plan_week"] == week].iloc[0]
        fit = accuracy[accuracy["plan_week"] == week].iloc[0]
        truth_effect = summary["true_contact_effect"]
        rows.append({
            "plan_week": pd.Timestamp(week).date().isoformat(), "lines": len(lines),
            "planned_profit": lines["planned_incremental_profit"].sum(),
            "realized_profit": lines["realized_incremental_profit"].sum(),
            "true_realized_profit": true_profit, "control_level": lines["control_level"].mean(),
            "effect": effect["difference"], "ci_low": effect["ci_low"],
            "ci_high": effect["ci_high"], "true_effect": truth_effect,
            "covered": bool(effect["ci_low"] <= truth_effect <= effect["ci_high"]),
            "wape": fit["wape"], "bias": fit["bias"],
        })
    table = pd.DataFrame(rows)
    if not table.empty:
        table["profit_error"] = table["realized_profit"] / table["true_realized_profit"] - 1
    return table


def table_lines(table: pd.DataFrame) -> list[str]:
    lines = [("week        lines  planned   realized  in truth  error   level  effect [95% CI]     "
             "       true effect  covered  WAPE")]
    for row in table.itertuples():
        lines.append(
            f"{row.plan_week}  {row.lines:>4}  {row.planned_profit:>8,.0f}  {row.realized_profit:>8,.0f}"
            f"  {row.true_realized_profit:>8,.0f}  {row.profit_error:>+6.1%}  "
            f"{row.control_level:.3f}  {row.effect:+.4f} "
            f"[{row.ci_low:+.4f}, {row.ci_high:+.4f}]  {row.true_effect:.4f}       "
            f"{'yes' if row.covered else 'no ':<7}  {row.wape:.3f}")
    if len(table):
        lines.append(f"interval covers the true effect in {int(table['covered'].sum())} of "
                     f"{len(table)} weeks; realized profit within 25% of the truth's in "
                     f"{int((table['profit_error'].abs() <= 0.25).sum())} of {len(table)}")
    return lines


def targeting_lines(rows: list[dict]) -> list[str]:
    """Per plan week: both targeting policies' true incremental buyers and profit, and the
    adjusted Rand index of the week's segments against the market's hidden ones."""
    lines = [("week        uplift   treated  true buyers (propensity / uplift)  "
              "true profit (propensity / uplift)  expected buyers (uplift)  segment ARI  ids")]
    for row in rows:
        by = {s.policy: s for s in row["scores"]}
        p, u = by["propensity"], by["uplift"]
        lines.append(f"{row['plan_week']}  {'learned' if row['learned'] else 'prior':<7}  "
                     f"{u.treated:>7}  {p.true_incremental_buyers:>15,.1f} / "
                     f"{u.true_incremental_buyers:<15,.1f}  {p.true_incremental_profit:>15,.0f} / "
                     f"{u.true_incremental_profit:<15,.0f}  {u.expected_incremental_buyers:>24,.1f}"
                     f"  {row['ari']:>11.3f}  {','.join(str(i) for i in row['segments'])}")
    return lines


def offer_lines(rows: list[dict]) -> list[str]:
    """Per plan week: the personal offers, expected by the plan and in truth (each against the
    plain contact at the public price)."""
    lines = [("week        offers  recipients  spend (expected / true)  "
             "incremental profit (expected / true)")]
    for row in rows:
        o = row["offers"]
        lines.append(f"{row['plan_week']}  {o.offers:>6}  {o.recipients:>10}  "
                     f"{o.expected_spend:>10,.0f} / {o.true_spend:<10,.0f}  "
                     f"{o.expected_incremental_profit:>17,.0f} / {o.true_incremental_profit:<,.0f}")
    return lines


def forget_published(dataset: str, settings: Settings) -> None:
    """Remove what an earlier loop published for the dataset: its plans (every version and the
    current-version pointers; their lines, targets, results and experiments go with them) and
    measurements. A fresh market is a new history;
    the next plans must not learn from the weeks of an earlier one."""
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select to_regclass('published.plans')")
        if cur.fetchone()[0] is None:
            return
        for table in ("plan_results", "experiment_results", "forecast_accuracy", "current_plans"):
            cur.execute("select to_regclass(%s)", (f"published.{table}",))
            if cur.fetchone()[0] is not None:
                cur.execute(f"delete from published.{table} where dataset = %s", (dataset,))
        cur.execute("delete from published.plans where dataset = %s", (dataset,))
        log.info("Forgot %d published plans of the earlier %s market", cur.rowcount, dataset)
        conn.commit()


def run_loop(preset: str, weeks: int, seed: int, extra: dict, settings: Settings
             ) -> tuple[pd.DataFrame, list[dict]]:
    from measurement.measure import measure_dataset
    from scoring.segments import published_segments, score_segments
    from scoring.targeting import compare, score_offers
    from sources.synthetic.generate import generate
    from sources.synthetic.simulate import simulate_run

    dataset = f"{preset}_loop"
    history_end = loop_history_end(weeks)
    started = time.time()
    generate(preset, settings.landing_dir / dataset, settings.ground_truth_dir / dataset,
             seed=seed, history_end=history_end)
    forget_published(dataset, settings)
    log.info("Loop market %s (preset %s, seed %d): history to %s, %d plan weeks", dataset,
             preset, seed, history_end, weeks)
    env, targeting = None, []
    for k in range(weeks + 1):
        plan = run_weekly({**extra, "dataset": dataset, "seed": seed}, settings)
        env = env or prepare_airflow(settings)  # the weekly run made Airflow's database ready
        measure_with_dag(dataset, env, settings)
        if k == weeks:
            break
        segments = published_segments(plan["run_id"], settings)[1]
        targeting.append({"plan_week": plan["plan_week"], "learned": plan["uplift_learned"],
                          "scores": compare(plan["run_id"], settings),
                          "ari": score_segments(segments, settings.ground_truth_dir / dataset)[
                              "ari"], "segments": sorted(segments["segment_id"].unique()),
                          "offers": score_offers(plan["run_id"], settings)})
        summary = simulate_run(plan["run_id"], settings)
        log.info("Week %d of %d (%s) simulated: %s units, %s contact purchases (%.0f s so far)",
                 k + 1, weeks, summary["plan_week"], summary["units_sold"],
                 summary["contact_units"], time.time() - started)
    measure_dataset(dataset, settings=settings)  # every week again: the last dips are in
    return week_table(dataset, settings), targeting


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="demo", help="synthetic market preset (tiny, demo)")
    parser.add_argument("--weeks", type=int, default=4, help="plan weeks to run (1-12)")
    add_cli_arguments(parser)
    args = parser.parse_args(argv)
    if not 1 <= args.weeks <= 12:
        raise SystemExit(f"error: --weeks {args.weeks} is outside [1, 12].")
    if args.dataset is not None or args.plan_week is not None:
        raise SystemExit("error: the loop picks its own dataset (<preset>_loop) and plan weeks; "
                         "leave --dataset and --plan-week out.")
    try:
        params = params_from_cli(args)
    except RunConfigError as error:
        raise SystemExit(f"error: {error}") from None
    given = {k: v for k, v in params.to_dict().items()
             if k not in ("dataset", "plan_week", "seed") and getattr(args, k) is not None}
    settings = get_settings()
    table, targeting = run_loop(args.preset, args.weeks, params.seed, given, settings)
    out = settings.work_dir / "loop" / f"{args.preset}_loop.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    print("\n".join(["", (f"Closed loop on {args.preset}_loop ({DAG_ID} + promo_measure), "
                     "measured vs true:"), *table_lines(table), f"table: {out}", "",
                     "Targeting at the same audience size, valued with the truth:",
                     *targeting_lines(targeting), "",
                     "Personal offers, valued with the truth:", *offer_lines(targeting), ""]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
