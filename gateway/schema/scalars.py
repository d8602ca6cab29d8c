"""Custom scalars: identifiers that validate and normalize themselves, Money, and both calendars."""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, NewType, TypeVar

import jdatetime
import strawberry
from graphql import StringValueNode, ValueNode
from strawberry.schema.types.base_scalars import DateTimeDefinition
from strawberry.types.scalar import ScalarDefinition

import identifiers
from gateway.clock import as_utc
from gateway.guards.execution import serializes_as_itself

NationalCode = NewType("NationalCode", str)
PostalCode = NewType("PostalCode", str)
RenewalCode = NewType("RenewalCode", str)
RegistryPlate = NewType("RegistryPlate", str)
Money = NewType("Money", int)


def _string_literal(node: ValueNode, _variables: object = None) -> str:
    if not isinstance(node, StringValueNode):
        raise ValueError("expected a string")
    return node.value


def _identifier(
    name: str, description: str, parse: object, specified_by: str | None = None
) -> ScalarDefinition:
    def parse_value(value: object) -> str:
        if not isinstance(value, str):
            raise ValueError("expected a string")
        return str(parse(value))  # type: ignore[operator]

    return strawberry.scalar(
        name=name,
        description=description,
        serialize=str,
        parse_value=parse_value,
        parse_literal=lambda node, variables=None: parse_value(_string_literal(node)),
        specified_by_url=specified_by,
    )


def _serialize_decimal(value: object) -> str:
    # One spelling per number, whichever source it came from: a database column's scale
    # ("6.0000") and an agency's canonical xs:decimal ("6") both read "6"; never an exponent.
    if not isinstance(value, Decimal):
        raise TypeError("Decimal fields hold Decimal values")
    return format(value.normalize(), "f")


def _parse_decimal(value: object) -> Decimal:
    try:
        parsed = Decimal(str(value))
    except InvalidOperation:
        raise ValueError("expected a decimal number") from None
    if not parsed.is_finite():
        raise ValueError("expected a decimal number")
    return parsed


@serializes_as_itself(int)
def _serialize_money(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("Money must be integer rials")
    return value


def _serialize_datetime(value: object) -> str:
    # A moment without its zone reads as local time in JavaScript: refused here, for every
    # DateTime field at once, rather than sent ambiguous (issue 8, item 10).
    if not isinstance(value, dt.datetime):
        raise TypeError("DateTime fields hold datetime values")
    if value.utcoffset() is None:
        raise TypeError("a DateTime must carry its time zone (UTC for the gateway's records)")
    return value.isoformat()


def _parse_datetime(value: object) -> dt.datetime:
    # Whatever the host's zone: a moment given without an offset is UTC, as documented.
    parsed = DateTimeDefinition.parse_value(value)  # type: ignore[misc]
    assert isinstance(parsed, dt.datetime)
    return as_utc(parsed)


SCALARS: dict[object, ScalarDefinition] = {
    NationalCode: _identifier(
        "NationalCode",
        "An Iranian national ID (کد ملی): 10 digits with a check digit. Input may use "
        "Persian or Arabic-Indic digits and may omit leading zeros.",
        identifiers.parse_national_code,
    ),
    PostalCode: _identifier(
        "PostalCode",
        "An Iranian postal code: 10 digits. Input may use Persian or Arabic-Indic digits.",
        identifiers.parse_postal_code,
    ),
    RenewalCode: _identifier(
        "RenewalCode",
        "The municipality's parcel key (کد نوسازی): region-district-block-parcel, optionally "
        "followed by -building-unit.",
        identifiers.parse_renewal_code,
    ),
    RegistryPlate: _identifier(
        "RegistryPlate",
        "A land-registry plate (پلاک ثبتی) as section-main/sub, e.g. 11-45/123: registry "
        "section 11, main plate 45, sub plate 123.",
        identifiers.parse_registry_plate,
    ),
    Decimal: strawberry.scalar(
        name="Decimal",
        description="A decimal number, as a string in its shortest plain form: `6`, `1.5`, "
        "`2260.16` (never `6.0000` or `6E+1`).",
        serialize=_serialize_decimal,
        parse_value=_parse_decimal,
    ),
    dt.datetime: ScalarDefinition(
        name="DateTime",
        description="A moment in ISO 8601 with its offset from UTC, e.g. "
        "2026-03-01T08:30:00+00:00: the gateway's own records in UTC, an agency's as its "
        "clock reads (Iran's offset). Input without an offset is taken as UTC.",
        specified_by_url=None,
        serialize=_serialize_datetime,
        parse_value=_parse_datetime,
        parse_literal=None,
        origin=dt.datetime,
    ),
    Money: strawberry.scalar(
        name="Money",
        description="An amount in Iranian rials, as an integer (never a float).",
        serialize=_serialize_money,
        parse_value=_serialize_money,
    ),
}


@strawberry.type(description="A day, in ISO 8601 for machines and in the Solar Hijri calendar.")
class CalendarDate:
    iso: dt.date = strawberry.field(description="ISO 8601 date (Gregorian).")
    jalali: str = strawberry.field(description="Solar Hijri (Jalali) date as YYYY/MM/DD.")


@functools.lru_cache(maxsize=65536)
def calendar_date(value: dt.date) -> CalendarDate:
    """Plain fields resolve far faster than method resolvers, and days repeat: build once."""
    jalali = jdatetime.date.fromgregorian(date=value).strftime("%Y/%m/%d")
    return CalendarDate(iso=value, jalali=str(jalali))


def optional_date(value: dt.date | None) -> CalendarDate | None:
    return None if value is None else calendar_date(value)


EnumT = TypeVar("EnumT", bound=Enum)


def by_value(enum: type[EnumT]) -> dict[Any, EnumT]:
    """The enum's members by the value the database holds: a page converts hundreds, and a
    look-up here costs a tenth of calling the enum (a value outside it is a KeyError)."""
    return {member.value: member for member in enum}
