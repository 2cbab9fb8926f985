"""The whole weekly DAG, in-process on the tiny market, checked through the published tables."""

import pytest

from local.runner import run_weekly
from promoflow.warehouse import connect

BUDGET = 400.0
MARGIN_FLOOR = 0.05
AUDIENCE = 250  # more than the recommender's former fixed 200, fewer than the 300 customers


@pytest.fixture(scope="module")
def published(settings, tiny_landing):
    conf = {"dataset": tiny_landing.name, "plan_week": "", "budget": BUDGET, "max_discount": 0.3,
            "margin_floor": MARGIN_FLOOR, "max_promos_per_category": 3, "audience_size": AUDIENCE,
            "holdout_fraction": 0.2, "epochs": 0, "seed": 42}
    return run_weekly(conf, settings)


def _rows(settings, sql, args=None):
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


@pytest.mark.integration
def test_plan_is_published_and_within_budget(settings, published):
    assert published["products_promoted"] > 0
    assert published["promotion_cost"] <= BUDGET + 1e-6
    run_id = published["run_id"]
    (cost,) = _rows(settings, "select sum(promotion_cost) from published.plan_lines where run_id = %s",
                    (run_id,))[0]
    assert 0 < cost <= BUDGET + 1e-6
    assert _rows(settings, "select count(*) from published.current_plan_lines l join "
                 "published.current_plan p using (run_id) where p.dataset = 'tiny'"
                 )[0][0] == published["products_promoted"]


@pytest.mark.integration
def test_every_promoted_product_reaches_its_audience(settings, published):
    sizes = _rows(settings, "select product_id, count(*) from published.plan_targets "
                  "where run_id = %s group by product_id", (published["run_id"],))
    assert len(sizes) == published["products_promoted"]
    assert {count for _, count in sizes} == {AUDIENCE}


@pytest.mark.integration
def test_solver_status_and_gap_are_published(settings, published):
    ((status, gap),) = _rows(settings, "select solver_status, mip_gap from published.plans "
                             "where run_id = %s", (published["run_id"],))
    assert status == "Optimal"
    assert gap is not None and 0 <= gap < 1e-3  # HiGHS stops at a relative gap of 1e-4


@pytest.mark.integration
def test_no_price_below_the_margin_floor(settings, published):
    rows = _rows(settings, "select promo_price, unit_cost, discount_depth, list_price "
                 "from published.plan_lines where run_id = %s", (published["run_id"],))
    for promo_price, unit_cost, depth, list_price in rows:
        assert (promo_price - unit_cost) / promo_price >= MARGIN_FLOOR - 1e-9
        assert 0 < depth <= 0.3 + 1e-9
        assert abs(promo_price - round(list_price * (1 - depth), 2)) < 0.011


@pytest.mark.integration
def test_treatment_and_holdout_are_disjoint(settings, published):
    rows = _rows(settings, "select customer_id, assignment from published.plan_targets where run_id = %s",
                 (published["run_id"],))
    treated = {c for c, a in rows if a == "treatment"}
    held = {c for c, a in rows if a == "holdout"}
    assert treated and held
    assert not treated & held


@pytest.mark.integration
def test_no_personal_offer_before_any_measured_contact_effect(settings, published):
    """A coupon's redemptions are mostly the contacted buyers': before a holdout has measured
    them, the plan makes no offer (the offers' own rules: tests/planning/test_offers.py)."""
    run_id = published["run_id"]
    assert published["offers"] == 0
    assert _rows(settings, "select count(*) from published.plan_offers where run_id = %s",
                 (run_id,))[0][0] == 0
    assert _rows(settings, "select count(*) from published.plan_targets where run_id = %s and "
                 "offer_depth is not null", (run_id,))[0][0] == 0


@pytest.mark.integration
def test_ingest_accounting_holds(settings, published, tiny_landing):
    rows = _rows(settings, "select table_name, input_rows, loaded_rows, quarantined_rows "
                 "from audit.ingest_runs where run_id = (select max(run_id) from audit.ingest_runs)")
    assert {r[0] for r in rows} >= {"customers", "products", "orders", "order_lines", "promotions", "inventory"}
    for table, input_rows, loaded, quarantined in rows:
        assert input_rows == loaded + quarantined, table
        path = tiny_landing / f"{table}.csv"
        if not path.exists():  # an optional table without a file (the send log) loads nothing
            assert input_rows == 0, table
            continue
        with open(path, encoding="utf-8") as handle:
            assert input_rows == sum(1 for _ in handle) - 1, table
        assert _rows(settings, f"select count(*) from raw.{table}")[0][0] == loaded


@pytest.mark.integration
def test_models_are_logged_against_their_baselines(settings, published):
    rows = _rows(settings, "select model, metric, model_value, baseline_value from published.model_metrics "
                 "where run_id = %s", (published["run_id"],))
    models = {r[0] for r in rows}
    # the champion's rows, and each recommender candidate's next to popularity's
    assert models == {"forecaster", "recommender", *(f"recommender/{name}" for name in (
        "popularity", "item_knn", "ease", "two_tower", "sequence"))}
    assert all(r[2] is not None and r[3] is not None for r in rows)


PUBLISHED_TABLES = {
    "plans": "plan_week",
    "plan_lines": "product_id",
    "plan_targets": "product_id, customer_id",
    "plan_offers": "product_id, segment_id",
    "forecasts": "product_id, discount_depth",
    "model_metrics": "model, metric",
    "segment_profiles": "segment_id",
    "customer_segments": "customer_id",
}


def _published_rows(settings, run_id):
    """Every published row of a run in key order, without run_id and published_at (when the plan
    became visible)."""
    tables = {}
    for table, key in PUBLISHED_TABLES.items():
        columns = [r[0] for r in _rows(
            settings, "select column_name from information_schema.columns where table_schema = "
            "'published' and table_name = %s and column_name not in ('run_id', 'published_at') "
            "order by ordinal_position", (table,))]
        tables[table] = _rows(settings, f"select {', '.join(columns)} from published.{table} "
                              f"where run_id = %s order by {key}", (run_id,))
    return tables


@pytest.mark.integration
def test_rerunning_the_week_publishes_an_identical_new_version(settings, published):
    first = _published_rows(settings, published["run_id"])
    conf = {"dataset": "tiny", "plan_week": str(published["plan_week"]), "budget": BUDGET,
            "max_discount": 0.3, "margin_floor": MARGIN_FLOOR, "max_promos_per_category": 3,
            "audience_size": AUDIENCE, "holdout_fraction": 0.2, "epochs": 0, "seed": 42}
    again = run_weekly(conf, settings)
    assert again["run_id"] != published["run_id"]
    assert _published_rows(settings, again["run_id"]) == first
    # the rerun is a new version, the current one; the first run's version keeps its rows
    assert _rows(settings, "select run_id from published.current_plans where dataset = 'tiny' "
                 "and plan_week = %s", (published["plan_week"],)) == [(again["run_id"],)]
    assert _rows(settings, "select run_id from published.plan_versions where dataset = 'tiny' "
                 "and plan_week = %s and run_id in (%s, %s) order by published_at",
                 (published["plan_week"], published["run_id"], again["run_id"])) == [
                     (published["run_id"],), (again["run_id"],)]
    assert _published_rows(settings, published["run_id"]) == first


@pytest.mark.integration
def test_summary_says_how_much_data_each_model_had(settings, published):
    from local.runner import model_lines

    lines = model_lines(settings.runs_dir / published["run_id"])
    assert len(lines) == 12
    assert "forecaster" in lines[1] and "product-weeks" in lines[1]
    assert "backtest over 8 weeks" in lines[2] and "lightgbm" in lines[2]
    assert "calibration at discount 0" in lines[3]
    assert "recommender" in lines[4] and "popularity" in lines[4]
    assert [line.split()[0] for line in lines[6:11]] == [
        "popularity", "item_knn", "ease", "two_tower", "sequence"]
    assert "champion" in lines[11]


@pytest.mark.integration
def test_the_plan_is_scored_on_the_ground_truth(settings, published):
    from local.runner import score_lines
    from scoring.score import latest_run_id

    run_id = latest_run_id("tiny", settings)  # the rerun test may have replaced the first run
    lines = score_lines(run_id, settings)
    assert [line.split()[0] for line in lines[2:]] == ["plan", "no_promotion", "simple_rule",
                                                       "oracle"]
    rows = dict(_rows(settings, "select policy, efficiency from published.plan_scores "
                      "where run_id = %s", (run_id,)))
    assert rows["oracle"] == 1.0 and rows["no_promotion"] == 0.0
    assert rows["plan"] is not None and rows["plan"] <= 1.0 + 1e-9


@pytest.mark.integration
def test_a_replayed_week_gives_the_plan_of_its_original_run(settings, published, tiny_landing):
    """The plan week happens (simulated) and is delivered to a copy of the landing folder;
    replayed as of the week's Monday, the copy gives the original run's plan lines."""
    import shutil

    import pandas as pd

    from promoflow.run import RunFolder
    from sources.synthetic.simulate import simulate_week

    week = published["plan_week"]
    lines = ("select product_id, discount_depth, promo_price, units_p10, units_p50, units_p90, "
             "promotion_cost, expected_incremental_profit, binding_constraint "
             "from published.plan_lines where run_id = %s order by product_id")
    original = _rows(settings, lines, (published["run_id"],))
    later = settings.landing_dir / "tiny_later"
    truth = settings.ground_truth_dir / "tiny_later"
    shutil.copytree(tiny_landing, later)
    shutil.copytree(settings.ground_truth_dir / "tiny", truth)
    folder = RunFolder(settings.runs_dir / published["run_id"])
    simulate_week(later, truth, week, pd.read_parquet(folder.plan_lines),
                  pd.read_parquet(folder.plan_targets), seed=42)
    conf = {"dataset": "tiny_later", "plan_week": str(week), "as_of": str(week),
            "budget": BUDGET, "max_discount": 0.3, "margin_floor": MARGIN_FLOOR,
            "max_promos_per_category": 3, "audience_size": AUDIENCE, "holdout_fraction": 0.2,
            "epochs": 0, "seed": 42}
    replay = run_weekly(conf, settings)
    ((later_orders,),) = _rows(settings, "select later_rows from audit.ingest_runs "
                               "where run_id = %s and table_name = 'orders'", (replay["run_id"],))
    assert later_orders > 0  # the delivered week was there, and left out
    assert _rows(settings, lines, (replay["run_id"],)) == original
