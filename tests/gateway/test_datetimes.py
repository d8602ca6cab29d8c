"""Every DateTime the schema serves carries its offset: the scalar itself refuses a naive
moment, so no type, old or new, can send one that JavaScript would read as local time."""

from __future__ import annotations

import datetime as dt

import pytest
import strawberry
from strawberry.schema.config import StrawberryConfig

from gateway.schema.scalars import SCALARS

DATETIME = SCALARS[dt.datetime]
assert DATETIME.serialize is not None
assert DATETIME.parse_value is not None
SERIALIZE = DATETIME.serialize
PARSE = DATETIME.parse_value
IRAN = dt.timezone(dt.timedelta(hours=3, minutes=30))


def test_an_aware_moment_is_served_with_its_offset() -> None:
    assert SERIALIZE(dt.datetime(2026, 11, 30, 7, 12, 5, tzinfo=dt.UTC)) == (
        "2026-11-30T07:12:05+00:00"
    )
    assert SERIALIZE(dt.datetime(2026, 11, 30, 10, 42, tzinfo=IRAN)) == (
        "2026-11-30T10:42:00+03:30"
    )


def test_a_naive_moment_is_refused_not_sent() -> None:
    with pytest.raises(TypeError, match="time zone"):
        SERIALIZE(dt.datetime(2026, 11, 30, 7, 12, 5))


def test_a_field_holding_a_naive_moment_errors_and_sends_no_value() -> None:
    @strawberry.type
    class Query:
        @strawberry.field
        def aware(self) -> dt.datetime:
            return dt.datetime(2026, 11, 30, 7, 12, 5, tzinfo=dt.UTC)

        @strawberry.field
        def naive(self) -> dt.datetime | None:
            return dt.datetime(2026, 11, 30, 7, 12, 5)

    schema = strawberry.Schema(Query, config=StrawberryConfig(scalar_map=SCALARS))
    result = schema.execute_sync("{ aware naive }")
    assert result.data == {"aware": "2026-11-30T07:12:05+00:00", "naive": None}
    assert result.errors is not None
    assert [error.path for error in result.errors] == [["naive"]]


def test_input_without_an_offset_is_utc_whatever_the_hosts_zone() -> None:
    assert PARSE("2026-11-30T07:12:05") == dt.datetime(2026, 11, 30, 7, 12, 5, tzinfo=dt.UTC)
    assert PARSE("2026-11-30T10:42:05+03:30") == dt.datetime(2026, 11, 30, 7, 12, 5, tzinfo=dt.UTC)
