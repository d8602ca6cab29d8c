"""Iran's working week and the deadlines of manual checks, counted in working days or hours.

The week chosen: Saturday to Wednesday are working days; Friday is the weekend; Thursday is
not counted, because many offices (government ones among them) close on Thursdays or work only
its morning, so a deadline that fell on a Thursday afternoon would fall on a closed office.
Public holidays (Nowruz, the lunar ones that move every year) are configured as dates: the
calendar of a given year is the operator's to set, not this module's to guess.

A deadline of N working days falls at the close of office hours of the Nth working day after
the day the check arrived, which itself never counts (part of it has passed); a check that
arrives on a day off is taken to arrive on the next working day, so what arrives on a Friday
evening has the same deadline as what arrives on the Saturday morning after it. A deadline in
hours is plain elapsed time, for checks that cannot wait for office hours.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import Enum
from zoneinfo import ZoneInfo

TEHRAN = ZoneInfo("Asia/Tehran")

# datetime.weekday(): Monday is 0.
SATURDAY, SUNDAY, MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY = 5, 6, 0, 1, 2, 3, 4


@dataclass(frozen=True, slots=True)
class Workweek:
    """Which days count toward a deadline, and when an office closes on them."""

    working_days: frozenset[int] = frozenset({SATURDAY, SUNDAY, MONDAY, TUESDAY, WEDNESDAY})
    closes_at: dt.time = dt.time(14, 0)
    zone: ZoneInfo = TEHRAN
    holidays: frozenset[dt.date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not self.working_days or not self.working_days <= set(range(7)):
            raise ValueError("working_days must name at least one weekday, 0 (Monday) to 6")

    def is_working_day(self, day: dt.date) -> bool:
        return day.weekday() in self.working_days and day not in self.holidays

    def next_working_day(self, day: dt.date) -> dt.date:
        """The first working day after `day`."""
        day += dt.timedelta(days=1)
        # A year of holidays cannot hide every working day; stop rather than loop forever.
        for _ in range(366):
            if self.is_working_day(day):
                return day
            day += dt.timedelta(days=1)
        raise ValueError("no working day within a year: check the configured holidays")

    def close_of(self, day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, self.closes_at, tzinfo=self.zone)


class DeadlineUnit(Enum):
    WORKING_DAYS = "working_days"
    HOURS = "hours"


@dataclass(frozen=True, slots=True)
class Deadline:
    """How long a department has to answer a manual check."""

    amount: int
    unit: DeadlineUnit

    def __post_init__(self) -> None:
        if self.amount < 1:
            raise ValueError("a deadline is at least one working day or one hour")

    @classmethod
    def working_days(cls, amount: int) -> Deadline:
        return cls(amount, DeadlineUnit.WORKING_DAYS)

    @classmethod
    def hours(cls, amount: int) -> Deadline:
        return cls(amount, DeadlineUnit.HOURS)

    def due_at(self, assigned_at: dt.datetime, week: Workweek) -> dt.datetime:
        """When a check that reached its department at `assigned_at` (aware) must be answered."""
        if assigned_at.tzinfo is None:
            raise ValueError("assigned_at must be aware")
        if self.unit is DeadlineUnit.HOURS:
            return assigned_at + dt.timedelta(hours=self.amount)
        day = arrival_day(assigned_at, week)
        for _ in range(self.amount):
            day = week.next_working_day(day)
        return week.close_of(day)


def arrival_day(assigned_at: dt.datetime, week: Workweek) -> dt.date:
    """The working day a check counts as arriving on: its own day, or the next working day."""
    day = assigned_at.astimezone(week.zone).date()
    return day if week.is_working_day(day) else week.next_working_day(day)


def is_overdue(due_at: dt.datetime, now: dt.datetime) -> bool:
    """Past the deadline: an answer at the deadline itself is on time."""
    return now > due_at
