"""Inquiry figures: how many inquiries there are, where they stand, and how long they took to
be decided, grouped by region, kind, Jalali month or partner (any combination, or none for one
total), over what the caller may see.

Sound at a million rows: the counts are one grouped scan in SQL (COUNT and SUM(CASE …) over
the grouping columns), and the percentiles fetch only the rows they are made of (at most four
per group), never every duration; Python only folds groups. On SQLite, a million inquiries
take seconds for an operator's total, a partner's own a fraction of that (the organisation
index).

Months are Iran's, each starting at midnight in Tehran, put in their month by a CASE over the
moments they start (gateway/figures.py, shared with the citizen requests' figures).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    exists,
    func,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from db.gateway import InquiryCheckRecord, InquiryRecord
from gateway.access.principals import Principal, Scope
from gateway.access.rows import RULES, sees_none
from gateway.clock import naive_utc
from gateway.errors import BadUserInput
from gateway.figures import (
    MEDIAN,
    P90,
    SecondsBetween,
    jalali_month,
    month_index,
    months_between,
    needed_rank,
    percentile,
)
from gateway.inquiries.records import (
    CHECK_QUEUED,
    DECIDED,
    PENDING,
    WAITING_FOR_DEPARTMENT,
    past_due,
)

__all__ = ["MAX_RANGE", "Grouping", "StatsGroup", "inquiry_stats", "jalali_month"]

_inquiries = InquiryRecord.__table__
_checks = InquiryCheckRecord.__table__

# The longest range `since`..`until` may span (37 Jalali months at most).
MAX_RANGE = dt.timedelta(days=3 * 366)


class Grouping(Enum):
    REGION = "region"
    KIND = "kind"
    MONTH = "month"
    PARTNER = "partner"


@dataclass(frozen=True, slots=True)
class StatsGroup:
    """One group's figures; a key the grouping does not use is None."""

    region: int | None  # the planning region's id, as the inquiry recorded its parcel's
    kind: str | None
    month: str | None  # Jalali, "1404-07"
    partner: str | None  # the organisation that asked (a bank's code, "notary:<id>", …)
    total: int
    pending: int
    waiting_for_department: int
    decided: int
    clear: int
    not_clear: int
    overdue: int  # open, with a check in a department's queue past its deadline
    median_seconds_to_verdict: float | None  # None when none in the group is decided
    p90_seconds_to_verdict: float | None


# --- The statements -----------------------------------------------------------------------


def _conditions(
    visible: ColumnElement[bool], since: dt.datetime | None, until: dt.datetime | None
) -> list[ColumnElement[bool]]:
    conditions = [visible]
    if since is not None:
        conditions.append(_inquiries.c.submitted_at >= since)
    if until is not None:
        conditions.append(_inquiries.c.submitted_at < until)
    return conditions


@dataclass(frozen=True)
class _Query:
    groupings: tuple[Grouping, ...]
    visible: ColumnElement[bool]
    since: dt.datetime | None
    until: dt.datetime | None
    months: tuple[tuple[str, dt.datetime], ...]

    def keys(self) -> list[ColumnElement[Any]]:
        columns: dict[Grouping, ColumnElement[Any]] = {
            Grouping.REGION: _inquiries.c.region,
            Grouping.KIND: _inquiries.c.kind,
            Grouping.MONTH: month_index(_inquiries.c.submitted_at, self.months),
            Grouping.PARTNER: _inquiries.c.organisation,
        }
        return [columns[grouping].label(grouping.value) for grouping in self.groupings]

    def conditions(self) -> list[ColumnElement[bool]]:
        return _conditions(self.visible, self.since, self.until)

    def counts(self, now: dt.datetime) -> Select[Any]:
        """Per group: every inquiry by status and verdict, and the overdue ones."""
        late = exists().where(
            _checks.c.inquiry_id == _inquiries.c.id,
            _checks.c.state == CHECK_QUEUED,
            past_due(_checks.c.due_at, now),
        )
        rows = (
            select(
                *self.keys(),
                _inquiries.c.status,
                _inquiries.c.verdict,
                case((and_(_inquiries.c.status != DECIDED, late), 1), else_=0).label("late"),
            )
            .where(*self.conditions())
            .subquery()
        )
        keys = [rows.c[grouping.value] for grouping in self.groupings]

        def counting(condition: ColumnElement[bool]) -> Any:
            return func.sum(case((condition, 1), else_=0))

        return select(
            *keys,
            func.count().label("total"),
            counting(rows.c.status == PENDING).label("pending"),
            counting(rows.c.status == WAITING_FOR_DEPARTMENT).label("waiting"),
            counting(rows.c.status == DECIDED).label("decided"),
            counting(and_(rows.c.status == DECIDED, rows.c.verdict == "CLEAR")).label("clear"),
            counting(and_(rows.c.status == DECIDED, rows.c.verdict == "NOT_CLEAR")).label(
                "not_clear"
            ),
            func.sum(rows.c.late).label("overdue"),
        ).group_by(*keys)

    def percentile_rows(self) -> Select[Any]:
        """Per group, only the decided durations a percentile is made of (at most four).

        Cost: the database sorts each group's decided durations within the range (one window
        over the rows the counts scan too, O(d log d) for d decided) and returns at most four
        rows per group, so what crosses the wire does not grow with the table.
        """
        durations = (
            select(
                *self.keys(),
                SecondsBetween(_inquiries.c.submitted_at, _inquiries.c.decided_at).label("seconds"),
            )
            .where(
                *self.conditions(),
                _inquiries.c.status == DECIDED,
                _inquiries.c.decided_at.is_not(None),
            )
            .subquery()
        )
        keys = [durations.c[grouping.value] for grouping in self.groupings]
        partition = keys or None
        ranked = select(
            *keys,
            durations.c.seconds,
            func.row_number()
            .over(partition_by=partition, order_by=durations.c.seconds)
            .label("rank"),
            func.count().over(partition_by=partition).label("size"),
        ).subquery()
        rank, size = ranked.c["rank"], ranked.c["size"]
        return select(
            *(ranked.c[grouping.value] for grouping in self.groupings),
            ranked.c.seconds,
            rank,
            size,
        ).where(needed_rank(rank, size, MEDIAN) | needed_rank(rank, size, P90))


# --- Computing ----------------------------------------------------------------------------


def _checked_range(
    since: dt.datetime | None, until: dt.datetime | None, now: dt.datetime
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The range as naive UTC; refused when empty or longer than MAX_RANGE (a range open at
    its end runs to `now`; one open at its start is the whole history, whose length is the
    gateway's own)."""
    since = None if since is None else naive_utc(since)
    until = None if until is None else naive_utc(until)
    if since is not None and until is not None and until <= since:
        raise BadUserInput("until must be later than since.", field="until")
    if since is not None and (until or naive_utc(now)) - since > MAX_RANGE:
        raise BadUserInput(
            f"The range spans at most {MAX_RANGE.days} days: narrow since or until.",
            field="since",
        )
    return since, until


def _visible(principal: Principal) -> ColumnElement[bool]:
    """Everything with inquiries:stats (operators, inspection); otherwise the inquiries the
    caller may read (its own as a partner, those holding its checks as a department)."""
    if principal.has(Scope.INQUIRY_STATS_ALL):
        return true()
    return RULES.condition(InquiryRecord, principal)


def _checked_groupings(group_by: Sequence[Grouping]) -> tuple[Grouping, ...]:
    groupings = tuple(group_by)
    if len(set(groupings)) != len(groupings):
        raise BadUserInput("Name each grouping once.", field="groupBy")
    return groupings


async def _months_of(
    engine: AsyncEngine,
    conditions: list[ColumnElement[bool]],
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> tuple[tuple[str, dt.datetime], ...]:
    """The Jalali months the range covers; where it is open, those of the rows it holds
    (for operators MIN and MAX are two lookups in submitted_at's index)."""
    first, last = since, None if until is None else until - dt.timedelta(microseconds=1)
    if first is None or last is None:
        async with engine.connect() as connection:
            low, high = (
                await connection.execute(
                    select(
                        func.min(_inquiries.c.submitted_at), func.max(_inquiries.c.submitted_at)
                    ).where(*conditions)
                )
            ).one()
        if low is None:
            return ()
        first, last = first or low, last or high
    return tuple(months_between(first, last))


def _int(value: Any) -> int:
    """SUM over no rows is NULL; MySQL's SUM is a DECIMAL."""
    return 0 if value is None else int(value)


async def inquiry_stats(
    engine: AsyncEngine,
    principal: Principal,
    group_by: Sequence[Grouping],
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    now: dt.datetime,
) -> list[StatsGroup]:
    """The figures of the inquiries `principal` may count, submitted in [since, until),
    grouped by `group_by` (none: one total group) and ordered by its keys; `now` decides
    what is overdue. BAD_USER_INPUT for a grouping named twice, an empty range or one
    longer than MAX_RANGE."""
    groupings = _checked_groupings(group_by)
    since, until = _checked_range(since, until, now)
    visible = _visible(principal)
    empty_total = [StatsGroup(None, None, None, None, 0, 0, 0, 0, 0, 0, 0, None, None)]
    if sees_none(visible):
        return [] if groupings else empty_total
    months: tuple[tuple[str, dt.datetime], ...] = ()
    if Grouping.MONTH in groupings:
        months = await _months_of(engine, _conditions(visible, since, until), since, until)
        if not months:
            return []
    query = _Query(groupings, visible, since, until, months)
    async with engine.connect() as connection:
        counted = (await connection.execute(query.counts(naive_utc(now)))).all()
        needed = (await connection.execute(query.percentile_rows())).all()

    def key_of(row: Any) -> tuple[Any, ...]:
        return tuple(row._mapping[grouping.value] for grouping in groupings)

    ranks: dict[tuple[Any, ...], tuple[int, dict[int, float]]] = {}
    for row in needed:
        size, ranked = ranks.setdefault(key_of(row), (int(row.size), {}))
        ranked[int(row.rank)] = float(row.seconds)
    groups = []
    for row in counted:
        key = key_of(row)
        values = dict(zip(groupings, key, strict=True))
        size, ranked = ranks.get(key, (0, {}))
        month = values.get(Grouping.MONTH)
        groups.append(
            StatsGroup(
                region=values.get(Grouping.REGION),
                kind=values.get(Grouping.KIND),
                month=None if month is None else months[int(month)][0],
                partner=values.get(Grouping.PARTNER),
                total=_int(row.total),
                pending=_int(row.pending),
                waiting_for_department=_int(row.waiting),
                decided=_int(row.decided),
                clear=_int(row.clear),
                not_clear=_int(row.not_clear),
                overdue=_int(row.overdue),
                median_seconds_to_verdict=percentile(ranked, size, MEDIAN) if size else None,
                p90_seconds_to_verdict=percentile(ranked, size, P90) if size else None,
            )
        )
    groups.sort(key=lambda group: tuple(getattr(group, g.value) for g in groupings))
    return groups
