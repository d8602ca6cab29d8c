"""Routing (ارجاع): which department and region office answer a request, or which outside
agency it is referred to, decided by rules kept as data (db/contact.py's routing_rules).

Rules are tried in their `position` order; the first whose every condition holds routes the
request. A condition left null matches anything: the service or its group, the kind, the
region, an area (a ring of points the request's location must fall in), a window of Tehran's
local hours (from inclusive, to exclusive, wrapping past midnight when from > to) and answers
to the service's questions. A rule's target left null falls to the service's own: its first
executing (RESPONSIBLE) department, else its process owner; the region's office; and, unless
the rule names a department, the agency the catalogue refers the service's matters to (water,
electricity, gas, police). When no rule matches, the service's own target applies too, so a
request is never left without a department.

Rules run when a request is registered, and again (`reroute`) when its service or location
changes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from db.contact import RegionArea, RoutingRule
from gateway.inquiries.workdays import TEHRAN
from gateway.requests import geo
from gateway.requests.records import (
    REQUESTS,
    CitizenRequest,
    ServiceDefinition,
    append_history,
    load,
    load_service,
    naive,
)

__all__ = ["Region", "Route", "Rule", "choose", "load_regions", "load_rules", "reroute", "route"]


@dataclass(frozen=True, slots=True)
class Rule:
    id: int
    position: int
    name: str
    service_code: str | None
    group_code: str | None
    kind: str | None
    region: int | None
    area: tuple[tuple[float, float], ...] | None
    hours_from: int | None
    hours_to: int | None
    answers: Mapping[str, str] | None
    department: str | None
    region_office: str | None
    referred_to: str | None

    @classmethod
    def from_row(cls, row: Any) -> Rule:
        return cls(
            id=row.id,
            position=row.position,
            name=row.name,
            service_code=row.service_code,
            group_code=row.group_code,
            kind=row.kind,
            region=row.region,
            area=None if row.area is None else tuple((p[0], p[1]) for p in row.area),
            hours_from=row.hours_from,
            hours_to=row.hours_to,
            answers=None if row.answers is None else dict(row.answers),
            department=row.department,
            region_office=row.region_office,
            referred_to=row.referred_to,
        )


@dataclass(frozen=True, slots=True)
class Region:
    number: int
    name_fa: str
    name_en: str
    office: str
    boundary: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class Route:
    department: str
    region_office: str | None
    referred_to: str | None
    rule_id: int | None
    rule_name: str | None


def _in_hours(rule: Rule, hour: int) -> bool:
    start, end = rule.hours_from, rule.hours_to
    if start is None or end is None:
        return True
    if start <= end:
        return start <= hour < end
    return hour >= start or hour < end


def matches(
    rule: Rule,
    *,
    service: ServiceDefinition,
    kind: str,
    region: int | None,
    point: geo.Point | None,
    at: dt.datetime,
    answers: Mapping[str, Any],
) -> bool:
    if rule.service_code is not None and rule.service_code != service.code:
        return False
    if rule.group_code is not None and rule.group_code != service.group_code:
        return False
    if rule.kind is not None and rule.kind != kind:
        return False
    if rule.region is not None and rule.region != region:
        return False
    if rule.area is not None and (point is None or not geo.contains(rule.area, point)):
        return False
    if not _in_hours(rule, at.astimezone(TEHRAN).hour):
        return False
    return all(str(answers.get(code)) == str(value) for code, value in (rule.answers or {}).items())


def choose(
    rules: Sequence[Rule],
    regions: Sequence[Region],
    *,
    service: ServiceDefinition,
    kind: str,
    region: int | None,
    point: geo.Point | None,
    at: dt.datetime,
    answers: Mapping[str, Any],
) -> Route:
    """The route of the first matching rule, its blanks filled from the service and region."""
    offices = {r.number: r.office for r in regions}
    default_department = service.responsible[0] if service.responsible else service.owner_department
    for rule in rules:
        if matches(
            rule, service=service, kind=kind, region=region, point=point, at=at, answers=answers
        ):
            referred = rule.referred_to
            if referred is None and rule.department is None:
                referred = service.referred_agency
            return Route(
                department=rule.department or default_department,
                region_office=rule.region_office or offices.get(region or 0),
                referred_to=referred,
                rule_id=rule.id,
                rule_name=rule.name,
            )
    return Route(
        department=default_department,
        region_office=offices.get(region or 0),
        referred_to=service.referred_agency,
        rule_id=None,
        rule_name=None,
    )


async def load_rules(connection: AsyncConnection) -> list[Rule]:
    rows = await connection.execute(
        select(RoutingRule.__table__)
        .where(RoutingRule.__table__.c.active == true())
        .order_by(RoutingRule.__table__.c.position, RoutingRule.__table__.c.id)
    )
    return [Rule.from_row(row) for row in rows]


async def load_regions(connection: AsyncConnection) -> list[Region]:
    rows = await connection.execute(
        select(RegionArea.__table__).order_by(RegionArea.__table__.c.region)
    )
    return [
        Region(
            number=row.region,
            name_fa=row.name_fa,
            name_en=row.name_en,
            office=row.office,
            boundary=tuple((p[0], p[1]) for p in row.boundary),
        )
        for row in rows
    ]


async def route(
    connection: AsyncConnection,
    *,
    service: ServiceDefinition,
    kind: str,
    region: int | None,
    point: geo.Point | None,
    at: dt.datetime,
    answers: Mapping[str, Any],
    regions: Sequence[Region] | None = None,
) -> Route:
    """Routes a request by the rules in the database (see `choose`); `regions`, when the
    caller has read them already."""
    return choose(
        await load_rules(connection),
        regions if regions is not None else await load_regions(connection),
        service=service,
        kind=kind,
        region=region,
        point=point,
        at=at,
        answers=answers,
    )


async def reroute(
    connection: AsyncConnection,
    request_id: int,
    *,
    now: dt.datetime,
    actor_kind: str,
    actor: str,
    note: str | None = None,
) -> CitizenRequest:
    """Runs the rules again for a request whose service or location changed (the caller has
    written the new ones, inside its transaction, and locked the row): its department, region
    office and referral are set anew, and the history says so. Its status is the caller's."""
    request = await load(connection, request_id)
    if request is None:
        raise LookupError(request_id)
    service = await load_service(connection, id=request.service_id)
    assert service is not None
    point = (
        None
        if request.latitude is None or request.longitude is None
        else geo.Point(request.latitude, request.longitude)
    )
    chosen = await route(
        connection,
        service=service,
        kind=request.kind,
        region=request.region,
        point=point,
        at=now,
        answers=request.answers,
    )
    await connection.execute(
        update(REQUESTS)
        .where(REQUESTS.c.id == request_id)
        .values(
            department=chosen.department,
            region_office=chosen.region_office,
            referred_to=chosen.referred_to,
            routing_rule_id=chosen.rule_id,
            updated_at=naive(now),
            version=REQUESTS.c.version + 1,
        )
    )
    await append_history(
        connection,
        request_id=request_id,
        event="ROUTED",
        from_status=request.status,
        to_status=request.status,
        at=now,
        actor_kind=actor_kind,
        actor=actor,
        department=chosen.department,
        note=note or describe(chosen),
    )
    found = await load(connection, request_id)
    assert found is not None
    return found


def describe(chosen: Route) -> str:
    """The history's note for a routing decision."""
    target = f"referred to {chosen.referred_to}" if chosen.referred_to else chosen.department
    rule = chosen.rule_name or "the service's own department"
    return f"Routed: {target} ({rule})."
