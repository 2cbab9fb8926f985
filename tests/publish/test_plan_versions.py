"""Versioned plans: every published run keeps its rows, one current version per (dataset, plan
week), the views BI reads, readers that want the plan of a week, and the in-place migration of
a warehouse that held one plan per week."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date, timedelta

import psycopg2
import pytest

from local.roles import as_role
from promoflow.warehouse import connect, latest_published_run_id
from publish.publish import ensure_schema, publish_plan
from tests.publish.plans import small_plan
from tests.publish.test_publish_segments import segment_frames


def _rows(settings, query: str, *args) -> list[tuple]:
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute(query, args)
        return cur.fetchall()


def _plan(run_id: str, week: date, dataset: str):
    plan, *frames = small_plan(run_id, week)
    return (dict(plan, dataset=dataset), *frames)


@pytest.mark.integration
def test_two_reruns_of_one_week_leave_two_versions_and_one_current(settings, roles):
    week, dataset = date(2031, 3, 3), "versions"
    publish_plan(*_plan("run-v1", week, dataset), settings=settings)
    publish_plan(*_plan("run-v2", week, dataset), settings=settings)
    publish_plan(*_plan("run-v2", week, dataset), settings=settings)  # a retry of the rerun
    bi = as_role(settings, roles[1])
    assert _rows(bi, "select run_id, is_current from published.plan_versions "
                     "where dataset = %s order by 1", dataset) == [
        ("run-v1", False), ("run-v2", True)]
    assert _rows(bi, "select dataset, plan_week, run_id from published.current_plans "
                     "where dataset = %s", dataset) == [(dataset, week, "run-v2")]
    for view in ("current_plans_by_week", "current_plan"):
        assert _rows(bi, f"select run_id from published.{view} where dataset = %s",
                     dataset) == [("run-v2",)]
    # both versions keep their rows, without duplicates; the current views show one version
    lines = _rows(bi, "select run_id, count(*), count(distinct product_id) "
                      "from published.plan_lines where plan_week = %s group by 1 order by 1", week)
    assert [r[0] for r in lines] == ["run-v1", "run-v2"] and all(n == d > 0 for _, n, d in lines)
    assert _rows(bi, "select distinct run_id from published.current_plan_lines l "
                     "join published.plans p using (run_id) where p.dataset = %s",
                     dataset) == [("run-v2",)]
    assert latest_published_run_id(dataset, settings) == "run-v2"
    # a rerun of an earlier week of the dataset makes that week's new version current, and
    # current_plan keeps showing the dataset's latest week
    earlier = week - timedelta(weeks=1)
    publish_plan(*_plan("run-earlier", earlier, dataset), settings=settings)
    assert _rows(bi, "select run_id from published.current_plan where dataset = %s",
                 dataset) == [("run-v2",)]
    assert _rows(bi, "select plan_week, run_id from published.current_plans_by_week "
                     "where dataset = %s order by 1", dataset) == [
        (earlier, "run-earlier"), (week, "run-v2")]


@pytest.mark.integration
def test_two_datasets_with_the_same_plan_week_both_stay_visible(settings, roles):
    week = date(2031, 6, 2)
    publish_plan(*_plan("run-north", week, "north"), settings=settings)
    publish_plan(*_plan("run-south", week, "south"), settings=settings)
    publish_plan(*_plan("run-north-2", week, "north"), settings=settings)  # north reruns
    bi = as_role(settings, roles[1])
    assert _rows(bi, "select dataset, run_id from published.current_plan "
                     "where dataset in ('north', 'south') order by 1") == [
        ("north", "run-north-2"), ("south", "run-south")]
    assert _rows(bi, "select dataset, run_id from published.current_plans_by_week "
                     "where plan_week = %s order by 1", week) == [
        ("north", "run-north-2"), ("south", "run-south")]
    for view in ("current_plan_lines", "current_plan_targets"):
        assert _rows(bi, f"select distinct run_id from published.{view} "
                         "where run_id in ('run-north', 'run-north-2', 'run-south') "
                         "order by 1") == [("run-north-2",), ("run-south",)], view
    assert _rows(bi, "select count(*) from published.plans where plan_week = %s", week) == [(3,)]


def _shifted(profiles, customers, shift: int):
    """The segments with every id but 0 moved up by `shift`."""
    def move(frame):
        return frame.assign(segment_id=frame["segment_id"].where(frame["segment_id"] == 0,
                                                                 frame["segment_id"] + shift))
    return move(profiles), move(customers)


@pytest.mark.integration
def test_the_next_week_matches_the_segments_of_the_current_version(settings):
    from spark_jobs.customer_segments import previous_segments

    week, dataset = date(2031, 9, 1), "segments-versions"
    publish_plan(*_plan("run-seg-1", week, dataset), settings=settings,
                 **dict(zip(("segment_profiles", "customer_segments"), segment_frames())))
    profiles, customers = _shifted(*segment_frames(), 10)  # the rerun found other ids
    publish_plan(*_plan("run-seg-2", week, dataset), settings=settings,
                 segment_profiles=profiles, customer_segments=customers)
    previous = previous_segments(dataset, week + timedelta(weeks=1), settings)
    assert previous.ids == [13, 15] and previous.max_id == 15
    assert _rows(settings, "select distinct run_id from published.current_segment_profiles "
                           "where run_id like 'run-seg-%%'") == [("run-seg-2",)]


OLD_VIEWS = """
create view published.current_plan as
    select * from published.plans where plan_week = (select max(plan_week) from published.plans);
create view published.current_plan_lines as
    select l.* from published.plan_lines l join published.current_plan p using (run_id);
create view published.current_plan_targets as
    select t.* from published.plan_targets t join published.current_plan p using (run_id);
create view published.current_plan_offers as
    select o.* from published.plan_offers o join published.current_plan p using (run_id);
create view published.current_segment_profiles as
    select s.* from published.segment_profiles s
    where s.plan_week = (select max(plan_week) from published.plans);
create view published.current_customer_segments as
    select c.* from published.customer_segments c
    where c.plan_week = (select max(plan_week) from published.plans);
"""


@pytest.fixture
def fresh_warehouse(settings):
    """Settings of an empty database of its own (dropped afterwards)."""
    name = f"{settings.pg_db}_m{uuid.uuid4().hex[:6]}"
    admin = psycopg2.connect(**dataclasses.replace(settings, pg_db="postgres").psycopg_kwargs())
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'create database "{name}"')
    try:
        yield dataclasses.replace(settings, pg_db=name)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'drop database if exists "{name}" with (force)')
        admin.close()


@pytest.mark.integration
def test_a_warehouse_with_one_plan_per_week_is_migrated_in_place(fresh_warehouse):
    s = fresh_warehouse
    first, second = date(2026, 11, 2), date(2026, 11, 9)
    publish_plan(*_plan("run-old-1", first, "old"), settings=s)
    publish_plan(*_plan("run-old-2", second, "old"), settings=s)
    with connect(s) as conn, conn.cursor() as cur:  # the published schema as it was
        cur.execute("drop view published.current_plan_lines, published.current_plan_targets, "
                    "published.current_plan_offers, published.current_plan, "
                    "published.current_segment_profiles, published.current_customer_segments, "
                    "published.plan_versions, published.current_plans_by_week")
        cur.execute("drop table published.current_plans")
        cur.execute("alter table published.plans add constraint plans_plan_week_key "
                    "unique (plan_week)")
        cur.execute(OLD_VIEWS)
    publish_plan(*_plan("run-new-1", first, "old"), settings=s)  # migrates, then a version
    ensure_schema(s)  # again: nothing changes
    assert _rows(s, "select conname from pg_constraint where conrelid = "
                    "'published.plans'::regclass and contype = 'u'") == []
    assert _rows(s, "select plan_week, run_id from published.current_plans order by 1") == [
        (first, "run-new-1"), (second, "run-old-2")]
    assert _rows(s, "select run_id, is_current from published.plan_versions order by 1") == [
        ("run-new-1", True), ("run-old-1", False), ("run-old-2", True)]
    assert _rows(s, "select run_id from published.current_plan") == [("run-old-2",)]
    (kept,), = _rows(s, "select count(*) from published.plan_lines where run_id = 'run-old-1'")
    assert kept > 0
