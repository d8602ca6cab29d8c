"""In-person appointments (نوبت‌دهی حضوری): slots per region office and service, made from the
offices' hours on working days (Fridays, Thursdays and the holiday table skipped), and the
bookings a citizen makes, cancels and moves by tracking code.

No slot is ever booked twice: a booking is one conditional UPDATE (`… SET booked_request_id
= :request WHERE id = :slot AND booked_request_id IS NULL`), which every backend applies
atomically, so of any number of concurrent bookings of one slot exactly one changes a row and
the rest are refused with CONFLICT; `booked_request_id` is also unique, so a request holds at
most one slot even when it books two at the same moment. Moving a booking frees the old slot
and takes the new one in the same transaction: it ends with the new slot, or with the old.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, and_, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.contact import AppointmentEvent, AppointmentSlot, RegionArea, Service, ServiceRegion
from db.engines import begin_write, write_turn
from gateway.errors import BadUserInput, Conflict, NotFound
from gateway.figures import TEHRAN
from gateway.inquiries.workdays import Workweek
from gateway.requests.records import (
    HOLIDAYS,
    CitizenRequest,
    append_history,
    aware,
    load_by_tracking_code,
    naive,
)

__all__ = [
    "IN_PERSON_CHANNELS",
    "OfficeHours",
    "Slot",
    "book",
    "cancel",
    "free_slots",
    "generate_slots",
    "load_slots",
    "office_times",
    "reschedule",
]

SLOTS = cast(Table, AppointmentSlot.__table__)
EVENTS = cast(Table, AppointmentEvent.__table__)
_SERVICES = Service.__table__
_SERVICE_REGIONS = ServiceRegion.__table__
_REGIONS = RegionArea.__table__

# Services a citizen comes to an office for: in person, or semi-in-person (an officer visits
# after the citizen files at the office).
IN_PERSON_CHANNELS = ("IN_PERSON", "SEMI_IN_PERSON")

# The most days of slots one generation makes, and the most slots one listing returns.
MAX_DAYS = 92
MAX_SLOTS = 100  # the largest page (GATEWAY_MAX_PAGE_SIZE default)


@dataclass(frozen=True, slots=True)
class OfficeHours:
    """When region offices receive citizens: from `opens` to `closes` (Tehran) on the working
    days of `week`, in slots of `slot_minutes`."""

    week: Workweek
    opens: dt.time = dt.time(8, 0)
    closes: dt.time = dt.time(13, 0)
    slot_minutes: int = 30

    def __post_init__(self) -> None:
        if self.slot_minutes < 5:
            raise ValueError("a slot lasts at least five minutes")
        if self.closes <= self.opens:
            raise ValueError("an office closes after it opens")


@dataclass(frozen=True, slots=True)
class Slot:
    id: int
    region: int
    region_office: str
    service_id: int
    starts_at: dt.datetime  # aware, UTC
    ends_at: dt.datetime
    booked_request_id: int | None
    booked_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: Any) -> Slot:
        starts, ends = aware(row.starts_at), aware(row.ends_at)
        assert starts is not None
        assert ends is not None
        return cls(
            id=row.id,
            region=row.region,
            region_office=row.region_office,
            service_id=row.service_id,
            starts_at=starts,
            ends_at=ends,
            booked_request_id=row.booked_request_id,
            booked_at=aware(row.booked_at),
        )

    @property
    def free(self) -> bool:
        return self.booked_request_id is None


def office_times(
    hours: OfficeHours, first: dt.date, days: int
) -> list[tuple[dt.datetime, dt.datetime]]:
    """Every slot's (start, end), aware in UTC, over `days` calendar days from `first`, on
    the office's working days; a slot that would run past closing time is not made."""
    length = dt.timedelta(minutes=hours.slot_minutes)
    times = []
    for offset in range(days):
        day = first + dt.timedelta(days=offset)
        if not hours.week.is_working_day(day):
            continue
        start = dt.datetime.combine(day, hours.opens, tzinfo=hours.week.zone)
        closes = dt.datetime.combine(day, hours.closes, tzinfo=hours.week.zone)
        while start + length <= closes:
            times.append((start.astimezone(dt.UTC), (start + length).astimezone(dt.UTC)))
            start += length
    return times


async def office_week(connection: AsyncConnection, week: Workweek) -> Workweek:
    """`week` with the contact database's holidays added to those it has."""
    days = set(await connection.scalars(select(HOLIDAYS.c.day)))
    return Workweek(
        working_days=week.working_days,
        closes_at=week.closes_at,
        zone=week.zone,
        holidays=frozenset(days | set(week.holidays)),
    )


async def generate_slots(
    connection: AsyncConnection,
    hours: OfficeHours,
    first: dt.date,
    days: int,
    *,
    service_codes: Sequence[str] | None = None,
) -> int:
    """Makes the missing slots of `days` days from `first` at every region office, for every
    active in-person service enabled in its region (or those named); the caller commits.
    Returns how many were made; slots already there are kept as they are (the write lock is
    taken first, so two generations at once do not both make the same slots)."""
    if not 1 <= days <= MAX_DAYS:
        raise BadUserInput(f"Generate 1 to {MAX_DAYS} days of slots at a time.", field="days")
    await begin_write(connection)
    week = await office_week(connection, hours.week)
    times = office_times(
        OfficeHours(week, hours.opens, hours.closes, hours.slot_minutes), first, days
    )
    if not times:
        return 0
    offered = (
        select(_SERVICE_REGIONS.c.service_id, _REGIONS.c.region, _REGIONS.c.office)
        .join(_SERVICES, _SERVICES.c.id == _SERVICE_REGIONS.c.service_id)
        .join(_REGIONS, _REGIONS.c.region == _SERVICE_REGIONS.c.region)
        .where(_SERVICES.c.active.is_(True), _SERVICES.c.channel.in_(IN_PERSON_CHANNELS))
    )
    if service_codes is not None:
        offered = offered.where(_SERVICES.c.code.in_(list(service_codes)))
    pairs = list(await connection.execute(offered))
    if not pairs:
        return 0
    existing = {
        (row.region_office, row.service_id, row.starts_at)
        for row in await connection.execute(
            select(SLOTS.c.region_office, SLOTS.c.service_id, SLOTS.c.starts_at).where(
                SLOTS.c.starts_at >= naive(times[0][0]), SLOTS.c.starts_at <= naive(times[-1][0])
            )
        )
    }
    rows = [
        {
            "region": pair.region,
            "region_office": pair.office,
            "service_id": pair.service_id,
            "starts_at": naive(starts),
            "ends_at": naive(ends),
        }
        for pair in pairs
        for starts, ends in times
        if (pair.office, pair.service_id, naive(starts)) not in existing
    ]
    for start in range(0, len(rows), 1000):
        await connection.execute(insert(SLOTS), rows[start : start + 1000])
    return len(rows)


async def load_slots(connection: AsyncConnection, ids: Sequence[int]) -> dict[int, Slot]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = await connection.execute(select(SLOTS).where(SLOTS.c.id.in_(wanted)))
    return {row.id: Slot.from_row(row) for row in rows}


async def free_slots(
    connection: AsyncConnection,
    *,
    service_id: int,
    region: int | None,
    since: dt.datetime,
    until: dt.datetime,
    limit: int,
) -> list[Slot]:
    """Unbooked slots of a service starting in [since, until), earliest first."""
    statement = select(SLOTS).where(
        SLOTS.c.service_id == service_id,
        SLOTS.c.booked_request_id.is_(None),
        SLOTS.c.starts_at >= naive(since),
        SLOTS.c.starts_at < naive(until),
    )
    if region is not None:
        statement = statement.where(SLOTS.c.region == region)
    statement = statement.order_by(SLOTS.c.starts_at, SLOTS.c.id).limit(min(limit, MAX_SLOTS))
    return [Slot.from_row(row) for row in await connection.execute(statement)]


# --- Bookings -----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A write transaction, committed when the block ends, rolled back if it raises."""
    async with write_turn(engine), engine.connect() as connection:
        await begin_write(connection)
        try:
            yield connection
        except BaseException:
            await connection.rollback()
            raise
        await connection.commit()


@dataclass(frozen=True, slots=True)
class Booking:
    """What a booking, cancellation or move did: the request, and the slot it now holds
    (None after a cancellation) and the one it gave up."""

    request: CitizenRequest
    slot: Slot | None
    released: Slot | None


async def _request(
    connection: AsyncConnection, tracking_code: str, mobile_last4: str | None
) -> CitizenRequest:
    """The request a citizen names; NOT_FOUND when there is none, or the last four digits
    given do not match its mobile number (as citizenRequest reads it: absent)."""
    request = await load_by_tracking_code(connection, tracking_code)
    if request is None or (
        mobile_last4 is not None
        and (request.citizen_mobile is None or request.citizen_mobile[-4:] != mobile_last4)
    ):
        raise NotFound("No citizen request has this tracking code.")
    if request.merged_into_id is not None:
        raise Conflict("This request was merged into another: book with that one's code.")
    if not request.open:
        raise Conflict(f"The request is {request.status}: appointments are for open requests.")
    return request


async def _held(connection: AsyncConnection, request_id: int) -> Slot | None:
    row = (
        await connection.execute(select(SLOTS).where(SLOTS.c.booked_request_id == request_id))
    ).first()
    return Slot.from_row(row) if row is not None else None


async def _take(
    connection: AsyncConnection, slot_id: int, request: CitizenRequest, now: dt.datetime
) -> Slot:
    """Books the slot for the request, or refuses: the one statement that decides."""
    slot = (await load_slots(connection, [slot_id])).get(slot_id)
    if slot is None:
        raise NotFound("No appointment slot has this id.")
    if slot.service_id != request.service_id:
        raise BadUserInput("The slot is for another service than the request's.", field="slotId")
    if slot.starts_at <= now:
        raise Conflict("The slot has already begun.")
    try:
        taken = await connection.execute(
            update(SLOTS)
            .where(and_(SLOTS.c.id == slot_id, SLOTS.c.booked_request_id.is_(None)))
            .values(booked_request_id=request.id, booked_at=naive(now))
        )
    except IntegrityError as exc:  # the same request took another slot at the same moment
        raise Conflict("The request already holds an appointment.") from exc
    if taken.rowcount != 1:
        raise Conflict("The slot is already booked: choose another.")
    return Slot(
        slot.id,
        slot.region,
        slot.region_office,
        slot.service_id,
        slot.starts_at,
        slot.ends_at,
        request.id,
        now,
    )


async def _record(
    connection: AsyncConnection,
    event: str,
    slot: Slot,
    request: CitizenRequest,
    actor_kind: str,
    actor: str,
    now: dt.datetime,
) -> None:
    await connection.execute(
        insert(EVENTS).values(
            slot_id=slot.id, request_id=request.id, event=event, at=naive(now), actor=actor
        )
    )
    local = slot.starts_at.astimezone(TEHRAN)
    await append_history(
        connection,
        request_id=request.id,
        event=f"APPT_{event}",  # APPT_BOOKED, APPT_CANCELLED, APPT_RESCHEDULED
        from_status=request.status,
        to_status=request.status,
        at=now,
        actor_kind=actor_kind,
        actor=actor,
        note=f"{slot.region_office} {local:%Y-%m-%d %H:%M}",
    )


async def book(
    engine: AsyncEngine,
    *,
    slot_id: int,
    tracking_code: str,
    mobile_last4: str | None,
    actor_kind: str,
    actor: str,
    now: dt.datetime,
) -> Booking:
    """Books a free slot for an open request that holds none (to move one, reschedule), in a
    transaction of its own. NOT_FOUND for an unknown code or slot, CONFLICT for a slot booked
    already or begun, or a request that holds a slot or is closed."""
    async with _transaction(engine) as connection:
        request = await _request(connection, tracking_code, mobile_last4)
        if await _held(connection, request.id) is not None:
            raise Conflict("The request already holds an appointment: reschedule it instead.")
        slot = await _take(connection, slot_id, request, now)
        await _record(connection, "BOOKED", slot, request, actor_kind, actor, now)
    return Booking(request, slot, None)


async def cancel(
    engine: AsyncEngine,
    *,
    tracking_code: str,
    mobile_last4: str | None,
    actor_kind: str,
    actor: str,
    now: dt.datetime,
) -> Booking:
    """Frees the request's slot. CONFLICT when it holds none or the slot has begun."""
    async with _transaction(engine) as connection:
        request = await load_by_tracking_code(connection, tracking_code)
        if request is None or (
            mobile_last4 is not None
            and (request.citizen_mobile is None or request.citizen_mobile[-4:] != mobile_last4)
        ):
            raise NotFound("No citizen request has this tracking code.")
        held = await _held(connection, request.id)
        if held is None:
            raise Conflict("The request holds no appointment.")
        if held.starts_at <= now:
            raise Conflict("The appointment has already begun.")
        await connection.execute(
            update(SLOTS)
            .where(SLOTS.c.id == held.id, SLOTS.c.booked_request_id == request.id)
            .values(booked_request_id=None, booked_at=None)
        )
        await _record(connection, "CANCELLED", held, request, actor_kind, actor, now)
    return Booking(request, None, held)


async def reschedule(
    engine: AsyncEngine,
    *,
    slot_id: int,
    tracking_code: str,
    mobile_last4: str | None,
    actor_kind: str,
    actor: str,
    now: dt.datetime,
) -> Booking:
    """Moves the request's booking to another free slot, in one transaction: if the new slot
    cannot be taken, the whole transaction rolls back and the old one is kept."""
    async with _transaction(engine) as connection:
        request = await _request(connection, tracking_code, mobile_last4)
        held = await _held(connection, request.id)
        if held is None:
            raise Conflict("The request holds no appointment: book one.")
        if held.id == slot_id:
            raise Conflict("The request already holds this slot.")
        if held.starts_at <= now:
            raise Conflict("The appointment has already begun.")
        await connection.execute(
            update(SLOTS)
            .where(SLOTS.c.id == held.id, SLOTS.c.booked_request_id == request.id)
            .values(booked_request_id=None, booked_at=None)
        )
        slot = await _take(connection, slot_id, request, now)
        await _record(connection, "RESCHEDULED", slot, request, actor_kind, actor, now)
    return Booking(request, slot, held)
