"""Correcting a request's service or location (اصلاح درخواست): the 137 centre finds the caller
meant another service, or an officer on the ground places it elsewhere. The routing rules run
again (routing.reroute): department, region office and referral are decided anew, and the
history says so.

Who: operators, the 137 centre and the department the request is assigned to (as for a
transition, lifecycle.require_handler). Not once it is finished (RESOLVED, REJECTED, CLOSED:
CONFLICT naming its status). The new place is checked as at registration (a point outside
every region needs an address; the service must be enabled in the region). A request that
the rules now refer to an outside agency becomes REFERRED; one referred before that the rules
now keep becomes ASSIGNED with a deadline from now. A new service's deadline is counted from
the same assignment with its own working days, any time spent waiting for the citizen kept.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncConnection

from db.engines import begin_write
from gateway.access.principals import Principal
from gateway.errors import BadUserInput, Conflict, ServiceNotAvailableInRegion
from gateway.requests import deadlines, geo, lifecycle, routing
from gateway.requests.records import (
    CitizenRequest,
    append_history,
    load,
    load_service,
    load_workweek,
    naive,
)
from gateway.requests.registration import MAX_ADDRESS

__all__ = ["FINISHED", "correct"]

FINISHED = frozenset({"RESOLVED", "REJECTED", "CLOSED"})


async def _region_of(
    connection: AsyncConnection, point: geo.Point | None, address: str | None
) -> int | None:
    if point is None:
        return None
    regions = await routing.load_regions(connection)
    region = geo.region_of(point, [(r.number, r.boundary) for r in regions])
    if region is None and address is None:
        raise BadUserInput(
            "This point lies outside every region of the city; give an address too.",
            field="latitude",
        )
    return region


async def correct(
    connection: AsyncConnection,
    principal: Principal,
    request_id: int,
    *,
    note: str,
    now: dt.datetime,
    where: ColumnElement[bool] | None,
    service_code: str | None = None,
    location: tuple[float, float] | None = None,
    address: str | None = None,
) -> CitizenRequest:
    """The request with its new service and/or place, routed again; inside the caller's
    transaction (it takes the write lock). NOT_FOUND for a request the caller may not see."""
    text = lifecycle.clean_note(note)
    if service_code is None and location is None and address is None:
        raise BadUserInput("Give a new service, location or address.", field="serviceCode")
    if location is not None and not geo.valid_point(*location):
        raise BadUserInput("Not a point on Earth (WGS 84 degrees).", field="latitude")
    if address is not None:
        address = " ".join(address.split())
        if not 1 <= len(address) <= MAX_ADDRESS:
            raise BadUserInput(f"An address is 1 to {MAX_ADDRESS} characters.", field="address")
    await begin_write(connection)
    request = await lifecycle.locked(connection, request_id, where)
    lifecycle.require_handler(principal, request)
    if request.status in FINISHED or request.merged_into_id is not None:
        raise Conflict(
            f"A {request.status} request is not corrected.", field="id", status=request.status
        )
    old_service = await load_service(connection, id=request.service_id)
    assert old_service is not None
    service = old_service
    if service_code is not None:
        found = await load_service(connection, code=service_code.strip())
        if found is None or not found.active:
            raise BadUserInput("No service of the catalogue has this code.", field="serviceCode")
        service = found
    values: dict[str, Any] = {"service_id": service.id, "updated_at": naive(now)}
    region = request.region
    if location is not None or address is not None:
        point = geo.Point(*location) if location is not None else None
        new_address = address if address is not None else request.address
        region = await _region_of(connection, point, new_address)
        if point is not None:
            values.update(latitude=point.latitude, longitude=point.longitude)
        if address is not None:
            values["address"] = address
        values["region"] = region
    if region is not None and region not in service.regions:
        raise ServiceNotAvailableInRegion(
            f"The service {service.code} is not offered in region {region} yet.",
            serviceCode=service.code,
            region=region,
            regions=list(service.regions),
        )
    week = await load_workweek(connection)
    if service.id != old_service.id and request.deadline_at is not None:
        start = request.assigned_at or request.registered_at
        # Keep whatever waiting for the citizen added to the old deadline.
        added = request.deadline_at - deadlines.due_at(start, old_service.deadline_days, week)
        values["deadline_at"] = naive(deadlines.due_at(start, service.deadline_days, week) + added)
    request = await lifecycle.save(connection, request, values)
    actor_kind, actor = lifecycle.actor_of(principal)
    await append_history(
        connection,
        request_id=request.id,
        event="CORRECTED",
        from_status=request.status,
        to_status=request.status,
        at=now,
        actor_kind=actor_kind,
        actor=actor,
        department=request.department,
        note=text,
    )
    request = await routing.reroute(
        connection, request.id, now=now, actor_kind=actor_kind, actor=actor
    )
    status = request.status
    if request.referred_to is not None and status != "REFERRED":
        moved: dict[str, Any] = {"status": "REFERRED", "deadline_at": None}
    elif request.referred_to is None and status == "REFERRED":
        due = deadlines.due_at(now, service.deadline_days, week)
        moved = {"status": "ASSIGNED", "assigned_at": naive(now), "deadline_at": naive(due)}
    else:
        return request
    request = await lifecycle.save(connection, request, {**moved, "updated_at": naive(now)})
    await append_history(
        connection,
        request_id=request.id,
        event="TRANSITION",
        from_status=status,
        to_status=request.status,
        at=now,
        actor_kind="system",
        actor="routing",
        department=request.department,
        note=routing.describe(
            routing.Route(
                request.department or "", request.region_office, request.referred_to, None, None
            )
        ),
    )
    stored = await load(connection, request.id)
    assert stored is not None
    return stored
