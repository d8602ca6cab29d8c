"""Reading what an inquiry's checks judge: the parcel and its records from the planning and
revenue databases, the deed from the land registry and the applicant from the civil registry.

Agency reads for an inquiry are fresh: they bypass the agency cache (a seizure registered five
minutes ago matters) and carry the inquiry's tracking code as their X-Road issue, so that the
agency's own log ties each call to the inquiry it served.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import FromClause, Row, select

from connectors import correlation
from connectors.agencies import Agencies
from connectors.soap.civil_registry import CivilRecord
from connectors.soap.land_registry import Deed, Plate
from db import planning as tables
from db.contact import CitizenRequestRecord, Service
from db.engines import Databases
from gateway import dues
from gateway.clock import WallClock
from gateway.inquiries.facts import Fact, Facts, OpenComplaint
from gateway.parcels import Building, Certificate, Ownership, Parcel, Violation
from identifiers import RegistryPlate

_parcels = tables.Parcel.__table__
_owners = tables.Ownership.__table__
_persons = tables.Person.__table__
_certificates = tables.Certificate.__table__
_violations = tables.Violation.__table__
_buildings = tables.Building.__table__
_PLANNING_FACTS = frozenset({Fact.CERTIFICATES, Fact.VIOLATIONS, Fact.BUILDINGS, Fact.OWNERSHIPS})

# Who the gateway is to the agencies, for an inquiry's reads (X-Road "client").
INQUIRY_CLIENT = "inquiries"


async def find_parcel(
    databases: Databases, *, renewal_code: str | None, plate: RegistryPlate | None
) -> Parcel | None:
    """The parcel a submission names, by renewal code or registry plate."""
    statement = select(_parcels)
    if renewal_code is not None:
        statement = statement.where(_parcels.c.renewal_code == renewal_code)
    elif plate is not None:
        statement = statement.where(
            _parcels.c.registry_section == plate.section,
            _parcels.c.main_plate == plate.main,
            _parcels.c.sub_plate == plate.sub,
        )
    else:
        raise ValueError("a parcel is named by renewal code or registry plate")
    async with databases.planning.connect() as connection:
        row = (await connection.execute(statement.limit(1))).first()
    return None if row is None else Parcel.from_row(row)


async def parcel_by_id(databases: Databases, parcel_id: int) -> Parcel:
    async with databases.planning.connect() as connection:
        row = (await connection.execute(select(_parcels).where(_parcels.c.id == parcel_id))).one()
    return Parcel.from_row(row)


@dataclass(frozen=True, slots=True)
class _PlanningRecords:
    certificates: tuple[Certificate, ...] = ()
    violations: tuple[Violation, ...] = ()
    buildings: tuple[Building, ...] = ()
    ownerships: tuple[Ownership, ...] = ()


_OWNERS = select(
    _owners.c.parcel_id,
    _owners.c.share,
    _owners.c.acquired_on,
    _persons.c.id.label("person_id"),
    _persons.c.national_code,
    _persons.c.first_name,
    _persons.c.last_name,
    _persons.c.father_name,
    _persons.c.birth_date,
).join_from(_owners, _persons, _owners.c.person_id == _persons.c.id)


async def _planning_records(
    databases: Databases, parcel_id: int, needs: frozenset[Fact]
) -> _PlanningRecords:
    async with databases.planning.connect() as connection:

        async def rows(table: FromClause) -> Sequence[Row[Any]]:
            statement = select(table).where(table.c.parcel_id == parcel_id).order_by(table.c.id)
            return (await connection.execute(statement)).all()

        records = _PlanningRecords()
        if Fact.CERTIFICATES in needs:
            certificates = tuple(map(Certificate.from_row, await rows(_certificates)))
            records = replace(records, certificates=certificates)
        if Fact.VIOLATIONS in needs:
            violations = tuple(map(Violation.from_row, await rows(_violations)))
            records = replace(records, violations=violations)
        if Fact.BUILDINGS in needs:
            buildings = tuple(map(Building.from_row, await rows(_buildings)))
            records = replace(records, buildings=buildings)
        if Fact.OWNERSHIPS in needs:
            statement = _OWNERS.where(_owners.c.parcel_id == parcel_id).order_by(_owners.c.id)
            found = (await connection.execute(statement)).all()
            ownerships = tuple(Ownership.from_row(row) for row in found)  # type: ignore[arg-type]
            records = replace(records, ownerships=ownerships)
    return records


async def _dues(databases: Databases, renewal_code: str) -> dues.Dues:
    async with databases.revenue.connect() as connection:
        rows = (
            await connection.execute(dues.ITEMS_BY_RENEWAL_CODE, {"keys": [renewal_code]})
        ).all()
    return dues.group_by_renewal_code(rows, [renewal_code])[0]


_requests = CitizenRequestRecord.__table__
_services = Service.__table__
# A citizen request the municipality still owes an answer (gateway/requests/lifecycle.py).
_UNANSWERED = ("SUBMITTED", "ASSIGNED", "IN_PROGRESS", "WAITING_FOR_CITIZEN", "REOPENED")


async def _open_complaints(databases: Databases, renewal_code: str) -> tuple[OpenComplaint, ...]:
    """Citizens' complaints about the parcel (by its renewal code) not answered yet."""
    statement = (
        select(_requests.c.tracking_code, _services.c.code, _requests.c.registered_at)
        .join_from(_requests, _services, _services.c.id == _requests.c.service_id)
        .where(
            _requests.c.renewal_code == renewal_code,
            _requests.c.kind == "COMPLAINT",
            _requests.c.status.in_(_UNANSWERED),
            _requests.c.merged_into_id.is_(None),
        )
        .order_by(_requests.c.registered_at, _requests.c.id)
    )
    async with databases.engine("contact").connect() as connection:
        rows = (await connection.execute(statement)).all()
    return tuple(
        OpenComplaint(row.tracking_code, row.code, row.registered_at.replace(tzinfo=dt.UTC))
        for row in rows
    )


@dataclass(frozen=True)
class Reading:
    """The facts read for an inquiry, and the agency reads that failed: a check that needs
    one of those stays pending (its job retries); the others are judged at once."""

    facts: Facts
    failures: dict[Fact, Exception]


async def read_facts(
    databases: Databases,
    agencies: Agencies,
    *,
    parcel_id: int,
    applicant_national_code: str,
    tracking_code: str,
    needs: Iterable[Fact],
    now: WallClock,
) -> Reading:
    """The facts `needs` names (the parcel always), each read once and stamped with when it
    was read: the department databases and each agency concurrently, so that an inquiry's
    facts take as long as the slowest agency, not their sum. An agency's failure
    (unavailable, timed out, rejected) is reported in `failures`, its fact left unread; a
    database's failure propagates."""
    wanted = frozenset(needs) | {Fact.PARCEL}
    read_at: dict[Fact, dt.datetime] = {}
    parcel = await parcel_by_id(databases, parcel_id)
    read_at[Fact.PARCEL] = now()

    async def planning_records() -> _PlanningRecords:
        records = await _planning_records(databases, parcel_id, wanted)
        for fact in wanted & _PLANNING_FACTS:
            read_at[fact] = now()
        return records

    async def owed() -> dues.Dues | None:
        if Fact.DUES not in wanted:
            return None
        found = await _dues(databases, parcel.renewal_code)
        read_at[Fact.DUES] = now()
        return found

    async def complaints() -> tuple[OpenComplaint, ...]:
        if Fact.OPEN_COMPLAINTS not in wanted:
            return ()
        found = await _open_complaints(databases, parcel.renewal_code)
        read_at[Fact.OPEN_COMPLAINTS] = now()
        return found

    async def deed() -> Deed | None:
        plate = Plate(parcel.registry_section, parcel.main_plate, parcel.sub_plate)
        found = await agencies.land_registry.deed(plate, fresh=True)
        read_at[Fact.DEED] = now()
        return found

    async def person() -> CivilRecord | None:
        found = await agencies.civil_registry.person(applicant_national_code, fresh=True)
        read_at[Fact.APPLICANT_RECORD] = now()
        return found

    token = correlation.current.set(
        correlation.Correlation(
            request_id=tracking_code, client=INQUIRY_CLIENT, issue=tracking_code
        )
    )
    try:  # tasks copy the context: every agency call carries the tracking code
        calls = {
            fact: asyncio.ensure_future(read())
            for fact, read in ((Fact.DEED, deed), (Fact.APPLICANT_RECORD, person))
            if fact in wanted
        }
    finally:
        correlation.current.reset(token)
    try:
        records, owed_dues, open_complaints = await asyncio.gather(
            planning_records(), owed(), complaints()
        )
    except BaseException:
        for call in calls.values():
            call.cancel()
        raise
    finally:
        if calls:
            await asyncio.wait(calls.values())
    failures: dict[Fact, Exception] = {}
    results: dict[Fact, Any] = {}
    for fact, call in calls.items():
        error = call.exception()
        if error is None:
            results[fact] = call.result()
        elif isinstance(error, Exception):
            failures[fact] = error
        else:  # pragma: no cover - a BaseException (cancellation) goes on
            raise error
    facts = Facts(
        parcel=parcel,
        applicant_national_code=applicant_national_code,
        read_at=read_at,
        dues=owed_dues,
        certificates=records.certificates,
        violations=records.violations,
        buildings=records.buildings,
        ownerships=records.ownerships,
        deed=results.get(Fact.DEED),
        applicant_record=results.get(Fact.APPLICANT_RECORD),
        open_complaints=open_complaints,
    )
    return Reading(facts, failures)
