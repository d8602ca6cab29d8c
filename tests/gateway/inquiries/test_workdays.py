"""Deadlines in Iran's working week: Saturday to Wednesday, Thursday and Friday not counted,
configured holidays skipped, due at the close of office hours in Tehran."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.inquiries.workdays import (
    TEHRAN,
    THURSDAY,
    Deadline,
    Workweek,
    arrival_day,
    is_overdue,
)

WEEK = Workweek()


def tehran(year: int, month: int, day: int, hour: int, minute: int) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=TEHRAN)


def test_a_wednesday_check_due_in_one_working_day_is_due_saturday_at_closing() -> None:
    # 2026-12-02 is a Wednesday; Thursday and Friday do not count.
    assert Deadline.working_days(1).due_at(tehran(2026, 12, 2, 10, 0), WEEK) == tehran(
        2026, 12, 5, 14, 0
    )


def test_what_arrives_on_friday_is_due_as_what_arrives_on_saturday_morning() -> None:
    friday = tehran(2026, 12, 4, 22, 0)
    saturday = tehran(2026, 12, 5, 7, 30)
    deadline = Deadline.working_days(2)
    assert deadline.due_at(friday, WEEK) == tehran(2026, 12, 7, 14, 0)  # Monday
    assert deadline.due_at(saturday, WEEK) == tehran(2026, 12, 7, 14, 0)


def test_the_day_is_tehrans_not_utcs() -> None:
    # 22:00 UTC on Tuesday is 01:30 on Wednesday in Tehran: the count starts from Wednesday.
    late_tuesday_utc = dt.datetime(2026, 12, 1, 22, 0, tzinfo=dt.UTC)
    assert Deadline.working_days(1).due_at(late_tuesday_utc, WEEK) == tehran(2026, 12, 5, 14, 0)


def test_holidays_are_skipped() -> None:
    week = Workweek(holidays=frozenset({dt.date(2026, 12, 5), dt.date(2026, 12, 6)}))
    assert Deadline.working_days(1).due_at(tehran(2026, 12, 2, 10, 0), week) == tehran(
        2026, 12, 7, 14, 0
    )


def test_offices_open_on_thursday_can_count_it() -> None:
    week = Workweek(working_days=WEEK.working_days | {THURSDAY}, closes_at=dt.time(12, 0))
    assert Deadline.working_days(1).due_at(tehran(2026, 12, 2, 10, 0), week) == tehran(
        2026, 12, 3, 12, 0
    )


def test_an_hours_deadline_is_elapsed_time() -> None:
    assigned = tehran(2026, 12, 3, 16, 0)  # Thursday afternoon
    assert Deadline.hours(48).due_at(assigned, WEEK) == tehran(2026, 12, 5, 16, 0)


def test_malformed_deadlines_and_weeks_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Deadline.working_days(0)
    with pytest.raises(ValueError, match="aware"):
        Deadline.working_days(1).due_at(dt.datetime(2026, 12, 2, 10, 0), WEEK)
    with pytest.raises(ValueError, match="working_days"):
        Workweek(working_days=frozenset())
    every_day = frozenset(dt.date(2026, 1, 1) + dt.timedelta(days=n) for n in range(800))
    with pytest.raises(ValueError, match="no working day within a year"):
        Deadline.working_days(1).due_at(tehran(2026, 1, 1, 9, 0), Workweek(holidays=every_day))


def test_an_answer_at_the_deadline_is_on_time() -> None:
    due = tehran(2026, 12, 5, 14, 0)
    assert not is_overdue(due, due)
    assert is_overdue(due, due + dt.timedelta(microseconds=1))


_moments = st.datetimes(
    min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2030, 1, 1), timezones=st.just(dt.UTC)
)
_holidays = st.frozensets(
    st.dates(min_value=dt.date(2024, 1, 1), max_value=dt.date(2030, 6, 1)), max_size=30
)


@settings(deadline=None)  # a loaded machine must not fail it: no example is slow by nature
@given(_moments, st.integers(1, 30), _holidays)
def test_n_working_days_end_at_closing_on_the_nth_working_day_after_arrival(
    assigned: dt.datetime, days: int, holidays: frozenset[dt.date]
) -> None:
    week = Workweek(holidays=holidays)
    due = Deadline.working_days(days).due_at(assigned, week)
    local_due = due.astimezone(TEHRAN)
    assert local_due.time() == week.closes_at
    assert week.is_working_day(local_due.date())
    assert due > assigned
    start = arrival_day(assigned, week)
    assert week.is_working_day(start)
    assert start >= assigned.astimezone(TEHRAN).date()
    between = [start + dt.timedelta(days=n) for n in range(1, (local_due.date() - start).days + 1)]
    assert sum(week.is_working_day(day) for day in between) == days
    assert Deadline.working_days(days + 1).due_at(assigned, week) > due
