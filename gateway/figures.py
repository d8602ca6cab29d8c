"""SQL building blocks for figures over stored moments, shared by the inquiries' and the
citizen requests' statistics: Iran's (Jalali) months, durations in seconds on every dialect,
percentiles fetched as the few rows they are made of, and a portable floor.

Months are Iran's: a Jalali month starts at midnight in Tehran. Rather than compute a local
date per row (dialect-specific, and blind to the zone's history), the UTC moments at which the
months of a range start are computed here with the zone database and the rows are put in
their month by a CASE over those moments: exact, portable, and as cheap as a comparison.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import jdatetime
from sqlalchemy import BigInteger, ColumnElement, Float, and_, case, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

from gateway.clock import naive_utc

__all__ = [
    "MEDIAN",
    "P90",
    "TEHRAN",
    "Floor",
    "SecondsBetween",
    "jalali_month",
    "month_index",
    "month_start",
    "months_between",
    "needed_rank",
    "percentile",
]

TEHRAN = ZoneInfo("Asia/Tehran")


# --- Months -------------------------------------------------------------------------------


def jalali_month(moment: dt.datetime) -> str:
    """The Jalali month (in Tehran) of a moment, as "1404-07"; naive moments are UTC."""
    local = moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment
    day = jdatetime.date.fromgregorian(date=local.astimezone(TEHRAN).date())
    return f"{day.year:04d}-{day.month:02d}"


def month_start(year: int, month: int) -> dt.datetime:
    """When a Jalali month starts, as naive UTC (the database's moments)."""
    first = jdatetime.date(year, month, 1).togregorian()
    return naive_utc(dt.datetime.combine(first, dt.time(), TEHRAN))


def months_between(first: dt.datetime, last: dt.datetime) -> list[tuple[str, dt.datetime]]:
    """Every Jalali month from the one holding `first` to the one holding `last` (naive UTC),
    as (label, start)."""
    year, month = (int(part) for part in jalali_month(first).split("-"))
    months: list[tuple[str, dt.datetime]] = []
    while True:
        start = month_start(year, month)
        if start > last:
            return months
        months.append((f"{year:04d}-{month:02d}", start))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def month_index(column: Any, months: Sequence[tuple[str, dt.datetime]]) -> ColumnElement[int]:
    """The index in `months` of the month holding `column`'s moment."""
    if len(months) == 1:
        return literal(0)
    return case(
        *((column < start, index) for index, (_, start) in enumerate(months[1:])),
        else_=len(months) - 1,
    )


# --- Durations ----------------------------------------------------------------------------


class SecondsBetween(ColumnElement[float]):
    """`end - start` in seconds, to the millisecond (SQLite's clock resolution)."""

    __visit_name__ = "seconds_between"
    inherit_cache = True
    type = Float()
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy's protocol for the cache key)
        ("start", InternalTraversal.dp_clauseelement),
        ("end", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, start: ColumnElement[Any], end: ColumnElement[Any]) -> None:
        self.start = start
        self.end = end


@compiles(SecondsBetween)
def _seconds_sqlite(element: SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = compiler.process(element.start, **kw), compiler.process(element.end, **kw)
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


@compiles(SecondsBetween, "postgresql")
def _seconds_postgresql(element: SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = compiler.process(element.start, **kw), compiler.process(element.end, **kw)
    return f"EXTRACT(EPOCH FROM ({end} - {start}))"


@compiles(SecondsBetween, "mysql")
def _seconds_mysql(element: SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = compiler.process(element.start, **kw), compiler.process(element.end, **kw)
    return f"(TIMESTAMPDIFF(MICROSECOND, {start}, {end}) / 1000000.0)"


class Floor(ColumnElement[int]):
    """The greatest integer not above a number, as a 64-bit integer on every dialect (SQLite
    has no FLOOR without its math extension, and PostgreSQL's CAST to integer rounds)."""

    __visit_name__ = "gateway_floor"
    inherit_cache = True
    type = BigInteger()
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy's protocol for the cache key)
        ("value", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, value: ColumnElement[Any]) -> None:
        self.value = value


@compiles(Floor)
def _floor_sqlite(element: Floor, compiler: SQLCompiler, **kw: Any) -> str:
    value = compiler.process(element.value, **kw)
    # CAST truncates toward zero; one less below zero when a fraction was cut off.
    return f"(CAST({value} AS INTEGER) - (({value}) < CAST({value} AS INTEGER)))"


@compiles(Floor, "postgresql")
def _floor_postgresql(element: Floor, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(FLOOR({compiler.process(element.value, **kw)}) AS BIGINT)"


@compiles(Floor, "mysql")
def _floor_mysql(element: Floor, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(FLOOR({compiler.process(element.value, **kw)}) AS SIGNED)"


# --- Percentiles --------------------------------------------------------------------------

# The percentiles reported, as fractions a/b (integers, so that SQL can pick their rows).
MEDIAN = (1, 2)
P90 = (9, 10)


def needed_rank(rank: Any, size: Any, p: tuple[int, int]) -> ColumnElement[bool]:
    """Whether the `rank`-th (1-based) of `size` ordered values enters the percentile a/b,
    interpolated linearly between the values at ranks floor(h)+1 and ceil(h)+1, where
    h = (size-1)·a/b: exactly when |(size-1)·a - (rank-1)·b| < b. Written without
    subtraction, because MySQL's ROW_NUMBER() is unsigned and would overflow below zero."""
    a, b = p
    return and_(size * a < rank * b + a, rank * b + a < size * a + 2 * b)


def percentile(ranked: dict[int, float], size: int, p: tuple[int, int]) -> float:
    """The percentile a/b of `size` ordered values, from those at the ranks it needs."""
    a, b = p
    h = Fraction((size - 1) * a, b)
    low, high = math.floor(h), math.ceil(h)
    below, above = ranked[low + 1], ranked[high + 1]
    return round(below + float(h - low) * (above - below), 3)
