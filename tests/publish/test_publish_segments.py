"""Customer segments published with the plan: write-audit-publish, BI access, old run folders."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from local.roles import as_role
from promoflow.run import Run, RunParams
from promoflow.warehouse import connect
from publish.publish import (
    CUSTOMER_SEGMENT_COLUMNS,
    SEGMENT_PROFILE_COLUMNS,
    PublishAuditError,
    publish_plan,
    publish_run,
)
from tests.publish.plans import small_plan

# names that need quoting in a PostgreSQL array literal
FEATURES = ["log_orders", "promo_share", 'category:Home, "Garden"', "category:back\\slash"]


def segment_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(profiles, customers) of three segments, segment 0 included."""
    base = {"avg_monetary_value_52w": 100.0, "avg_frequency_orders_52w": 5.0,
            "avg_basket_units": 1.3, "promo_share": 0.3, "promo_depth": 0.2,
            "avg_price_index": 0.9, "price_tier": "mid", "web_share": 0.5, "app_share": 0.3,
            "store_share": 0.2, "top_categories": "home 40%, toys 20%, books 10%",
            "new_share": 0.0, "active_share": 1.0, "lapsing_share": 0.0, "churned_share": 0.0,
            "centroid_features": FEATURES}
    profiles = pd.DataFrame([
        {**base, "segment_id": 0, "segment_name": "no recent purchases", "customers": 1,
         "share": 0.25, "avg_price_index": None, "price_tier": None, "centroid": None,
         "centroid_features": None, "new_share": 1.0, "active_share": 0.0},
        {**base, "segment_id": 3, "segment_name": "store regulars", "customers": 2, "share": 0.5,
         "centroid": [1.5, 0.25, 0.5, 0.0]},
        {**base, "segment_id": 5, "segment_name": "occasional shoppers", "customers": 1,
         "share": 0.25, "centroid": [0.5, 0.125, 0.25, 1.0]},
    ])[SEGMENT_PROFILE_COLUMNS[2:]]
    customers = pd.DataFrame({"customer_id": [1000, 1001, 1002, 1003],
                              "segment_id": [3, 0, 5, 3],
                              "lifecycle": ["active", "new", "lapsing", "churned"]})
    return profiles, customers


def _rows(settings, query: str, *args) -> list[tuple]:
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute(query, args)
        return cur.fetchall()


@pytest.mark.integration
def test_segments_are_published_with_the_plan_and_bi_reads_them(settings, roles):
    week = date(2027, 3, 1)
    profiles, customers = segment_frames()
    publish_plan(*small_plan("run-segments", week), settings=settings,
                 segment_profiles=profiles, customer_segments=customers)
    bi = as_role(settings, roles[1])
    assert _rows(bi, "select customer_id, segment_id, lifecycle from published.customer_segments "
                     "where run_id = 'run-segments' order by 1") == [
        (1000, 3, "active"), (1001, 0, "new"), (1002, 5, "lapsing"), (1003, 3, "churned")]
    published = _rows(bi, "select segment_id, segment_name, customers, centroid, "
                          "centroid_features, plan_week from published.segment_profiles "
                          "where run_id = 'run-segments' order by 1")
    assert published == [
        (0, "no recent purchases", 1, None, None, week),
        (3, "store regulars", 2, [1.5, 0.25, 0.5, 0.0], FEATURES, week),
        (5, "occasional shoppers", 1, [0.5, 0.125, 0.25, 1.0], FEATURES, week)]
    for view in ("current_customer_segments", "current_segment_profiles"):
        current = _rows(bi, f"select count(*) from published.{view} v join published.plans p "
                            "using (run_id) where p.plan_week = v.plan_week")
        assert _rows(bi, f"select count(*) from published.{view}") == current
    # what BI reads of a customer: an id, the segment and the lifecycle stage
    assert [r[0] for r in _rows(
        bi, "select column_name from information_schema.columns where table_schema = "
            "'published' and table_name = 'customer_segments' order by ordinal_position")
    ] == CUSTOMER_SEGMENT_COLUMNS
    # the plan week published again without segments: its current version has none, the
    # earlier version keeps its own
    publish_plan(*small_plan("run-segments-2", week), settings=settings)
    assert _rows(settings, "select count(*) from published.customer_segments c "
                           "join published.current_plans p using (run_id) "
                           "where p.plan_week = %s", week) == [(0,)]
    assert _rows(settings, "select count(*) from published.customer_segments "
                           "where run_id = 'run-segments'") == [(4,)]


def _unknown_segment(profiles, customers):
    customers.loc[0, "segment_id"] = 9


def _wrong_size(profiles, customers):
    profiles.loc[1, "customers"] = 3


def _bad_lifecycle(profiles, customers):
    customers.loc[2, "lifecycle"] = "dormant"


def _duplicate_customer(profiles, customers):
    customers.loc[len(customers)] = customers.iloc[0]


@pytest.mark.integration
@pytest.mark.parametrize("spoil, message", [
    (_unknown_segment, r"'segments have profiles' failed .*customer 1000 is in segment 9, "),
    (_wrong_size, r"'segment sizes' failed .*segment 3 counts 3 customers .* but 2 are in it"),
    (_bad_lifecycle, r"'valid lifecycle' failed .*customer 1002 has lifecycle 'dormant'"),
    (_duplicate_customer, r"'no duplicate keys' failed .*customer_segments has more than one"),
])
def test_a_bad_segment_row_fails_the_audit(settings, spoil, message):
    week = date(2027, 3, 8)
    publish_plan(*small_plan("run-segments-good", week), settings=settings)
    profiles, customers = segment_frames()
    spoil(profiles, customers)
    with pytest.raises(PublishAuditError, match=message):
        publish_plan(*small_plan("run-segments-bad", week), settings=settings,
                     segment_profiles=profiles, customer_segments=customers)
    assert _rows(settings, "select run_id from published.plans where plan_week = %s",
                 week) == [("run-segments-good",)]


@pytest.mark.integration
def test_a_run_folder_without_segment_files_publishes_no_segment_rows(settings):
    week = date(2027, 3, 15)
    run = Run("run-folder-segments", RunParams(dataset="unit", plan_week=week))
    folder = run.folder(settings)
    plan, lines, targets, forecasts, _ = small_plan(run.run_id, week)
    folder.write_json(folder.plan, plan)
    lines.to_parquet(folder.plan_lines)
    targets.to_parquet(folder.plan_targets)
    forecasts.to_parquet(folder.forecasts)
    publish_run(run, settings)  # a folder written before segmentation existed
    count = ("select (select count(*) from published.segment_profiles where run_id = %s), "
             "(select count(*) from published.customer_segments where run_id = %s)")
    assert _rows(settings, count, run.run_id, run.run_id) == [(0, 0)]

    profiles, customers = segment_frames()
    profiles.to_parquet(folder.segment_profiles)
    customers.assign(frequency_orders_52w=1).to_parquet(folder.customer_segments)
    publish_run(run, settings)
    assert _rows(settings, count, run.run_id, run.run_id) == [(3, 4)]
