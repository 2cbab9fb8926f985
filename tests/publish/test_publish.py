"""Publishing into the real warehouse: write-audit-publish, versions of a week, all or nothing."""

import os
import signal
import subprocess
import sys
import time
from datetime import date, timedelta

import pandas as pd
import psycopg2
import pytest

from local.roles import as_role
from promoflow.settings import PROJECT_ROOT
from promoflow.warehouse import connect
from publish.publish import STAGING, TABLES, PublishAuditError, publish_plan
from tests.publish.plans import big_plan, small_plan

KEYS = {"plans": "run_id", **{table: f"run_id, {key}" for table, (_, _, key) in TABLES.items()},
        "current_plans": "dataset, plan_week"}


def _published(settings, week: date | None = None, run_id: bool = True) -> dict[str, list]:
    """Rows of every published table and of the current-version pointers (of the `unit`
    dataset's current version of one plan week, or all), in key order."""
    out = {}
    with connect(settings) as conn, conn.cursor() as cur:
        for table, key in KEYS.items():
            where = "true" if week is None else (
                "run_id in (select run_id from published.current_plans "
                "where plan_week = %(week)s and dataset = 'unit')")  # other tests' datasets
            cur.execute(f"select * from published.{table} where {where} order by {key}",
                        {"week": week})
            names = [d.name for d in cur.description]
            drop = {"run_id"} if not run_id else set()
            if week is not None:  # the time the plan became visible; see publish.py
                drop.update({"published_at", "updated_at"})
            out[table] = [tuple(v for n, v in zip(names, row) if n not in drop)
                          for row in cur.fetchall()]
    return out


def _staged_rows(settings) -> int:
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute(" union all ".join(f"select count(*) from {STAGING}.{t}"
                                       for t in ["plans", *TABLES]))
        return sum(n for (n,) in cur.fetchall())


@pytest.mark.integration
def test_rerun_of_a_week_gives_an_identical_version_without_duplicates(settings):
    week = date(2026, 11, 16)
    publish_plan(*small_plan("run-a", week), settings=settings)
    first = _published(settings, week)
    publish_plan(*small_plan("run-a", week), settings=settings)  # a retry: the run replaced
    assert _published(settings, week) == first
    publish_plan(*small_plan("run-b", week), settings=settings)  # a rerun: a new version
    second = _published(settings, week, run_id=False)
    assert second == _published(settings, week, run_id=False) and len(second["plans"]) == 1
    unpointed = {t: [r[1:] if t != "current_plans" else r[:2] for r in rows]
                 for t, rows in first.items()}  # run_id is first, after (dataset, plan_week)
    assert second == unpointed
    assert len(second["plan_lines"]) > 0 and len(second["plan_targets"]) > 0
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select run_id from published.current_plans where plan_week = %s "
                    "and dataset = 'unit'", (week,))
        assert cur.fetchall() == [("run-b",)]
        cur.execute("select run_id from published.plans where plan_week = %s "
                    "and dataset = 'unit' order by 1", (week,))
        assert cur.fetchall() == [("run-a",), ("run-b",)]  # the first version kept
        for table, key in KEYS.items():
            cur.execute(f"select count(*) - count(distinct ({key})) from published.{table}")
            assert cur.fetchone() == (0,), table
    assert _staged_rows(settings) == 0


def _over_budget(plan, lines, targets):
    plan["budget"] = plan["promotion_cost"] / 2
    return targets


def _customer_in_both_groups(plan, lines, targets):
    row = targets.iloc[[0]].copy()
    row["assignment"] = "holdout" if row["assignment"].iloc[0] == "treatment" else "treatment"
    return pd.concat([targets, row], ignore_index=True)


def _target_for_unpromoted_product(plan, lines, targets):
    row = targets.iloc[[0]].assign(product_id=999)
    return pd.concat([targets, row], ignore_index=True)


def _discount_above_max(plan, lines, targets):
    lines.loc[0, "discount_depth"] = 0.5
    return targets


def _below_margin_floor(plan, lines, targets):
    lines.loc[0, "unit_cost"] = lines.loc[0, "promo_price"]
    return targets


def _duplicate_line(plan, lines, targets):
    lines.loc[len(lines)] = lines.iloc[0]
    return targets


def _unknown_assignment(plan, lines, targets):
    targets.loc[0, "assignment"] = "neither"
    return targets


@pytest.mark.integration
@pytest.mark.parametrize("spoil, message", [
    (_over_budget, r"'promotion cost within budget' failed .*: promotion cost \d+\.\d\d exceeds"),
    (_customer_in_both_groups, r"'customer in one group' failed .*both treatment and holdout"),
    (_target_for_unpromoted_product,
     r"'targets only for promoted products' failed .*product 999, which the plan does not"),
    (_discount_above_max, r"'discount within max_discount' failed .*discount 0\.5 outside"),
    (_below_margin_floor, r"'margin floor' failed .*below the margin floor 0\.05"),
    (_duplicate_line, r"'no duplicate keys' failed .*plan_lines has more than one row"),
    (_unknown_assignment, r"'valid assignment' failed .*'neither', not treatment or holdout"),
])
def test_an_audit_failure_leaves_published_unchanged(settings, spoil, message):
    week = date(2026, 11, 23)
    publish_plan(*small_plan("run-good", week), settings=settings)
    before = _published(settings)
    plan, lines, targets, forecasts, metrics = small_plan("run-bad", week)
    targets = spoil(plan, lines, targets)
    with pytest.raises(PublishAuditError, match=message) as failure:
        publish_plan(plan, lines, targets, forecasts, metrics, settings=settings)
    assert str(failure.value).endswith("; published is unchanged.")
    assert "\n" not in str(failure.value)
    assert _published(settings) == before
    assert _staged_rows(settings) == 0


KILL_WEEK = date(2030, 1, 7)  # the dataset's latest week: published.current_plan shows it
N_TARGETS = 200_000
#: the current plan of the test plans' dataset (other tests publish other datasets too)
OF_UNIT = "run_id in (select run_id from published.current_plan where dataset = 'unit')"


def _bi_view(bi_settings) -> dict:
    with connect(bi_settings) as conn, conn.cursor() as cur:
        cur.execute(f"select * from published.current_plan where {OF_UNIT}")
        plan = cur.fetchall()
        cur.execute(f"select * from published.current_plan_lines where {OF_UNIT} "
                    "order by product_id")
        lines = cur.fetchall()
        cur.execute("select count(*), count(distinct run_id) from published.current_plan_targets "
                    f"where {OF_UNIT}")
        return {"plan": plan, "lines": lines, "targets": cur.fetchone()}


def _wait_for_statement(settings, app: str, prefix: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    conn = psycopg2.connect(**settings.psycopg_kwargs())
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            while time.monotonic() < deadline:
                cur.execute("select count(*) from pg_stat_activity where application_name = %s "
                            "and state = 'active' and query ilike %s", (app, prefix + "%"))
                if cur.fetchone()[0]:
                    return
                if proc.poll() is not None:
                    pytest.fail(f"the publish ended (rc {proc.returncode}) before '{prefix}' was seen")
                time.sleep(0.002)
    finally:
        conn.close()
    pytest.fail(f"'{prefix}' was not seen within 120 s")


@pytest.mark.integration
@pytest.mark.parametrize("statement", [f"copy {STAGING}.plan_targets",
                                       "insert into published.plan_targets"])
def test_a_killed_publish_leaves_the_previous_plan(settings, roles, statement):
    """SIGKILL while staging (COPY) or while swapping (INSERT): BI still sees the last good plan."""
    bi = as_role(settings, roles[1])
    publish_plan(*small_plan("run-before-kill", KILL_WEEK), settings=settings)
    before = _bi_view(bi)
    assert before["plan"][0][0] == "run-before-kill" and before["lines"]
    app = f"publish-kill-{os.getpid()}"
    code = ("from tests.publish.plans import publish_big; "
            f"publish_big('run-killed', '{KILL_WEEK.isoformat()}', {N_TARGETS})")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT_ROOT,
                            env=dict(os.environ, PGAPPNAME=app),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_statement(settings, app, statement, proc)
        if statement.startswith("insert"):  # the staged rows are committed: provably mid-way
            with connect(settings) as conn, conn.cursor() as cur:
                cur.execute(f"select count(*) from {STAGING}.plan_targets")
                assert cur.fetchone()[0] >= N_TARGETS
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _bi_view(bi) == before
    rerun = big_plan("run-killed", KILL_WEEK, N_TARGETS)
    publish_plan(*rerun, settings=settings)
    after = _bi_view(bi)
    assert [row[0] for row in after["plan"]] == ["run-killed"]
    assert after["lines"] == [("run-killed", *row[1:]) for row in before["lines"]]
    assert after["targets"] == (len(rerun[2]), 1)
    assert _staged_rows(settings) == 0


@pytest.mark.integration
def test_a_warehouse_of_the_first_release_is_migrated_in_place(settings):
    week = date(2026, 12, 7)
    publish_plan(*small_plan("run-before-migration", week), settings=settings)
    added = ("discount_step", "seed", "mip_gap")
    with connect(settings) as conn, conn.cursor() as cur:  # the published schema as it was
        cur.execute("drop view published.current_plan_lines, published.current_plan_targets, "
                    "published.current_plan_offers, published.current_plan, "
                    "published.plan_versions, published.current_plans_by_week")
        for schema in ("published", STAGING):
            cur.execute(f"alter table {schema}.plans "
                        + ", ".join(f"drop column {column}" for column in added))
    publish_plan(*small_plan("run-after-migration", week + timedelta(days=7)),
                 settings=settings)
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select run_id, solver_status, mip_gap, discount_step from published.plans "
                    "where run_id like 'run-%%-migration' order by plan_week")
        rows = cur.fetchall()
        cur.execute("select mip_gap, discount_step from published.current_plan")  # views too
    # the old row kept, with the defaults of the new columns; the new one filled
    assert [row[0] for row in rows] == ["run-before-migration", "run-after-migration"]
    assert rows[0][2:] == (None, 0.1)
    assert rows[1][1] == "Optimal" and rows[1][2] is not None


@pytest.mark.integration
def test_the_forecast_backtest_is_published_with_its_plan(settings, roles):
    week = date(2026, 6, 1)
    backtest = pd.DataFrame([
        {"week_start": w, "model": m, "rows": 10, "wape": v, "bias": 0.01, "mase": 0.9,
         "quantile_loss": 0.2, "p10_p90_coverage": 0.8}
        for w in ("2026-05-18", "2026-05-25", "overall")
        for m, v in (("model", 0.4), ("seasonal_naive", 0.6), ("lightgbm", 0.45))])
    publish_plan(*small_plan("run-backtest", week), settings=settings, backtest=backtest)
    bi = as_role(settings, roles[1])
    with connect(bi) as conn, conn.cursor() as cur:
        cur.execute("select week_start, model, wape from published.forecast_backtest "
                    "where run_id = 'run-backtest' order by 1, 2")
        rows = cur.fetchall()
    assert len(rows) == 9 and ("overall", "lightgbm", 0.45) in rows
    publish_plan(*small_plan("run-backtest-2", week), settings=settings)  # rerun: a version
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select run_id, count(*) from published.forecast_backtest "
                    "where plan_week = %s group by 1", (week,))
        assert cur.fetchall() == [("run-backtest", 9)]  # the current version has none


def _offer(plan, lines, offer_depth: float, spend: float) -> pd.DataFrame:
    line = lines.iloc[0]
    return pd.DataFrame([{
        "product_id": line["product_id"], "segment_id": 1, "segment_name": "deal seekers",
        "discount_depth": line["discount_depth"], "offer_depth": offer_depth,
        "offer_price": round(line["list_price"] * (1 - offer_depth), 2), "recipients": 3,
        "expected_redemptions": 1.2, "expected_incremental_units": 0.4, "offer_spend": spend,
        "offer_spend_sd": 1.0, "offer_gain": 2.5}])


@pytest.mark.integration
def test_personal_offers_are_published_and_audited(settings):
    week = date(2026, 11, 30)
    plan, lines, targets, forecasts, metrics = small_plan("run-offers", week)
    depth = float(lines["discount_depth"].iloc[0])
    good = _offer(plan, lines, depth + 0.05, 1.0)
    publish_plan(plan, lines, targets, forecasts, metrics, settings=settings, offers=good)
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select product_id, segment_id, offer_depth, expected_incremental_profit "
                    "from published.plan_offers where run_id = 'run-offers'")
        assert cur.fetchall() == [(int(good["product_id"][0]), 1, depth + 0.05, 2.5)]
    before = _published(settings)
    over = _offer(plan, lines, depth + 0.05, plan["budget"] - plan["promotion_cost"] + 1.0)
    cost = float(lines["unit_cost"].iloc[0])
    cheap = _offer(plan, lines, 0.3, 1.0).assign(offer_price=cost)  # no margin left
    for offers, message in ((over, r"'offers within the budget' failed .* more than the budget"),
                            (cheap, r"'offers on promoted lines above the margin floor' failed")):
        args = small_plan("run-offers-bad", week)
        with pytest.raises(PublishAuditError, match=message):
            publish_plan(*args, settings=settings, offers=offers)
        assert _published(settings) == before
