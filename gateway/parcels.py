"""Finding parcels: filters across the planning and revenue databases, keyset pagination."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, exists, func, select

from db.engines import Databases
from db.planning import District, Parcel, Region, Violation
from gateway import dues

_parcels = Parcel.__table__
_violations = Violation.__table__
_regions = Region.__table__
_districts = District.__table__


@dataclass(frozen=True)
class ParcelFilter:
    region: int | None = None  # region number, as citizens know it
    district: int | None = None  # district number within the region
    land_use: str | None = None
    has_outstanding_dues: bool | None = None
    has_open_violations: bool | None = None


@dataclass(frozen=True)
class ParcelPage:
    rows: list[Row[Any]]
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
    return ParcelPage(rows=rows[:first], has_next_page=len(rows) > first)


async def count_parcels(databases: Databases, filter: ParcelFilter) -> int:
    if filter.has_outstanding_dues is not None:
        return len(await _ids_across_databases(databases, filter, 0))
    statement = select(func.count()).select_from(_parcels).where(*_conditions(filter))
    async with databases.planning.connect() as connection:
        return int((await connection.execute(statement)).scalar_one())
