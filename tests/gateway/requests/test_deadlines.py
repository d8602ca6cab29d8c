"""A citizen request's deadline: working days from Saturday to Thursday, Fridays and the year's
official holidays skipped (Nowruz among them), stopped while the request waits for the
citizen, and escalation at a multiple of it."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.inquiries.workdays import TEHRAN
from gateway.requests.deadlines import (
    RequestClock,
    due_at,
    escalation_at,
    extend,
    paused_working_days,
    request_week,
)

# Iran's official holidays around Nowruz 1405 (Esfand 29 1404 to Farvardin 13 1405), with the
# two days of Eid al-Fitr 1447 that fall in it: the contact database's holiday table.
NOWRUZ_1405 = frozenset(
    {
        dt.date(2026, 3, 20),  # 29 Esfand: oil nationalisation day (a Friday anyway); Eid al-Fitr
        dt.date(2026, 3, 21),  # 1 Farvardin: Nowruz; Eid al-Fitr, second day
        dt.date(2026, 3, 22),  # 2 Farvardin
        dt.date(2026, 3, 23),  # 3 Farvardin
        dt.date(2026, 3, 24),  # 4 Farvardin
        dt.date(2026, 4, 1),  # 12 Farvardin: Islamic Republic day
        dt.date(2026, 4, 2),  # 13 Farvardin: nature day
    }
)
WEEK = request_week(NOWRUZ_1405)


def tehran(month: int, day: int, hour: int = 10, minute: int = 0, year: int = 2026) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=TEHRAN)


def test_a_request_registered_before_nowruz_is_due_after_it() -> None:
    # Wednesday 18 March: Thursday 19 counts (1), Friday and Nowruz do not, then Wednesday 25
    # (2), Thursday 26 (3), Saturday 28 (4), Sunday 29 (5).
    assert due_at(tehran(3, 18), 5, WEEK) == tehran(3, 29, 14)


def test_without_the_holidays_the_same_request_is_due_a_week_earlier() -> None:
    assert due_at(tehran(3, 18), 5, request_week()) == tehran(3, 24, 14)


def test_thursday_counts_and_friday_does_not() -> None:
    # Wednesday 2 December 2026: Thursday 3 is the first working day, Saturday 5 the second.
    week = request_week()
    assert due_at(tehran(12, 2), 1, week) == tehran(12, 3, 14)
    assert due_at(tehran(12, 2), 2, week) == tehran(12, 5, 14)


def test_a_request_arriving_on_friday_counts_as_arriving_on_saturday() -> None:
    week = request_week()
    assert due_at(tehran(12, 4, 22), 1, week) == due_at(tehran(12, 5, 7), 1, week)
    assert due_at(tehran(12, 4, 22), 1, week) == tehran(12, 6, 14)


def test_the_day_is_tehrans() -> None:
    # 21:00 UTC on Tuesday 1 December is 00:30 on Wednesday in Tehran.
    late = dt.datetime(2026, 12, 1, 21, 0, tzinfo=dt.UTC)
    assert due_at(late, 1, request_week()) == tehran(12, 3, 14)


def test_a_pause_counts_the_working_days_from_its_day_up_to_the_resumption() -> None:
    # Wednesday 25 and Thursday 26 March; Friday 27 is not a working day.
    assert paused_working_days(tehran(3, 25, 9), tehran(3, 28, 9), WEEK) == 2
    # The same day: nothing.
    assert paused_working_days(tehran(3, 25, 9), tehran(3, 25, 13), WEEK) == 0
    # Across Nowruz: only Thursday 19.
    assert paused_working_days(tehran(3, 19, 9), tehran(3, 25, 9), WEEK) == 1


def test_waiting_for_the_citizen_moves_the_deadline_by_the_days_waited() -> None:
    clock = RequestClock(due_at(tehran(3, 18), 5, WEEK))
    paused = clock.pause(tehran(3, 25, 9))
    resumed = paused.resume(tehran(3, 28, 11), WEEK)
    # Sunday 29 moved two working days: Monday 30, Tuesday 31.
    assert resumed.deadline == tehran(3, 31, 14)
    assert resumed.paused_since is None


def test_a_paused_request_does_not_fall_overdue_while_it_waits() -> None:
    clock = RequestClock(tehran(3, 29, 14)).pause(tehran(3, 28, 9))
    assert not clock.overdue(tehran(4, 20))
    resumed = clock.resume(tehran(4, 20), WEEK)
    assert not resumed.overdue(tehran(4, 20, 12))
    assert resumed.deadline > tehran(4, 20, 12)


def test_a_request_overdue_when_it_paused_is_overdue_again_when_it_resumes() -> None:
    clock = RequestClock(tehran(3, 29, 14)).pause(tehran(3, 30, 9))
    assert not clock.overdue(tehran(3, 30, 10))
    # Monday 30 March only was waited: Sunday 29 moves to Monday 30, still behind.
    resumed = clock.resume(tehran(3, 31, 9), WEEK)
    assert resumed.deadline == tehran(3, 30, 14)
    assert resumed.overdue(tehran(3, 31, 9))


def test_an_answer_at_the_deadline_itself_is_on_time() -> None:
    clock = RequestClock(tehran(3, 29, 14))
    assert not clock.overdue(tehran(3, 29, 14))
    assert clock.overdue(tehran(3, 29, 14, 1))


def test_escalation_comes_at_a_multiple_of_the_allotted_days() -> None:
    deadline = due_at(tehran(3, 18), 5, WEEK)  # Sunday 29 March
    # Twice the five days: five more working days (30, 31 March, then past 12 and 13
    # Farvardin and a Friday: 4, 5, 6 April).
    assert escalation_at(deadline, 5, 2.0, WEEK) == tehran(4, 6, 14)
    assert escalation_at(deadline, 5, 1.0, WEEK) == deadline
    # 1.5 × 5 = 7.5: three working days more (2.5 rounded up).
    assert escalation_at(deadline, 5, 1.5, WEEK) == tehran(4, 4, 14)


def test_malformed_input_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        paused_working_days(dt.datetime(2026, 3, 1), tehran(3, 2), WEEK)
    with pytest.raises(ValueError, match="extended"):
        extend(tehran(3, 29, 14), -1, WEEK)
    with pytest.raises(ValueError, match="at or after"):
        escalation_at(tehran(3, 29, 14), 5, 0.5, WEEK)
    with pytest.raises(ValueError, match="paused already"):
        RequestClock(tehran(3, 29, 14)).pause(tehran(3, 1)).pause(tehran(3, 2))
    with pytest.raises(ValueError, match="running"):
        RequestClock(tehran(3, 29, 14)).resume(tehran(3, 2), WEEK)


@given(
    start=st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2027, 12, 31)),
    days=st.integers(min_value=1, max_value=30),
    waited=st.integers(min_value=0, max_value=40),
)
def test_a_deadline_always_falls_at_the_close_of_a_working_day_after_the_arrival(
    start: dt.datetime, days: int, waited: int
) -> None:
    registered = start.replace(tzinfo=TEHRAN)
    deadline = due_at(registered, days, WEEK)
    assert WEEK.is_working_day(deadline.date())
    assert (deadline.time(), deadline.tzinfo) == (dt.time(14, 0), TEHRAN)
    # Exactly `days` working days after the day it counts as arriving on, that day excluded.
    arrival = registered.date()
    while not WEEK.is_working_day(arrival):
        arrival += dt.timedelta(days=1)
    span = (deadline.date() - arrival).days
    between = (arrival + dt.timedelta(days=n) for n in range(1, span + 1))
    assert sum(WEEK.is_working_day(day) for day in between) == days
    # A pause never brings a deadline earlier.
    clock = RequestClock(deadline).pause(registered)
    assert clock.resume(registered + dt.timedelta(days=waited), WEEK).deadline >= deadline
