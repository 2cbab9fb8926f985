"""The week rules have two homes, promoflow/weeks.py (Python) and dbt_project/macros/weeks.sql
(SQL); both give the same week for the same instant and time zone, and the same plan week."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from itertools import product

import pytest

from promoflow.settings import Settings
from promoflow.weeks import local_week_start, plan_week_after
from tests.dbt.marts import run_dbt

# UTC instants around day and week boundaries and New Year; the DST ones are Sunday-night or
# Monday-early local times on the day a zone switches, so a wrong offset moves them a week:
# US switches on Sundays 2026-03-08 and 2026-11-01, Auckland on 2026-04-05 and 2026-09-27.
INSTANTS = [
    "2026-11-15 23:30:00", "2026-11-16 00:30:00", "2026-11-16 09:59:00", "2026-11-16 15:00:00",
    "2026-11-22 23:59:59", "2025-12-31 23:30:00", "2026-01-01 00:30:00", "2026-01-04 14:00:00",
    "2026-03-08 06:30:00", "2026-03-09 04:30:00", "2026-03-09 07:30:00", "2026-11-02 04:30:00",
    "2026-11-02 07:30:00", "2026-04-05 11:30:00", "2026-09-27 11:30:00", "2026-03-29 01:30:00",
    "2026-10-25 00:30:00", "2024-02-29 12:00:00",
]
ZONES = [None, "UTC", "America/New_York", "America/Los_Angeles", "Asia/Tokyo",
         "Pacific/Auckland", "Pacific/Kiritimati", "Pacific/Pago_Pago"]
LAST_WEEKS = ["2026-11-09", "2026-11-12", "2026-12-28", "2025-12-29", "2024-02-26"]


def _sql() -> str:
    cases = ", ".join(
        f"('{instant}'::timestamp, {f'{chr(39)}{zone}{chr(39)}' if zone else 'null'}::text)"
        for instant, zone in product(INSTANTS, ZONES))
    weeks = ", ".join(f"('{day}'::date)" for day in LAST_WEEKS)
    return (
        "select 'week' as rule, ordered_at::text as given, coalesce(timezone, '') as timezone, "
        "{{ local_week_start('ordered_at', 'timezone') }}::text as week "
        f"from (values {cases}) as cases (ordered_at, timezone) "
        "union all "
        "select 'plan_week', last_week::text, '', {{ plan_week_after('last_week') }}::text "
        f"from (values {weeks}) as weeks (last_week)"
    )


@pytest.fixture(scope="module")
def sql_weeks(settings: Settings) -> list[dict]:
    n = len(INSTANTS) * len(ZONES) + len(LAST_WEEKS)
    result = run_dbt(settings, "show", "--inline", _sql(), "--output", "json", "--quiet",
                     "--limit", str(n))
    assert result.returncode == 0, result.output[-3000:]
    start = re.search(r'\{\s*"show"', result.output)
    assert start, result.output[-3000:]
    shown, _ = json.JSONDecoder().raw_decode(result.output, start.start())
    rows = shown["show"]
    assert len(rows) == n
    return rows


@pytest.mark.integration
def test_local_weeks_agree(sql_weeks: list[dict]) -> None:
    weeks = [row for row in sql_weeks if row["rule"] == "week"]
    for row in weeks:
        instant = datetime.fromisoformat(row["given"])
        assert date.fromisoformat(row["week"]) == local_week_start(
            instant, row["timezone"] or None), row
    # the cases do cross weeks: an instant near midnight falls in different weeks by zone
    sunday_night = {row["week"] for row in weeks if row["given"] == "2026-11-15 23:30:00"}
    assert sunday_night == {"2026-11-09", "2026-11-16"}


@pytest.mark.integration
def test_plan_weeks_agree(sql_weeks: list[dict]) -> None:
    for row in (row for row in sql_weeks if row["rule"] == "plan_week"):
        assert date.fromisoformat(row["week"]) == plan_week_after(
            date.fromisoformat(row["given"])), row
