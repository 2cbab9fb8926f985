"""Customer segments: MLlib clustering of hand-made profiles, stable ids, names, the stage."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import DataFrame, SparkSession

from promoflow.run import Run, RunParams
from promoflow.settings import Settings
from promoflow.warehouse import connect
from scoring.segments import adjusted_rand_index
from spark_jobs.customer_profiles import COLUMNS
from spark_jobs.customer_segments import (
    NO_PURCHASES,
    NO_PURCHASES_NAME,
    SEGMENT_PROFILE_COLUMNS,
    PreviousSegments,
    SegmentationError,
    build_segments,
    match_segment_ids,
    name_segments,
    segment_customers,
)

PLAN = date(2024, 6, 3)
PROFILE_SCHEMA = (
    "customer_id long, plan_week date, recency_days long, tenure_days long, "
    "frequency_orders_52w long, monetary_value_52w double, basket_units double, "
    "price_index double, price_tier string, promo_share double, promo_depth double, "
    "web_share double, app_share double, store_share double, "
    "category_shares map<string,double>, top_category string, lifecycle string"
)
# group -> (orders, spend, promo share, (web, app, store), favourite category)
GROUPS = {
    "deal app": (20, 600.0, 0.7, (0.1, 0.8, 0.1), "toys"),
    "web spenders": (40, 3000.0, 0.2, (0.8, 0.1, 0.1), "garden"),
    "store": (30, 1200.0, 0.3, (0.05, 0.1, 0.85), "home"),
    "occasional": (3, 100.0, 0.3, (0.4, 0.3, 0.3), "books"),
}
PER_GROUP = 30


def hand_made_profiles(spark: SparkSession, seed: int = 0) -> tuple[DataFrame, dict[int, str]]:
    """Four groups of buyers with noise, and five customers without purchases; the profiles and
    each customer's group."""
    rng = np.random.default_rng(seed)
    rows, group_of = [], {}
    categories = [g[4] for g in GROUPS.values()]
    for g, (name, (orders, spend, promo, channels, favourite)) in enumerate(GROUPS.items()):
        for i in range(PER_GROUP):
            customer = 1000 * (g + 1) + i
            group_of[customer] = name
            n = max(1, int(orders * rng.uniform(0.8, 1.2)))
            mix = np.clip(np.array(channels) + rng.normal(0, 0.05, 3), 0, None)
            taste = {c: 0.1 + rng.uniform(0, 0.05) for c in categories}
            taste[favourite] = 0.7
            total = sum(taste.values())
            rows.append((customer, PLAN, 7, 700, n, spend * rng.uniform(0.8, 1.2),
                         1.3 + rng.normal(0, 0.05), 0.9, "mid",
                         float(np.clip(promo + rng.normal(0, 0.05), 0, 1)), 0.2,
                         *(float(v) for v in mix / mix.sum()),
                         {c: v / total for c, v in taste.items()}, favourite, "active"))
    for customer in range(1, 6):
        rows.append((customer, PLAN, None, 30, 0, 0.0, 0.0, None, None, 0.0, 0.0, 0.0, 0.0,
                     0.0, {}, "none", "new"))
    return spark.createDataFrame(rows, PROFILE_SCHEMA).select(COLUMNS), group_of


def assignments(result) -> dict[int, int]:
    return {row["customer_id"]: row["segment_id"]
            for row in result.customers.select("customer_id", "segment_id").collect()}


@pytest.fixture(scope="module")
def profiles(spark: SparkSession):
    frame, group_of = hand_made_profiles(spark)
    return frame.cache(), group_of


@pytest.fixture(scope="module")
def first(profiles):
    return build_segments(profiles[0], seed=42)


def test_the_groups_are_found_and_named(first, profiles) -> None:
    _, group_of = profiles
    ids = assignments(first)
    assert first.k == 4 and max(first.calinski_harabasz, key=first.calinski_harabasz.get) == 4
    assert adjusted_rand_index([group_of[c] for c in group_of], [ids[c] for c in group_of]) == 1.0
    assert all(ids[c] == NO_PURCHASES for c in range(1, 6))
    table = first.profiles
    assert list(table.columns) == SEGMENT_PROFILE_COLUMNS
    assert list(table["segment_id"]) == [0, 1, 2, 3, 4]  # 0 first, new ids by size
    assert table["customers"].tolist() == [5] + [PER_GROUP] * 4
    assert table["share"].sum() == pytest.approx(1.0)
    name_of = {group_of[c]: table.set_index("segment_id").loc[ids[c], "segment_name"]
               for c in group_of}
    assert name_of == {"deal app": "deal-driven app shoppers",
                       "web spenders": "high-value web shoppers",
                       "store": "store regulars", "occasional": "occasional shoppers"}
    zero = table.iloc[0]
    assert zero["segment_name"] == NO_PURCHASES_NAME and zero["new_share"] == 1.0
    assert zero["centroid"] is None and table["centroid"].iloc[1:].map(len).nunique() == 1
    assert table.loc[1, "top_categories"].count("%") == 3


def test_a_sample_finds_the_groups_and_every_buyer_gets_its_nearest(first, profiles) -> None:
    _, group_of = profiles
    sampled = build_segments(profiles[0], seed=42, sample_size=80)  # 2/3 of the 120 buyers
    ids = assignments(sampled)
    assert sampled.k == 4
    assert adjusted_rand_index([group_of[c] for c in group_of], [ids[c] for c in group_of]) == 1.0
    assert all(ids[c] == NO_PURCHASES for c in range(1, 6))
    assert sampled.profiles["customers"].tolist() == [5] + [PER_GROUP] * 4
    again = build_segments(profiles[0], seed=42, sample_size=80)
    assert assignments(again) == ids


def test_segments_are_deterministic_for_a_seed(first, profiles) -> None:
    again = build_segments(profiles[0], seed=42)
    assert assignments(again) == assignments(first)
    pd.testing.assert_frame_equal(again.profiles, first.profiles)


def test_ids_stay_when_the_same_clusters_come_back_permuted(first, profiles) -> None:
    table = first.profiles[first.profiles["segment_id"] != NO_PURCHASES].iloc[::-1]
    renamed = {1: 12, 2: 14, 3: 11, 4: 13}
    previous = PreviousSegments(ids=[renamed[i] for i in table["segment_id"]],
                                features=list(table["centroid_features"]),
                                centroids=list(table["centroid"]), max_id=20)
    again = build_segments(profiles[0], seed=7, previous=previous)  # other seed, other order
    before, after = assignments(first), assignments(again)
    assert after == {c: renamed.get(i, i) for c, i in before.items()}


def test_match_segment_ids_permuted_new_and_unmatched() -> None:
    features = ["x", "y"]
    old = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    previous = PreviousSegments(ids=[3, 1, 2], features=[features] * 3,
                                centroids=old.tolist(), max_id=6)
    scale = np.ones(2)
    now = old[[2, 0, 1]] + 0.1  # permuted, drifted a little
    assert match_segment_ids(now, features, scale, [10, 10, 10], previous) == [2, 3, 1]
    # a fourth cluster far from all: a new id after the highest ever used; sizes order new ids
    far = np.vstack([now, [[20.0, 20.0], [-20.0, 0.0]]])
    assert match_segment_ids(far, features, scale, [10, 10, 10, 5, 8], previous) == \
        [2, 3, 1, 8, 7]
    # a feature the previous week lacked (a new category) counts as 0 there
    wider = np.hstack([now, np.zeros((3, 1))])
    assert match_segment_ids(wider, [*features, "category:new"], np.ones(3), [1, 1, 1],
                             previous) == [2, 3, 1]
    # no previous segments: ids 1.. by size
    assert match_segment_ids(now, features, scale, [5, 9, 7], None) == [3, 1, 2]


def test_names_are_unique() -> None:
    row = {"customers": 10, "avg_frequency_orders_52w": 10.0, "avg_monetary_value_52w": 100.0,
           "promo_share": 0.3, "price_tier": "mid", "web_share": 0.34, "app_share": 0.33,
           "store_share": 0.33, "top_categories": "", "top_category": ""}
    table = pd.DataFrame([
        {**row, "segment_id": 0, "customers": 3},
        {**row, "segment_id": 1, "top_category": "toys"},
        {**row, "segment_id": 2, "top_category": "home"},
        {**row, "segment_id": 3, "top_category": "home"},
        {**row, "segment_id": 4, "promo_share": 0.6, "app_share": 0.8, "web_share": 0.1,
         "store_share": 0.1},
    ])
    assert name_segments(table) == [
        NO_PURCHASES_NAME, "mainstream shoppers (toys)", "mainstream shoppers (home) (#2)",
        "mainstream shoppers (home) (#3)", "deal-driven app shoppers"]


def test_too_few_buyers_is_one_sentence(spark: SparkSession, profiles) -> None:
    few = profiles[0].where("customer_id < 1005")  # 5 buyers, 5 without purchases
    with pytest.raises(SegmentationError, match=r"^Only 5 customers bought .* at least 15\.$"):
        build_segments(few, seed=42)


@pytest.mark.integration
def test_the_stage_on_the_tiny_market_keeps_ids_week_to_week(
        settings: Settings, tiny_landing: Path, spark: SparkSession) -> None:
    """segment_customers on the tiny market's marts for two plan weeks; the first published
    (with a plan) so that the second matches its ids."""
    from publish.publish import publish_plan, segment_frames
    from tests.dbt.marts import build_marts
    from tests.publish.plans import small_plan

    assert build_marts(settings, tiny_landing).returncode == 0
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select max(week_start) + 7 from marts.product_week_sales")
        plan_week = cur.fetchone()[0]
    runs = [Run(f"segments-{i}", RunParams(dataset="tiny", plan_week=week))
            for i, week in enumerate((plan_week - timedelta(days=7), plan_week))]

    summary = segment_customers(runs[0], settings)
    folder = runs[0].folder(settings)
    customers = pd.read_parquet(folder.customer_segments)
    profiles = pd.read_parquet(folder.segment_profiles)
    assert list(customers.columns) == ["customer_id", "segment_id", *COLUMNS[1:]]
    assert customers["customer_id"].is_unique and customers["customer_id"].is_monotonic_increasing
    assert ((customers["segment_id"] == NO_PURCHASES)
            == (customers["frequency_orders_52w"] == 0)).all()
    assert summary["customers"] == len(customers) == profiles["customers"].sum()
    assert 3 <= summary["k"] <= 8 and len(profiles) == summary["k"] + 1
    assert profiles["segment_name"].is_unique

    plan = dict(small_plan(runs[0].run_id, runs[0].plan_week)[0], dataset="tiny")
    publish_plan(plan, *small_plan(runs[0].run_id, runs[0].plan_week)[1:], settings=settings,
                 segment_profiles=profiles, customer_segments=segment_frames(folder)[1])

    segment_customers(runs[1], settings)
    later = pd.read_parquet(runs[1].folder(settings).customer_segments)
    both = customers.merge(later, on="customer_id", suffixes=("", "_later"))
    both = both[both["segment_id"] != NO_PURCHASES]
    # most customers keep their segment id a week later (ids matched by centroid)
    assert (both["segment_id"] == both["segment_id_later"]).mean() > 0.8
