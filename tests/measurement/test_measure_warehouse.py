"""A plan week measured through the warehouse: the tiny market with one simulated plan week,
ingested and built by dbt in a database of this module, a hand-made plan published for it.
Results land in the three published tables, a rerun replaces them, and a week without sales
is refused with nothing published."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import numpy as np
import pandas as pd
import psycopg2
import pytest

from ingest.load import run_ingest
from measurement.measure import MeasureError, measure_request, measure_week
from publish.publish import publish_plan
from sources.synthetic.generate import generate
from sources.synthetic.simulate import simulate_week
from tests.dbt.marts import run_dbt

WEEK = dt.date(2026, 11, 16)
NEXT = WEEK + dt.timedelta(weeks=1)
DATASET = "measured"


def _admin(settings):
    conn = psycopg2.connect(host=settings.pg_host, port=settings.pg_port, dbname="postgres",
                            user=settings.pg_user, password=settings.pg_password)
    conn.autocommit = True
    return conn


def _plan(products: pd.DataFrame, customers: np.ndarray, week: dt.date, run_id: str):
    """A plan promoting 8 products by 20%, 100 targets each, a fifth of the customers held out."""
    promoted = products.iloc[:8]
    price = (promoted["list_price"] * 0.8).round(2)
    lines = pd.DataFrame({
        "product_id": promoted["product_id"], "product_name": promoted["product_name"],
        "category": promoted["category"], "list_price": promoted["list_price"],
        "unit_cost": promoted["unit_cost"], "discount_depth": 0.2, "promo_price": price,
        "on_hand_units": 500, "baseline_units_p50": 4.0, "units_p10": 3.0, "units_p50": 7.0,
        "units_p90": 11.0, "expected_units": 7.0,
        "promotion_cost": 7.0 * (promoted["list_price"] - price),
        "incremental_revenue": 7.0 * price - 4.0 * promoted["list_price"],
        "incremental_profit": 7.0 * (price - promoted["unit_cost"])
        - 4.0 * (promoted["list_price"] - promoted["unit_cost"]),
        "binding_constraint": "none", "promotion_cost_p90": 0.0, "dip_units": 0.0,
        "dip_cost": 0.0, "cannibalized_units": 0.0, "cannibalization_cost": 0.0,
    }).reset_index(drop=True)
    rng = np.random.default_rng(7)
    held = dict(zip(customers, rng.random(len(customers)) < 0.2))
    targets = pd.DataFrame(
        [(p, c, 1.0 / (r + 1), r + 1, "holdout" if held[c] else "treatment", "email")
         for p in lines["product_id"]
         for r, c in enumerate(rng.choice(customers, 100, replace=False))],
        columns=["product_id", "customer_id", "score", "rank", "assignment", "channel"])
    levels = [(p, d) for p in products["product_id"] for d in (0.0, 0.2)]
    forecasts = pd.DataFrame(levels, columns=["product_id", "discount_depth"]).assign(
        units_p10=lambda f: np.where(f["discount_depth"] > 0, 3.0, 1.0),
        units_p50=lambda f: np.where(f["discount_depth"] > 0, 7.0, 4.0),
        units_p90=lambda f: np.where(f["discount_depth"] > 0, 11.0, 8.0))
    metrics = pd.DataFrame(columns=["model", "metric", "model_value", "baseline", "baseline_value"])
    plan = {"run_id": run_id, "plan_week": week.isoformat(), "dataset": DATASET,
            "budget": 10_000.0, "max_discount": 0.3, "discount_step": 0.1, "margin_floor": 0.0,
            "max_promos_per_category": 10, "audience_size": 100, "holdout_fraction": 0.2,
            "seed": 7, "products_considered": len(products), "products_promoted": len(lines),
            "promotion_cost": float(lines["promotion_cost"].sum()),
            "expected_incremental_revenue": float(lines["incremental_revenue"].sum()),
            "expected_incremental_profit": float(lines["incremental_profit"].sum()),
            "solver_status": "Optimal", "mip_gap": 0.0}
    return plan, lines, targets, forecasts, metrics


@pytest.fixture(scope="module")
def measured(settings):
    # the session's work folder (its role passwords; the dataset has its own landing folder)
    s = dataclasses.replace(settings, pg_db=f"{settings.pg_db}_m{uuid.uuid4().hex[:4]}")
    conn = _admin(s)
    with conn.cursor() as cur:
        cur.execute(f'create database "{s.pg_db}"')
    conn.close()
    landing, truth_dir = s.landing_dir / DATASET, s.ground_truth_dir / DATASET
    generate("tiny", landing, truth_dir, seed=42)
    products = pd.read_csv(landing / "products.csv")
    customers = pd.read_csv(landing / "customers.csv")["customer_id"].to_numpy()
    plan, lines, targets, forecasts, metrics = _plan(products, customers, WEEK, "measure_week_1")
    summary = simulate_week(landing, truth_dir, WEEK, lines, targets, seed=42)
    run_ingest(landing, "measure_ingest", s)
    assert run_dbt(s, "build").returncode == 0
    publish_plan(plan, lines, targets, forecasts, metrics, s)
    nxt = _plan(products, customers, NEXT, "measure_week_2")
    publish_plan(*nxt, s)
    yield s, summary, lines
    conn = _admin(s)
    with conn.cursor() as cur:
        cur.execute(f'drop database if exists "{s.pg_db}" with (force)')
    conn.close()


def _rows(s, sql, args=None):
    conn = psycopg2.connect(**s.psycopg_kwargs())
    with conn, conn.cursor() as cur:
        cur.execute(sql, args)
        rows = cur.fetchall()
    conn.close()
    return rows


def _counts(s):
    return [_rows(s, f"select count(*) from published.{t} where dataset = %s and plan_week = %s",
                  (DATASET, WEEK))[0][0]
            for t in ("plan_results", "experiment_results", "forecast_accuracy")]


@pytest.mark.integration
def test_a_measured_week_is_published(measured):
    s, truth, lines = measured
    summary = measure_week(DATASET, WEEK, s)
    results, effects, accuracy = _counts(s)
    assert results == len(lines) and accuracy == 1
    assert effects >= 2  # overall purchase rate and spend, then per product where it can
    actual = dict(_rows(s, "select product_id, actual_units from published.plan_results "
                        "where plan_week = %s", (WEEK,)))
    # the week's units as the market sold them (its truth), through ingest, dbt and publish
    effects = pd.read_csv(s.ground_truth_dir / DATASET / "weeks" / WEEK.isoformat()
                          / "plan_effects.csv").set_index("product_id")
    assert actual == {p: float(effects.loc[p, "sold_units"]) for p in lines["product_id"]}
    ((low, high, n_t, n_c),) = _rows(s, "select ci_low, ci_high, treated_n, control_n from "
                                     "published.experiment_results where scope = 'overall' "
                                     "and metric = 'purchase_rate' and plan_week = %s", (WEEK,))
    assert n_t + n_c == 800
    assert low < summary["effect"] < high
    assert truth["true_contact_effect"] > 0


@pytest.mark.integration
def test_measuring_again_replaces_the_rows(measured):
    s, _, _ = measured
    measure_week(DATASET, WEEK, s)
    first = _counts(s)
    again = measure_request(DATASET, "", s)  # every week with sales: the one week
    assert [week["plan_week"] for week in again] == [WEEK.isoformat()]
    assert _counts(s) == first
    (dupes,) = _rows(s, "select count(*) from (select 1 from published.experiment_results "
                     "group by dataset, plan_week, scope, product_id, metric "
                     "having count(*) > 1) d")[0]
    assert dupes == 0


@pytest.mark.integration
def test_the_bi_role_reads_the_results(measured):
    from local.roles import ensure_roles

    s, _, _ = measured
    measure_week(DATASET, WEEK, s)
    _, bi = ensure_roles(s)
    conn = psycopg2.connect(host=s.pg_host, port=s.pg_port, dbname=s.pg_db, user=bi.user,
                            password=bi.password)
    with conn, conn.cursor() as cur:
        for table in ("plan_results", "experiment_results", "forecast_accuracy"):
            cur.execute(f"select count(*) from published.{table}")
            assert cur.fetchone()[0] > 0
    conn.close()


@pytest.mark.integration
def test_a_week_without_sales_is_refused(measured):
    s, _, _ = measured
    with pytest.raises(MeasureError, match=f"The week of {NEXT} has no sales in the warehouse yet"):
        measure_week(DATASET, NEXT, s)
    assert _rows(s, "select count(*) from published.plan_results where plan_week = %s",
                 (NEXT,))[0][0] == 0
    with pytest.raises(MeasureError, match="No published plan of dataset other"):
        measure_week("other", WEEK, s)


@pytest.mark.integration
def test_the_measured_effect_and_the_contacts_feed_the_next_run(measured):
    """The next plan counts the measured effect (planning/contacts.py), and the campaign's
    send log reaches the product-week mart the forecaster trains on."""
    from planning.contacts import NO_EFFECT, measured_contact_effect

    s, _, lines = measured
    measure_week(DATASET, WEEK, s)
    ((difference,),) = _rows(s, "select difference from published.experiment_results where "
                             "scope = 'overall' and metric = 'purchase_rate' and plan_week = %s "
                             "and dataset = %s", (WEEK, DATASET))
    pooled = measured_contact_effect(DATASET, NEXT, s)
    assert pooled.weeks == 1 and pooled.effect == pytest.approx(max(difference, 0.0))
    assert measured_contact_effect(DATASET, WEEK, s) == NO_EFFECT  # nothing measured before
    assert measured_contact_effect("other", NEXT, s) == NO_EFFECT
    contacts = pd.read_csv(s.ground_truth_dir / DATASET / "weeks" / WEEK.isoformat()
                           / "contact_effects.csv")
    sent = contacts[(contacts["assignment"] == "treatment") & contacts["reached"]]
    expected = sent.groupby("product_id").size().to_dict()
    in_mart = dict(_rows(s, "select product_id, contacted_customers from "
                         "marts.product_week_sales where week_start = %s and "
                         "contacted_customers > 0", (WEEK,)))
    assert in_mart == expected and set(in_mart) <= set(lines["product_id"])
    assert _rows(s, "select count(*) from marts.product_week_sales where week_start < %s and "
                 "contacted_customers > 0", (WEEK,))[0][0] == 0


@pytest.mark.integration
def test_the_weekly_flow_measures_the_weeks_before_its_plan_week(measured):
    """promo_weekly's `measure` task: the weeks with sales before the plan week, not the plan
    week itself; another dataset's warehouse measures nothing."""
    from measurement.measure import measure_before_planning
    from promoflow.run import Run, RunParams

    s, _, _ = measured
    done = measure_before_planning(Run("next", RunParams(dataset=DATASET, plan_week=NEXT)), s)
    assert [week["plan_week"] for week in done] == [WEEK.isoformat()]
    assert measure_before_planning(Run("same", RunParams(dataset=DATASET, plan_week=WEEK)),
                                   s) == []
    assert measure_before_planning(Run("other", RunParams(dataset="other", plan_week=NEXT)),
                                   s) == []
