"""The whole weekly DAG on a slice of real retail data: 200 households of The Complete Journey."""

import json
from datetime import date

import pytest

from local.runner import model_lines, run_weekly
from promoflow.warehouse import connect
from sources.completejourney import import_completejourney

BUDGET = 300.0
MAX_DISCOUNT = 0.3
MARGIN_FLOOR = 0.05
PER_CATEGORY = 3
AUDIENCE = 20


def _rows(settings, sql, args=None):
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


@pytest.fixture(scope="module")
def cj_landing(settings):
    out_dir = settings.landing_dir / "cj200"
    report = import_completejourney(out_dir, households=200, seed=42)
    return out_dir, report


@pytest.fixture(scope="module")
def published(settings, cj_landing):
    conf = {"dataset": cj_landing[0].name, "plan_week": "", "budget": BUDGET,
            "max_discount": MAX_DISCOUNT, "margin_floor": MARGIN_FLOOR,
            "max_promos_per_category": PER_CATEGORY, "audience_size": AUDIENCE,
            "holdout_fraction": 0.2, "epochs": 5, "seed": 42}  # few epochs: a smoke run
    return run_weekly(conf, settings)


@pytest.mark.integration
def test_the_plan_of_the_real_data_is_published(settings, published):
    (dataset, week), = _rows(settings, "select dataset, plan_week from published.plans where run_id = %s",
                             (published["run_id"],))
    assert dataset == "cj200"
    # the week after the data: Sunday-evening baskets of 2017-12-31 (Monday in UTC) stay in the
    # stores' week of 2017-12-25
    assert week == date(2018, 1, 1)
    (local_weeks,) = _rows(settings, "select count(distinct week_start) from marts.order_lines "
                           "where store_id is not null")[0]
    assert local_weeks <= 53
    assert published["products_promoted"] > 0


@pytest.mark.integration
def test_the_plan_respects_budget_margin_discount_and_category_limits(settings, published):
    rows = _rows(settings, "select category, promo_price, unit_cost, discount_depth, list_price, "
                 "promotion_cost from published.plan_lines where run_id = %s", (published["run_id"],))
    assert rows
    assert 0 < sum(r[5] for r in rows) <= BUDGET + 1e-6
    per_category = {}
    for category, promo_price, unit_cost, depth, list_price, _ in rows:
        assert (promo_price - unit_cost) / promo_price >= MARGIN_FLOOR - 1e-9
        assert 0 < depth <= MAX_DISCOUNT + 1e-9
        assert abs(promo_price - round(list_price * (1 - depth), 2)) < 0.011
        per_category[category] = per_category.get(category, 0) + 1
    assert max(per_category.values()) <= PER_CATEGORY


@pytest.mark.integration
def test_no_household_is_targeted_without_contact_consent(settings, published, cj_landing):
    """The Complete Journey holds no contact consent: the plan promotes products but targets no
    household, neither treated nor held out."""
    promoted = _rows(settings, "select count(*) from published.plan_lines where run_id = %s",
                     (published["run_id"],))[0][0]
    targets = _rows(settings, "select count(*) from published.plan_targets where run_id = %s",
                    (published["run_id"],))[0][0]
    assert promoted > 0 and targets == 0
    assert not (cj_landing[0] / "contact_consents.csv").exists()


@pytest.mark.integration
def test_the_import_is_loaded_without_quarantine(settings, published, cj_landing):
    report = cj_landing[1]
    rows = _rows(settings, "select table_name, input_rows, loaded_rows, quarantined_rows "
                 "from audit.ingest_runs where run_id = %s", (published["run_id"],))
    loaded = {table: (input_rows, loaded_rows, quarantined) for table, input_rows, loaded_rows, quarantined in rows}
    for table, counts in report["tables"].items():
        assert loaded[table] == (counts["rows_out"], counts["rows_out"], 0), table
    assert json.loads((cj_landing[0] / "import_report.json").read_text())["rows_out"] == report["rows_out"]


@pytest.mark.integration
def test_sparse_models_still_report_against_their_baselines(settings, published):
    rows = _rows(settings, "select model, metric, model_value, baseline_value from published.model_metrics "
                 "where run_id = %s", (published["run_id"],))
    assert {r[0].split("/")[0] for r in rows} == {"forecaster", "recommender"}
    assert all(r[2] is not None and r[3] is not None for r in rows)
    lines = model_lines(settings.runs_dir / published["run_id"])
    assert "forecaster" in lines[1] and "product-weeks" in lines[1]
    assert "recommender" in lines[-1] and "backtest" in lines[2]
