"""Run the platform on one machine: generate data, run the weekly DAG in-process, serve the UI.

    python -m local.runner generate --preset demo
    python -m local.runner weekly --dataset demo [--budget 5000 ...]   (options: --help)
    python -m local.runner airflow

Airflow keeps its metadata in a database of the embedded PostgreSQL and its home in the work
folder; the warehouse connection reaches the DAG as AIRFLOW_CONN_PROMO_WAREHOUSE.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

from local.roles import Role, bi_role, ensure_roles
from promoflow.logs import setup_logging
from promoflow.run import (
    RunConfigError,
    RunFolder,
    RunParams,
    add_cli_arguments,
    params_from_cli,
    validate_params,
)
from promoflow.settings import PROJECT_ROOT, Settings, get_settings
from promoflow.warehouse import WarehouseUnavailable

log = logging.getLogger("local.runner")

DAG_ID = "promo_weekly"
VENV_BIN = Path(sys.executable).parent


def airflow_env(settings: Settings, warehouse_role: Role | None = None) -> dict[str, str]:
    """Environment for Airflow commands and for the tasks they run.

    Airflow's metadata database is reached as the admin user; the tasks reach the warehouse as
    `warehouse_role` (the pipeline's writer role; the admin user when None).
    """
    home = settings.work_dir / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    pw = quote(settings.pg_password, safe="")
    base = f"{quote(settings.pg_user, safe='')}:{pw}@{settings.pg_host}:{settings.pg_port}"
    role = warehouse_role or Role(settings.pg_user, settings.pg_password)
    task_base = (f"{quote(role.user, safe='')}:{quote(role.password, safe='')}"
                 f"@{settings.pg_host}:{settings.pg_port}")
    env = dict(os.environ)
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(PROJECT_ROOT / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__PARALLELISM=env.get("AIRFLOW__CORE__PARALLELISM", "4"),
        AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT="120",
        AIRFLOW__CORE__DAG_FILE_PROCESSOR_TIMEOUT="180",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"postgresql+psycopg2://{base}/{settings.pg_db}_airflow",
        AIRFLOW_CONN_PROMO_WAREHOUSE=f"postgres://{task_base}/{settings.pg_db}",
        AIRFLOW__COSMOS__CACHE_DIR=str(settings.work_dir / "cosmos"),
        AIRFLOW__COSMOS__ENABLE_TELEMETRY="False",
        GX_ANALYTICS_ENABLED="False",
        PROMO_WORK_DIR=str(settings.work_dir),
        PROMO_PG_HOST=settings.pg_host,
        PROMO_PG_PORT=str(settings.pg_port),
        PROMO_PG_DB=settings.pg_db,
        PROMO_PG_USER=role.user,
        PROMO_PG_PASSWORD=role.password,
        TMPDIR=str(settings.tmp_dir),
        SPARK_LOCAL_IP="127.0.0.1",
    )
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    return env


def _ensure_airflow_db(settings: Settings, env: dict[str, str]) -> None:
    import psycopg2

    conn = psycopg2.connect(host=settings.pg_host, port=settings.pg_port, dbname="postgres",
                            user=settings.pg_user, password=settings.pg_password)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("select 1 from pg_database where datname = %s", (f"{settings.pg_db}_airflow",))
        if cur.fetchone() is None:
            cur.execute(f'create database "{settings.pg_db}_airflow"')
    conn.close()
    _timed("airflow db migrate", [str(VENV_BIN / "airflow"), "db", "migrate"], env, quiet=True)


def dbt_parse(env: dict[str, str]) -> None:
    """Write dbt_project/target/manifest.json, which the DAG renders without running dbt."""
    project = PROJECT_ROOT / "dbt_project"
    _timed("dbt parse", [str(VENV_BIN / "dbt"), "parse", "--project-dir", str(project),
                         "--profiles-dir", str(project), "--quiet"], env, quiet=True)


def _timed(label: str, cmd: list[str], env: dict[str, str], quiet: bool = False) -> float:
    start = time.time()
    result = subprocess.run(cmd, check=False, env=env, cwd=PROJECT_ROOT,
                            capture_output=quiet, text=True)
    elapsed = time.time() - start
    if result.returncode != 0:
        if quiet:
            sys.stderr.write((result.stdout or "")[-4000:] + (result.stderr or "")[-4000:])
        raise SystemExit(f"error: {label} failed (exit {result.returncode}); see the log above.")
    log.info("%s done in %.1f s", label, elapsed)
    return elapsed


def prepare_airflow(settings: Settings) -> dict[str, str]:
    """Roles and grants, Airflow's database and the dbt manifest; the environment of the run."""
    writer, _ = ensure_roles(settings)
    env = airflow_env(settings, writer)
    _ensure_airflow_db(settings, env)
    dbt_parse(env)
    return env


def _server_down(settings: Settings) -> str | None:
    """Why PostgreSQL does not answer (its error, shortened), or None when it does."""
    import psycopg2

    try:
        psycopg2.connect(connect_timeout=5,
                         **replace(settings, pg_db="postgres").psycopg_kwargs()).close()
    except psycopg2.OperationalError as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return first.rsplit("failed: ", 1)[-1]
    return None


def fail_stale_test_runs(dag_id: str, settings: Settings) -> list[str]:
    """Mark failed the runs of `dag_id` that an in-process run (`airflow dags test`) left marked
    running or queued: its process ended without ending them, because PostgreSQL, which holds
    Airflow's metadata too, stopped under it or the process was killed. Their unfinished tasks
    are marked as Airflow marks them when a run is failed by hand (running: failed, the others:
    skipped). Runs of the scheduler, the UI or the API are left alone. Returns the run ids."""
    from promoflow.warehouse import connect

    with connect(replace(settings, pg_db=f"{settings.pg_db}_airflow")) as conn, \
            conn.cursor() as cur:
        cur.execute(
            "with stale as (update dag_run set state = 'failed', end_date = now() "
            "  where dag_id = %s and state in ('running', 'queued') and triggered_by = 'TEST' "
            "  returning dag_id, run_id), "
            "tasks as (update task_instance t set state = case t.state when 'running' "
            "  then 'failed' else 'skipped' end, end_date = now() from stale s "
            "  where t.dag_id = s.dag_id and t.run_id = s.run_id and t.state in ("
            "  'running', 'queued', 'scheduled', 'up_for_retry', 'up_for_reschedule', "
            "  'deferred', 'restarting')) "
            "select run_id from stale order by run_id", (dag_id,))
        stale = [run_id for (run_id,) in cur.fetchall()]
    for run_id in stale:
        log.warning("Airflow run %s of %s was left running by a run that stopped (PostgreSQL "
                    "or its process went away); marked failed", run_id, dag_id)
    return stale


def dag_test(dag_id: str, conf: dict, env: dict[str, str], settings: Settings) -> float:
    """One run of the DAG in this process (`airflow dags test`), after failing the runs an earlier
    one left marked running. A failed run ends with one line: the failed task's error (its
    sentence, from the failure alert), or that PostgreSQL stopped answering."""
    fail_stale_test_runs(dag_id, settings)
    failures = settings.tmp_dir / f"failures-{dag_id}-{os.getpid()}.jsonl"
    failures.unlink(missing_ok=True)
    try:
        return _timed(f"DAG {dag_id}", [str(VENV_BIN / "airflow"), "dags", "test", dag_id,
                                        "--conf", json.dumps(conf)],
                      {**env, "PROMO_FAILURE_LOG": str(failures)})
    except SystemExit:
        down = _server_down(settings)
        if down is None:
            failed = [json.loads(line) for line in failures.read_text().splitlines()] \
                if failures.exists() else []
            if not failed:
                raise
            first = failed[0]  # the later ones, if any, are listed in the log above
            raise SystemExit(f"error: task {first['task_id']} of {dag_id} failed: "
                             f"{first['error']}") from None
        raise SystemExit(
            f"error: PostgreSQL at {settings.pg_host}:{settings.pg_port} stopped answering during "
            f"the {dag_id} run ({down}); start it again (`make services` starts the embedded "
            "server) and rerun the same command, which runs the week again from its start."
        ) from None
    finally:
        failures.unlink(missing_ok=True)


def run_weekly(params: RunParams | dict, settings: Settings | None = None) -> dict:
    """Run the DAG once in-process (`airflow dags test`) and return the published plan."""
    s = settings or get_settings()
    try:  # refuse bad values in one line, before Airflow starts
        checked = validate_params(params.to_dict() if isinstance(params, RunParams) else params, s)
    except RunConfigError as error:
        raise SystemExit(f"error: {error}") from None
    env = prepare_airflow(s)
    dag_test(DAG_ID, checked.to_dict(), env, s)
    week = checked.plan_week
    return published_summary(s, week.isoformat() if week else None)


def published_summary(settings: Settings, plan_week: str | None = None) -> dict:
    from promoflow.warehouse import connect

    with connect(settings) as conn, conn.cursor() as cur:
        # the plan of the week asked for, else the one published last (this run's: another
        # dataset in the same warehouse may hold later weeks)
        where = "plan_week = %s" if plan_week else "true"
        cur.execute(f"select run_id, plan_week, budget, products_promoted, promotion_cost, "
                    f"expected_incremental_revenue, expected_incremental_profit, published_at, "
                    f"solver_status, mip_gap, spend_at_confidence, budget_confidence, "
                    f"expected_dip_cost, expected_cannibalization_cost, "
                    f"expected_contact_units, uplift_learned, offers, offer_recipients, "
                    f"offer_cost, expected_offer_profit, "
                    f"run_id in (select run_id from published.current_plan) "
                    f"from published.plans where {where} order by published_at desc limit 1",
                    (plan_week,) if plan_week else None)
        row = cur.fetchone()
        if row is None:
            raise SystemExit("error: the run finished but no plan is published; see the task logs above.")
        keys = ["run_id", "plan_week", "budget", "products_promoted", "promotion_cost",
                "expected_incremental_revenue", "expected_incremental_profit", "published_at",
                "solver_status", "mip_gap", "spend_at_confidence", "budget_confidence",
                "expected_dip_cost", "expected_cannibalization_cost", "expected_contact_units",
                "uplift_learned", "offers", "offer_recipients", "offer_cost",
                "expected_offer_profit", "current"]
        plan = dict(zip(keys, row))
        cur.execute("select l.product_id, l.product_name, l.category, l.discount_depth, "
                    "l.expected_incremental_profit from published.plan_lines l "
                    "where l.run_id = %s order by l.expected_incremental_profit desc limit 5",
                    (plan["run_id"],))
        plan["top_lines"] = cur.fetchall()
        cur.execute("select assignment, count(*) from published.plan_targets where run_id = %s "
                    "group by assignment order by assignment", (plan["run_id"],))
        plan["targets"] = dict(cur.fetchall())
    return plan


def landing_lines(run_id: str, settings: Settings) -> list[str]:
    """The landing folder's files that no table read (a re-delivered part, a misplaced file)."""
    from promoflow.warehouse import connect

    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select path from audit.landing_unread where run_id = %s order by path",
                    (run_id,))
        unread = [path for (path,) in cur.fetchall()]
    if not unread:
        return []
    return [(f"  warning: the landing folder holds files that were not read: {', '.join(unread)} "
             "(only <table>.csv, <table>.parquet or a <table>/ folder of parts are; "
             "audit.landing_unread)")]


def model_lines(run_dir: Path) -> list[str]:
    """How much data each model had and how it did against its baseline (holdout weeks); for
    the recommender, its champion and every candidate's holdout metrics with 95% intervals."""
    lines = ["  models (holdout metric: model vs baseline):"]
    for model, size_key, size_label, metric, baseline in (
        ("forecaster", "train_rows", "product-weeks", "wape", "seasonal naive"),
        ("recommender", "train_interactions", "customer-product-weeks", "recall_at_10",
         "popularity"),
    ):
        path = RunFolder(run_dir).metrics(model)
        if not path.exists():
            continue
        metrics = json.loads(path.read_text())
        champion = f" ({metrics['champion']})" if "champion" in metrics else ""
        decision = metrics.get("decision")  # the registry's champion/challenger gate
        gate = ""
        if decision:
            name, version = decision["registered_model"], decision["challenger_version"]
            planned = decision.get("planned_by_version")
            gate = (f"; version {version} of {name} promoted and planned: {decision['reason']}"
                    if decision["promoted"] else
                    f"; version {version} of {name} not promoted ({decision['reason']}), "
                    + (f"planned by champion version {planned} of {name}" if planned
                       else "no champion to plan with"))
        lines.append(
            f"    {model:<12} trained on {metrics.get(size_key, 0):,} {size_label}; "
            f"{metric} {metrics['model'][metric]:.3f}{champion} vs {baseline} "
            f"{metrics['baseline'][metric]:.3f}{gate}"
        )
        overall = {row["model"]: row for row in metrics.get("backtest", [])
                   if row.get("week_start") == "overall"}
        if overall:
            weeks = len({row["week_start"] for row in metrics["backtest"]}) - 1
            scores = ", ".join(f"{name} {row['wape']:.3f}" for name, row in overall.items())
            lines.append(f"    forecaster   backtest over {weeks} weeks, WAPE: {scores}")
        if "calibration" in metrics:
            cal = metrics["calibration"]
            lines.append(f"    forecaster   calibration at discount 0: bias "
                         f"{cal.get('bias_at_discount_0', 0):+.1%}, P10-P90 coverage "
                         f"{cal.get('p10_p90_coverage', 0):.0%}")
        if metrics.get("models"):
            lines.append(f"    {'':<12} {'candidate':<11} {'recall@10 [95% CI]':<24} "
                         "ndcg@10 [95% CI]")
            for name, row in metrics["models"].items():
                cells = [f"{row[m]:.3f} [{row[m + '_ci_low']:.3f}, {row[m + '_ci_high']:.3f}]"
                         for m in ("recall_at_10", "ndcg_at_10")]
                lines.append(f"    {'':<12} {name:<11} {cells[0]:<24} {cells[1]}")
            lines.append(f"    recommender  champion {metrics['champion']}: "
                         f"{metrics.get('champion_reason', '')}")
    return lines


def score_lines(run_id: str, settings: Settings) -> list[str]:
    """On a synthetic market: the plan scored on the ground truth (also published)."""
    from scoring.score import ScoringError, publish_scores, score_run, table_lines

    try:
        run, scores = score_run(run_id, settings)
        publish_scores(run, scores, settings)
    except ScoringError as error:  # no ground truth (a real data set), or not published
        log.info("Plan not scored: %s", error)
        return []
    return ["  in truth (the market's ground truth; published.plan_scores):", *table_lines(scores)]


def print_summary(plan: dict, settings: Settings) -> None:
    lines = [
        "",
        f"Published promotion plan for the week of {plan['plan_week']} (run {plan['run_id']})",
        f"  products promoted:             {plan['products_promoted']}",
        (f"  budget used:                   {plan['promotion_cost']:,.2f} of {plan['budget']:,.2f}"
        f" ({100 * plan['promotion_cost'] / plan['budget'] if plan['budget'] else 0:.0f}%)"),
        f"  expected incremental revenue:  {plan['expected_incremental_revenue']:,.2f}",
        (f"  spend at {100 * (plan['budget_confidence'] or 0):.0f}% confidence:     "
         f"{plan['spend_at_confidence'] or 0:,.2f}"),
        (f"  expected incremental profit:   {plan['expected_incremental_profit']:,.2f} (net of "
         f"the post-promotion dip {plan['expected_dip_cost'] or 0:,.2f} and of the "
         f"siblings' loss {plan['expected_cannibalization_cost'] or 0:,.2f})"),
        (f"  discount program (HiGHS):      {plan['solver_status']}, gap "
         f"{100 * (plan['mip_gap'] or 0):.2f}%"),
        (f"  customers targeted:            {plan['targets'].get('treatment', 0)} treatment, "
        f"{plan['targets'].get('holdout', 0)} holdout"),
        (f"  personal offers:               {plan['offers'] or 0} (product, segment) coupons to "
         f"{plan['offer_recipients'] or 0} treated targets, extra discount "
         f"{plan['offer_cost'] or 0:,.2f}, expected incremental profit "
         f"{plan['expected_offer_profit'] or 0:,.2f} (published.plan_offers)"),
        "  top lines (product, category, discount, expected incremental profit):",
    ]
    for product_id, name, category, depth, profit in plan["top_lines"]:
        lines.append(f"    {product_id:>8} {(name or '')[:30]:<30} {category[:20]:<20} {depth:>4.0%} "
                     f"{profit:>10,.2f}")
    lines += landing_lines(plan["run_id"], settings)
    lines += model_lines(settings.runs_dir / plan["run_id"])
    lines += score_lines(plan["run_id"], settings)
    from quality.checkpoints import data_docs_dir
    from report.plan_report import ensure_report

    bi = bi_role(settings)
    local = settings.work_dir == PROJECT_ROOT / ".local"
    password_hint = "$(cat .local/pg/bi_password)" if local and not os.environ.get("PROMO_BI_PASSWORD") else "$PROMO_BI_PASSWORD"
    query = f"select * from published.plan_lines where run_id = '{plan['run_id']}'"
    lines += [
        f"Data quality report (Great Expectations Data Docs): {data_docs_dir(settings) / 'index.html'}",
        "Query it as the read-only BI role:",
        (f"  PGPASSWORD={password_hint} psql -h {settings.pg_host} -p {settings.pg_port} "
         f"-U {bi.user} {settings.pg_db} -c \"{query}\""),
        f"Plan report (HTML): {ensure_report(plan['run_id'], settings)}",
        "",
    ]
    print("\n".join(lines))


def serve_airflow(settings: Settings) -> None:
    env = prepare_airflow(settings)
    home = Path(env["AIRFLOW_HOME"])
    print(f"Starting Airflow on http://localhost:8080 (user 'admin'; password in "
          f"{home / 'simple_auth_manager_passwords.json.generated'} once started). Ctrl-C stops it.")
    os.execvpe(str(VENV_BIN / "airflow"), [str(VENV_BIN / "airflow"), "standalone"], env)


def _sunday(text: str):
    """A YYYY-MM-DD date (argparse type); the generator checks that it is a Sunday."""
    import argparse
    import datetime as dt

    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date as YYYY-MM-DD") from None


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write a synthetic market (tiny, demo) or import a "
                         "real one (completejourney) into the landing area")
    gen.add_argument("--preset", default="demo")
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument("--history-end", type=_sunday, default=None,
                     help="synthetic markets: last day of history, a Sunday (default 2026-11-15)")
    weekly = sub.add_parser("weekly", help="run the weekly DAG in-process and print the plan")
    add_cli_arguments(weekly)
    sub.add_parser("airflow", help="start the Airflow UI (standalone)")
    args = parser.parse_args(argv)
    settings = get_settings()
    try:
        _command(args, settings)
    except WarehouseUnavailable as error:  # the server is down before or between the runs
        raise SystemExit(f"error: {error}") from None
    return 0


def _command(args, settings: Settings) -> None:
    if args.command == "generate" and args.preset == "completejourney":
        from sources.completejourney import import_completejourney

        start = time.time()
        import_completejourney(settings.landing_dir / "completejourney", seed=args.seed)
        log.info("Imported The Complete Journey in %.1f s (report: %s)", time.time() - start,
                 settings.landing_dir / "completejourney" / "import_report.json")
    elif args.command == "generate":
        from sources.synthetic.generate import GenerateError, generate

        start = time.time()
        extra = {"history_end": args.history_end} if args.history_end else {}
        try:
            counts = generate(preset=args.preset, out_dir=settings.landing_dir / args.preset,
                              truth_dir=settings.ground_truth_dir / args.preset, seed=args.seed,
                              **extra)
        except GenerateError as error:
            raise SystemExit(f"error: {error}") from None
        log.info("Generated %s market in %.1f s: %s", args.preset, time.time() - start, counts)
    elif args.command == "weekly":
        try:
            params = params_from_cli(args)
        except RunConfigError as error:
            raise SystemExit(f"error: {error}") from None
        print_summary(run_weekly(params, settings), settings)
    else:
        serve_airflow(settings)


if __name__ == "__main__":
    sys.exit(main())
