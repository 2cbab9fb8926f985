"""The closed loop's calendar: every simulated week ends before today."""

import datetime as dt

import pytest

from local.loop import loop_history_end, main


@pytest.mark.parametrize(("today", "end"), [
    (dt.date(2026, 12, 3), dt.date(2026, 11, 1)),   # Thursday: the last full week ends 11-29
    (dt.date(2026, 11, 30), dt.date(2026, 11, 1)),  # Monday: the week before just ended
    (dt.date(2026, 12, 6), dt.date(2026, 11, 1)),   # Sunday: today is not over yet
])
def test_history_ends_weeks_before_the_last_full_week(today, end):
    assert loop_history_end(4, today) == end
    assert end.weekday() == 6
    assert end + dt.timedelta(weeks=4) < today


def test_bad_loop_options_are_refused_in_one_line(capsys):
    with pytest.raises(SystemExit, match=r"--weeks 0 is outside \[1, 12\]"):
        main(["--weeks", "0"])
    with pytest.raises(SystemExit, match="picks its own dataset"):
        main(["--dataset", "demo"])
    with pytest.raises(SystemExit, match="budget -1 is outside"):
        main(["--budget", "-1"])
