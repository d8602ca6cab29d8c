"""A citizen request's deadline (مهلت پاسخ): the service's working days, counted in the 137
centre's week, stopped while the request waits for the citizen.

The week is Saturday to Thursday: only Fridays and the official holidays of the year (the
contact database's holiday table, handed in as data) are skipped. As for inquiries' manual
checks (gateway/inquiries/workdays.py, whose Workweek this reuses), N working days fall at the
close of office hours of the Nth working day after the day the request arrived, which never
counts itself; a request arriving on a day off counts from the next working day.

While a request waits for the citizen (WAITING_FOR_CITIZEN) its clock stops. The pause is
counted in whole working days: each working day from the day it paused up to, not including,
the day it resumed moves the deadline one working day later. A pause and a resume on the same
day move nothing; a pause on a Wednesday resumed on the Saturday after moves it two (the
Wednesday and the Thursday). While its clock is stopped a request is not counted overdue,
whatever the time; one that was overdue when it paused is overdue again when it resumes (its
deadline moved by the days waited is still behind it).

Escalation (to the assigned department's manager) falls at a multiple of the allotted time:
with 10 working days and a multiple of 2, ten working days after the deadline, paused days
still added.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.inquiries.workdays import (
    FRIDAY,
    TEHRAN,
    Deadline,
    Workweek,
)
from gateway.inquiries.workdays import (
    is_overdue as past,
)

__all__ = [
    "RequestClock",
    "due_at",
    "escalation_at",
    "extend",
    "paused_working_days",
    "request_week",
]

# Offices of the 137 centre's departments open on Thursday mornings; a deadline that falls on
# a Thursday falls at its close.
CLOSES_AT = dt.time(14, 0)


def request_week(holidays: Iterable[dt.date] = (), closes_at: dt.time = CLOSES_AT) -> Workweek:
    """Saturday to Thursday, the given holidays skipped, closing at `closes_at` in Tehran."""
    return Workweek(
        working_days=frozenset(set(range(7)) - {FRIDAY}),
        closes_at=closes_at,
        zone=TEHRAN,
        holidays=frozenset(holidays),
    )


def due_at(registered_at: dt.datetime, working_days: int, week: Workweek) -> dt.datetime:
    """When a request registered at `registered_at` (aware) with `working_days` to answer
    falls due, before any pause."""
    return Deadline.working_days(working_days).due_at(registered_at, week)


def extend(deadline: dt.datetime, working_days: int, week: Workweek) -> dt.datetime:
    """The deadline moved `working_days` working days later (at the close of that day)."""
    if working_days < 0:
        raise ValueError("a deadline is only ever extended")
    if working_days == 0:
        return deadline
    day = deadline.astimezone(week.zone).date()
    for _ in range(working_days):
        day = week.next_working_day(day)
    return week.close_of(day)


def paused_working_days(
    paused_at: dt.datetime,
    resumed_at: dt.datetime,
    week: Workweek,
    *,
    at_most: int | None = None,
) -> int:
    """The working days a pause took: each working day from the pause's day up to, not
    including, the resumption's (both read in Tehran); counting stops at `at_most`, for a
    caller that only asks whether there were that many."""
    if paused_at.tzinfo is None or resumed_at.tzinfo is None:
        raise ValueError("moments must be aware")
    first = paused_at.astimezone(week.zone).date()
    last = resumed_at.astimezone(week.zone).date()
    days = 0
    day = first
    while day < last and (at_most is None or days < at_most):
        if week.is_working_day(day):
            days += 1
        day += dt.timedelta(days=1)
    return days


def escalation_at(
    deadline: dt.datetime, working_days: int, multiple: float, week: Workweek
) -> dt.datetime:
    """When a request not yet answered is escalated: at `multiple` times its allotted
    `working_days`, i.e. ceil((multiple - 1) * working_days) working days after its deadline
    (which already carries its pauses)."""
    if multiple < 1:
        raise ValueError("escalation comes at or after the deadline")
    return extend(deadline, math.ceil((multiple - 1) * working_days), week)


@dataclass(frozen=True, slots=True)
class RequestClock:
    """A request's deadline as stored (paused days already added) and, while it waits for
    the citizen, when it paused."""

    deadline: dt.datetime
    paused_since: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.deadline.tzinfo is None or (
            self.paused_since is not None and self.paused_since.tzinfo is None
        ):
            raise ValueError("moments must be aware")

    def pause(self, now: dt.datetime) -> RequestClock:
        if self.paused_since is not None:
            raise ValueError("the clock is paused already")
        return RequestClock(self.deadline, now)

    def resume(self, now: dt.datetime, week: Workweek) -> RequestClock:
        """Running again, the deadline moved by the working days the pause took."""
        if self.paused_since is None:
            raise ValueError("the clock is running")
        days = paused_working_days(self.paused_since, now, week)
        return RequestClock(extend(self.deadline, days, week), None)

    def overdue(self, now: dt.datetime) -> bool:
        """Past the deadline, and running (a paused clock is never overdue)."""
        return self.paused_since is None and past(self.deadline, now)
