"""The planning department's records as the domain sees them (parcels, their owners, buildings,
permits, certificates and violations; regions and districts), and finding parcels: filters
across the planning and revenue databases, keyset pagination.

Loaders and searches turn each row into one of these frozen dataclasses once; the schema
converts them to GraphQL types (`from_domain`), so no column name reaches it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Self

from sqlalchemy import ColumnElement, Row, exists, func, select

from db import planning as tables
from db.engines import Databases
from gateway import dues

_parcels = tables.Parcel.__table__
_violations = tables.Violation.__table__
_regions = tables.Region.__table__
_districts = tables.District.__table__


# Records: `from_row` takes a row of the table's own columns (extra columns are ignored).


@dataclass(frozen=True, slots=True)
class Region:
    id: int
    number: int
    name: str

    @classmethod
    def from_row(cls, row: Row[Any]) -> Self:
        return cls(row.id, row.number, row.name)


@dataclass(frozen=True, slots=True)
class District:
    id: int
    region_id: int
    number: int
    name: str

    @classmethod
    def from_row(cls, row: Row[Any]) -> Self:
        return cls(row.id, row.region_id, row.number, row.name)


@dataclass(frozen=True, slots=True)
class Person:
    id: int
    national_code: str
    first_name: str
    last_name: str
    father_name: str
    birth_date: dt.date

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @classmethod
    def from_row(cls, row: Row[Any]) -> Self:
        return cls(
            row.id, row.national_code, row.first_name, row.last_name, row.father_name,
            row.birth_date,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Ownership:
    """A person's share of a parcel, in dang (six dang make the whole)."""

    parcel_id: int
    owner: Person
    share: Decimal
    acquired_on: dt.date

    @classmethod
    def from_row(cls, row: Row[Any]) -> Self:
        """From a row of an ownership joined with its person (whose id is `person_id`)."""
        owner = Person(
            row.person_id, row.national_code, row.first_name, row.last_name, row.father_name,
            row.birth_date,
        )  # fmt: skip
        return cls(row.parcel_id, owner, row.share, row.acquired_on)


@dataclass(frozen=True, slots=True)
class Parcel:
    id: int
    region_id: int
    district_id: int
    renewal_code: str
    registry_section: int
    main_plate: int
    sub_plate: int
    postal_code: str
    address: str
    land_use: str
    density_percent: int
    area: Decimal  # square metres

    @property
    def registry_plate(self) -> str:
        return f"{self.registry_section}-{self.main_plate}/{self.sub_plate}"

    @classmethod
    def from_row(cls, row: Row[Any]) -> Self:
        return cls(
            row.id, row.region_id, row.district_id, row.renewal_code, row.registry_section,
            row.main_plate, row.sub_plate, row.postal_code, row.address, row.land_use,
            row.density_percent, row.area,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Building:
    id: int
    parcel_id: int
    floors: int
    units: int
    built_area: Decimal  # square metres
    construction_year: int  # Solar Hijri year

    @classmethod
    def from_row(cls, row: Row[Any]) -> Self:
        return cls(
            row.id, row.parcel_id, row.floors, row.units, row.built_area, row.construction_year
        )


@dataclass(frozen=True, slots=True)
class Permit:
    """A building permit (پروانه ساختمانی)."""

    id: int
    parcel_id: int
    number: str
    kind: str
    issued_on: dt.date
    expires_on: dt.date
    floors: int
    units: int

    @classmethod
    def from_row(cls, row: Row[Any]) -> Self:
        return cls(
            row.id, row.parcel_id, row.number, row.kind, row.issued_on, row.expires_on,
            row.floors, row.units,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Certificate:
    """A completion (پایان کار) or no-violation (عدم خلاف) certificate."""

    id: int
    parcel_id: int
    building_id: int | None
    kind: str
    number: str
    issued_on: dt.date

    @classmethod
    def from_row(cls, row: Row[Any]) -> Self:
        return cls(row.id, row.parcel_id, row.building_id, row.kind, row.number, row.issued_on)


@dataclass(frozen=True, slots=True)
class Violation:
    """A building violation and, once ruled on, the Article 100 commission's ruling."""

    id: int
    parcel_id: int
    kind: str
    detected_on: dt.date
    description: str
    status: str
    ruling: str | None
    ruled_on: dt.date | None
    fine: int | None  # rials, when the ruling is a fine

    @classmethod
    def from_row(cls, row: Row[Any]) -> Self:
        return cls(
            row.id, row.parcel_id, row.kind, row.detected_on, row.description, row.status,
            row.ruling, row.ruled_on, None if row.fine is None else int(row.fine),
        )  # fmt: skip


# Finding parcels.


@dataclass(frozen=True)
class ParcelFilter:
    region: int | None = None  # region number, as citizens know it
    district: int | None = None  # district number within the region
    land_use: str | None = None
    has_outstanding_dues: bool | None = None
    has_open_violations: bool | None = None


@dataclass(frozen=True)
class ParcelPage:
    parcels: list[Parcel]
    has_next_page: bool


def _conditions(filter: ParcelFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filter.region is not None:
        conditions.append(
            _parcels.c.region_id.in_(
                select(_regions.c.id).where(_regions.c.number == filter.region).scalar_subquery()
            )
        )
    if filter.district is not None:
        conditions.append(
            _parcels.c.district_id.in_(
                select(_districts.c.id).where(_districts.c.number == filter.district)
            )
        )
    if filter.land_use is not None:
        conditions.append(_parcels.c.land_use == filter.land_use)
    if filter.has_open_violations is not None:
        open_violation = exists().where(
            _violations.c.parcel_id == _parcels.c.id, _violations.c.status == "open"
        )
        conditions.append(open_violation if filter.has_open_violations else ~open_violation)
    return conditions


async def _outstanding_codes(databases: Databases) -> set[str]:
    async with databases.revenue.connect() as connection:
        result = await connection.execute(dues.outstanding_renewal_codes_statement())
        return set(result.scalars())


async def _ids_across_databases(
    databases: Databases, filter: ParcelFilter, after_id: int
) -> list[int]:
    """Parcel ids after the cursor matching planning conditions and the revenue condition.

    The dues condition lives in another database, so it cannot join: the set of
    parcels with outstanding dues is read once and intersected here.
    """
    codes = await _outstanding_codes(databases)
    statement = (
        select(_parcels.c.id, _parcels.c.renewal_code)
        .where(_parcels.c.id > after_id, *_conditions(filter))
        .order_by(_parcels.c.id)
    )
    async with databases.planning.connect() as connection:
        rows = (await connection.execute(statement)).all()
    wanted = bool(filter.has_outstanding_dues)
    return [row.id for row in rows if (row.renewal_code in codes) == wanted]


async def find_parcels(
    databases: Databases, filter: ParcelFilter, *, first: int, after_id: int = 0
) -> ParcelPage:
    if filter.has_outstanding_dues is None:
        statement = (
            select(_parcels)
            .where(_parcels.c.id > after_id, *_conditions(filter))
            .order_by(_parcels.c.id)
            .limit(first + 1)
        )
        async with databases.planning.connect() as connection:
            rows = list((await connection.execute(statement)).all())
    else:
        ids = (await _ids_across_databases(databases, filter, after_id))[: first + 1]
        rows = []
        if ids:
            statement = select(_parcels).where(_parcels.c.id.in_(ids)).order_by(_parcels.c.id)
            async with databases.planning.connect() as connection:
                rows = list((await connection.execute(statement)).all())
    return ParcelPage(
        parcels=[Parcel.from_row(row) for row in rows[:first]], has_next_page=len(rows) > first
    )


async def count_parcels(databases: Databases, filter: ParcelFilter) -> int:
    if filter.has_outstanding_dues is not None:
        return len(await _ids_across_databases(databases, filter, 0))
    statement = select(func.count()).select_from(_parcels).where(*_conditions(filter))
    async with databases.planning.connect() as connection:
        return int((await connection.execute(statement)).scalar_one())
