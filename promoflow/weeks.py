"""The week rules of the platform, in one place for Python (dbt has the same rules as macros).

- A week starts on Monday; `week_start` is that Monday's date.
- An order belongs to the week of its local date: its UTC timestamp converted to its store's
  time zone (UTC when it has no store). dbt: macros `local_time`, `local_week_start` and
  `week_start` (dbt_project/macros/weeks.sql).
- The plan week is the week after the last week of data, unless a run names it.
  dbt: macro `plan_week_after`.
- Feature rows of a week are stamped at midnight UTC of its Monday (`week_timestamp`).

tests/dbt/test_week_rules.py asserts that both sides give the same weeks.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

#: A Monday: week indices count weeks since this day.
EPOCH_MONDAY = date(1970, 1, 5)
WEEK = timedelta(days=7)


class WeekError(ValueError):
    """A date that should start a week does not."""


def week_start(day: date) -> date:
    """The Monday that starts the week of `day`."""
    return day - timedelta(days=day.weekday())


def local_week_start(ordered_at: datetime, timezone: str | None = None) -> date:
    """The week of a UTC timestamp on the calendar of `timezone` (an IANA name; None: UTC)."""
    if ordered_at.tzinfo is None:
        ordered_at = ordered_at.replace(tzinfo=UTC)
    return week_start(ordered_at.astimezone(ZoneInfo(timezone or "UTC")).date())


def plan_week_after(last_data_week: date) -> date:
    """The plan week of data whose last week starts on `last_data_week`."""
    return week_start(last_data_week) + WEEK


def check_monday(day: date, name: str = "plan_week") -> date:
    """`day` itself when it is a Monday, else a one-line WeekError."""
    if day.weekday() != 0:
        raise WeekError(f"{name} {day} is not a Monday; give the Monday that starts the week "
                        f"(for example {week_start(day)}).")
    return day


def week_timestamp(monday: date) -> datetime:
    """The UTC timestamp that stamps the features of the week starting on `monday`."""
    return datetime.combine(monday, time(0), tzinfo=UTC)
