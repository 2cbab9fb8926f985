"""dbt build on the tiny market: every model, data test and unit test passes; marts add up."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from promoflow.settings import Settings
from promoflow.warehouse import connect
from tests.dbt.marts import DbtRun, dbt_env, run_dbt


def _scalar(settings: Settings, sql: str):
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()[0]


@pytest.mark.integration
def test_dbt_build_passes(dbt_build: DbtRun) -> None:
    assert dbt_build.returncode == 0, dbt_build.output[-5000:]
    assert "Completed successfully" in dbt_build.output
    assert dbt_build.seconds < 60, f"dbt build took {dbt_build.seconds:.1f}s on tiny data"


@pytest.mark.integration
def test_product_week_sales_is_a_complete_grid(settings: Settings, dbt_build: DbtRun) -> None:
    products = _scalar(settings, "select count(*) from raw.products")
    weeks = _scalar(
        settings,
        "select (date_trunc('week', max(ordered_at))::date "
        "- date_trunc('week', min(ordered_at))::date) / 7 + 1 from raw.orders",
    )
    rows = _scalar(settings, "select count(*) from marts.product_week_sales")
    zero_weeks = _scalar(settings, "select count(*) from marts.product_week_sales where units = 0")
    assert products > 0 and weeks > 1
    assert rows == products * weeks
    assert zero_weeks > 0


@pytest.mark.integration
def test_units_and_revenue_add_up(settings: Settings, dbt_build: DbtRun) -> None:
    sold_in_marts = _scalar(settings, "select sum(units) from marts.product_week_sales")
    sold_lines = _scalar(settings, "select sum(quantity) from marts.order_lines where quantity > 0")
    sold_raw = _scalar(settings, "select sum(quantity) from raw.order_lines where quantity > 0")
    returned = _scalar(settings, "select sum(returned_units) from marts.product_week_sales")
    returned_raw = _scalar(
        settings, "select -sum(quantity) from raw.order_lines where quantity < 0"
    )
    assert sold_in_marts == sold_lines == sold_raw > 0
    assert returned == returned_raw
    revenue_gap = _scalar(
        settings,
        "select abs((select sum(revenue) from marts.product_week_sales) "
        "- (select sum(quantity * unit_paid_price) from raw.order_lines "
        "where quantity > 0))",
    )
    assert revenue_gap < 1e-6


@pytest.mark.integration
def test_row_counts_follow_raw(settings: Settings, dbt_build: DbtRun) -> None:
    for mart, raw in [
        ("order_lines", "order_lines"),
        ("customers", "customers"),
        ("products", "products"),
    ]:
        assert (
            _scalar(settings, f"select count(*) from marts.{mart}")
            == _scalar(settings, f"select count(*) from raw.{raw}")
            > 0
        )


@pytest.mark.integration
def test_calendar_runs_to_the_week_after_the_plan_week(
    settings: Settings, dbt_build: DbtRun
) -> None:
    gap = _scalar(
        settings,
        "select (select max(week_start) from marts.calendar_weeks) "
        "- date_trunc('week', (select max(ordered_at) from raw.orders))::date",
    )
    assert gap == 14
    assert _scalar(settings, "select bool_or(is_holiday_week) from marts.calendar_weeks")


@pytest.mark.integration
def test_mart_column_types_follow_the_contract(settings: Settings, dbt_build: DbtRun) -> None:
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'marts' and table_name = 'product_week_sales'"
        )
        types = dict(cur.fetchall())
    assert types["week_start"] == "date"
    assert types["units"] == "bigint"
    assert types["discount_depth"] == types["avg_paid_price"] == "double precision"
    assert types["is_promoted"] == "boolean"
    for column in ("promo_price_cut", "promo_display", "promo_mailer", "promo_coupon",
                   "is_stocked_out"):
        assert types[column] == "boolean", column
    assert types["contacted_customers"] == "integer"


@pytest.mark.integration
@pytest.mark.parametrize("promo_type", ["price_cut", "display", "mailer", "coupon"])
def test_promo_type_flags_follow_the_promotions(
    settings: Settings, dbt_build: DbtRun, promo_type: str
) -> None:
    """A product-week is flagged for a type exactly when a promotion of that type overlaps it."""
    expected = f"""
        select distinct p.product_id, w.week_start
        from raw.promotions p
        cross join lateral generate_series(date_trunc('week', p.start_date)::date,
                                           date_trunc('week', p.end_date)::date,
                                           interval '7 days') as w (week_start)
        where p.promo_type = '{promo_type}'
          and w.week_start::date in (select week_start from marts.product_week_sales)
    """
    flagged = (f"select product_id, week_start from marts.product_week_sales "
               f"where promo_{promo_type}")
    for left, right in ((expected, flagged), (flagged, expected)):
        assert _scalar(settings, f"select count(*) from (({left}) except ({right})) d") == 0
    assert _scalar(
        settings,
        f"select count(*) from marts.product_week_sales where promo_{promo_type} "
        "and not is_promoted",
    ) == 0


@pytest.mark.integration
def test_stock_outs_follow_the_inventory_snapshots(settings: Settings, dbt_build: DbtRun) -> None:
    """A product-week is stocked out exactly when a snapshot dated inside it shows 0 on hand."""
    expected = """
        select distinct product_id, date_trunc('week', snapshot_date)::date as week_start
        from raw.inventory
        where on_hand_units = 0
          and date_trunc('week', snapshot_date)::date
              in (select week_start from marts.product_week_sales)
    """
    flagged = "select product_id, week_start from marts.product_week_sales where is_stocked_out"
    for left, right in ((expected, flagged), (flagged, expected)):
        assert _scalar(settings, f"select count(*) from (({left}) except ({right})) d") == 0


@pytest.mark.integration
def test_contacted_customers_follow_the_contact_log(settings: Settings, dbt_build: DbtRun) -> None:
    """A product-week counts the distinct customers sent a message about it in its UTC week (the
    tiny market's history has no send log: 0 everywhere; the dbt unit test has contacts)."""
    expected = """
        select product_id, week_start, count(distinct customer_id) as contacted_customers
        from (select product_id, customer_id, date_trunc('week', sent_at)::date as week_start
              from raw.campaign_contacts) c
        where week_start in (select week_start from marts.product_week_sales)
        group by product_id, week_start
    """
    counted = ("select product_id, week_start, contacted_customers from marts.product_week_sales "
               "where contacted_customers > 0")
    for left, right in ((expected, counted), (counted, expected)):
        assert _scalar(settings, f"select count(*) from (({left}) except ({right})) d") == 0
    assert _scalar(settings, "select count(*) from marts.product_week_sales "
                             "where contacted_customers is null or contacted_customers < 0") == 0


@pytest.mark.integration
def test_contact_consents_hold_the_log_and_the_implied_preferred_channels(
    settings: Settings, dbt_build: DbtRun
) -> None:
    """Every period of the consent log, plus a preferred channel the log has no row for (from
    the signup date, never withdrawn); nothing else (the dbt unit test has implied rows; the
    tiny market logs every preferred channel)."""
    expected = """
        select customer_id, channel, 'consent_log' as source, consented_at as consented_from,
               withdrawn_at
        from raw.contact_consents
        union all
        select c.customer_id, c.preferred_channel, 'preferred_channel', c.signup_date::timestamp,
               null
        from raw.customers c
        where c.preferred_channel is not null and not exists (
            select 1 from raw.contact_consents l
            where l.customer_id = c.customer_id and l.channel = c.preferred_channel)
    """
    mart = ("select customer_id, channel, source, consented_from, withdrawn_at "
            "from marts.contact_consents")
    for left, right in ((expected, mart), (mart, expected)):
        assert _scalar(settings, f"select count(*) from (({left}) except all ({right})) d") == 0
    assert _scalar(settings, "select count(*) from raw.contact_consents") > 0
    assert _scalar(settings, "select count(*) from marts.contact_consents "
                             "where withdrawn_at is not null") > 0
    # a customer without a preferred channel has no consent anywhere in the tiny market
    assert _scalar(settings, "select count(*) from marts.contact_consents m join raw.customers c "
                             "using (customer_id) where c.preferred_channel is null") == 0
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select column_name, data_type from information_schema.columns "
                    "where table_schema = 'marts' and table_name = 'contact_consents'")
        types = dict(cur.fetchall())
    assert types == {"customer_id": "bigint", "channel": "text", "source": "text",
                     "consented_from": "timestamp without time zone",
                     "withdrawn_at": "timestamp without time zone"}


@pytest.mark.integration
def test_products_keep_the_latest_inventory_snapshot(settings: Settings, dbt_build: DbtRun) -> None:
    mismatched = _scalar(
        settings,
        """
        select count(*) from marts.products m
        left join (
            select distinct on (product_id) product_id, snapshot_date, on_hand_units
            from raw.inventory order by product_id, snapshot_date desc
        ) latest using (product_id)
        where m.on_hand_units <> coalesce(latest.on_hand_units, 0)
           or m.inventory_snapshot_date is distinct from latest.snapshot_date
        """,
    )
    assert mismatched == 0


def test_parse_needs_no_database(settings: Settings) -> None:
    """cosmos renders the DAG from the manifest that `dbt parse` writes, with no warehouse."""
    unreachable = replace(settings, pg_host="203.0.113.1", pg_port=1, pg_db="nowhere")
    out_dir = settings.tmp_dir / "dbt_parse"
    run = run_dbt(settings, "parse", env=dbt_env(unreachable), out_dir=out_dir)
    assert run.returncode == 0, run.output[-3000:]
    manifest = json.loads((out_dir / "target" / "manifest.json").read_text())
    models = {
        node["name"] for node in manifest["nodes"].values() if node["resource_type"] == "model"
    }
    assert {
        "order_lines",
        "customers",
        "products",
        "product_week_sales",
        "calendar_weeks",
        "contact_consents",
    } <= models
    assert any(node["resource_type"] == "unit_test" for node in manifest["unit_tests"].values())


@pytest.mark.integration
def test_every_model_has_tests_and_downstream_marts_have_contracts(settings: Settings) -> None:
    out_dir = settings.tmp_dir / "dbt_parse_contracts"
    run = run_dbt(settings, "parse", out_dir=out_dir)
    assert run.returncode == 0, run.output[-3000:]
    manifest = json.loads((out_dir / "target" / "manifest.json").read_text())
    nodes = manifest["nodes"].values()
    models = {n["unique_id"]: n for n in nodes if n["resource_type"] == "model"}
    tested = {parent for n in nodes if n["resource_type"] == "test"
              for parent in n["depends_on"]["nodes"]}
    assert sorted(set(models) - tested) == []
    contracted = {m["name"] for m in models.values() if m["config"]["contract"]["enforced"]}
    assert contracted >= {"order_lines", "customers", "products", "product_week_sales",
                          "calendar_weeks", "contact_consents"}
    sources = manifest["sources"].values()
    assert {s["name"] for s in sources if s["freshness"]["error_after"]["count"]} == {
        "customers", "products", "stores", "orders", "order_lines", "promotions", "inventory",
        "holidays", "campaign_contacts", "contact_consents"}


@pytest.mark.integration
def test_source_freshness_fails_on_a_stale_load(settings: Settings, dbt_build: DbtRun) -> None:
    fresh = run_dbt(settings, "source", "freshness")
    assert fresh.returncode == 0, fresh.output[-3000:]
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("update audit.ingest_runs set loaded_at = loaded_at - interval '2 days' "
                    "where table_name = 'orders'")
    try:
        stale = run_dbt(settings, "source", "freshness")
    finally:
        with connect(settings) as conn, conn.cursor() as cur:
            cur.execute("update audit.ingest_runs set loaded_at = loaded_at + interval '2 days' "
                        "where table_name = 'orders'")
    assert stale.returncode != 0
    assert "ERROR STALE freshness of raw.orders" in stale.output
    assert "PASS freshness of raw.customers" in stale.output
