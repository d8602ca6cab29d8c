"""Citizen requests and the catalogue as the rest of the gateway sees them: frozen values built
from rows once, so that no column name reaches the schema, and the few reads every part of
the contact centre needs (by id, by tracking code, a request's history).

Every module of gateway/requests (and the schema, Open311, the dashboard) reads through here;
the tables themselves are in db/contact.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Self, cast

from sqlalchemy import ColumnElement, Row, Table, insert, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from db.contact import (
    CitizenRequestRecord,
    Holiday,
    RegionArea,
    RequestHistoryRecord,
    RequestReplyRecord,
    Service,
    ServiceDepartment,
    ServiceGroup,
    ServiceRegion,
)
from gateway.inquiries.records import aware, naive
from gateway.inquiries.workdays import Workweek
from gateway.requests.deadlines import request_week

__all__ = [
    "CLOSED_STATUSES",
    "DATABASE",
    "GROUPS",
    "HISTORY",
    "OPEN_STATUSES",
    "REPLIES",
    "REQUESTS",
    "SERVICES",
    "CitizenRequest",
    "HistoryEntry",
    "Reply",
    "ServiceDefinition",
    "append_history",
    "aware",
    "load",
    "load_by_tracking_code",
    "load_history",
    "load_many",
    "load_replies",
    "load_service",
    "load_services",
    "load_workweek",
    "mobile_last4",
    "naive",
]

# The registry's name for the contact centre's database (db/registry.py).
DATABASE = "contact"

REQUESTS = cast(Table, CitizenRequestRecord.__table__)
HISTORY = cast(Table, RequestHistoryRecord.__table__)
REPLIES = cast(Table, RequestReplyRecord.__table__)
SERVICES = cast(Table, Service.__table__)
GROUPS = cast(Table, ServiceGroup.__table__)
SERVICE_DEPARTMENTS = cast(Table, ServiceDepartment.__table__)
SERVICE_REGIONS = cast(Table, ServiceRegion.__table__)
REGIONS = cast(Table, RegionArea.__table__)
HOLIDAYS = cast(Table, Holiday.__table__)

# A request in one of these is finished with: no deadline runs, no duplicate is offered.
CLOSED_STATUSES = frozenset({"RESOLVED", "REJECTED", "REFERRED", "CLOSED"})
OPEN_STATUSES = frozenset(
    {"SUBMITTED", "ASSIGNED", "IN_PROGRESS", "WAITING_FOR_CITIZEN", "REOPENED"}
)


def mobile_last4(mobile: str | None) -> str | None:
    return mobile[-4:] if mobile else None


@dataclass(frozen=True, slots=True)
class ServiceDefinition:
    """A service of the catalogue with its group, departments and enabled regions."""

    id: int
    code: str
    group_code: str
    group_name_fa: str
    group_name_en: str
    name_fa: str
    name_en: str
    description_fa: str | None
    description_en: str | None
    channel: str
    owner_department: str
    deadline_days: int
    questions: tuple[dict[str, Any], ...]
    keywords: str | None
    referred_agency: str | None
    active: bool
    responsible: tuple[str, ...]  # departments that execute it
    sees: tuple[str, ...]  # departments that only see its requests
    regions: tuple[int, ...]  # where it is enabled
    updated_at: dt.datetime

    def enabled_in(self, region: int | None) -> bool:
        return self.active and region is not None and region in self.regions


@dataclass(frozen=True, slots=True)
class CitizenRequest:
    id: int
    tracking_code: str
    kind: str
    status: str
    service_id: int
    channel: str
    registered_by_kind: str
    registered_by: str
    description: str
    latitude: float | None
    longitude: float | None
    address: str | None
    renewal_code: str | None
    region: int | None
    department: str | None
    region_office: str | None
    referred_to: str | None
    routing_rule_id: int | None
    citizen_name: str | None
    citizen_mobile: str | None
    photo_urls: tuple[str, ...]
    answers: dict[str, Any]
    open311_token: str | None
    parent_id: int | None
    merged_into_id: int | None
    registered_at: dt.datetime
    updated_at: dt.datetime
    assigned_at: dt.datetime | None
    deadline_at: dt.datetime | None
    paused_since: dt.datetime | None
    paused_seconds: int
    resolved_at: dt.datetime | None
    closed_at: dt.datetime | None
    reopen_count: int
    rating: int | None
    rated_at: dt.datetime | None
    public_consent: bool
    anonymised_at: dt.datetime | None
    overdue_at: dt.datetime | None
    reminded_at: dt.datetime | None
    escalated_at: dt.datetime | None
    version: int

    @classmethod
    def from_row(cls, row: Row[Any] | CitizenRequestRecord) -> Self:
        registered = aware(row.registered_at)
        updated = aware(row.updated_at)
        assert registered is not None
        assert updated is not None
        return cls(
            id=row.id,
            tracking_code=row.tracking_code,
            kind=row.kind,
            status=row.status,
            service_id=row.service_id,
            channel=row.channel,
            registered_by_kind=row.registered_by_kind,
            registered_by=row.registered_by,
            description=row.description,
            latitude=row.latitude,
            longitude=row.longitude,
            address=row.address,
            renewal_code=row.renewal_code,
            region=row.region,
            department=row.department,
            region_office=row.region_office,
            referred_to=row.referred_to,
            routing_rule_id=row.routing_rule_id,
            citizen_name=row.citizen_name,
            citizen_mobile=row.citizen_mobile,
            photo_urls=tuple(row.photo_urls or ()),
            answers=dict(row.answers or {}),
            open311_token=row.open311_token,
            parent_id=row.parent_id,
            merged_into_id=row.merged_into_id,
            registered_at=registered,
            updated_at=updated,
            assigned_at=aware(row.assigned_at),
            deadline_at=aware(row.deadline_at),
            paused_since=aware(row.paused_since),
            paused_seconds=row.paused_seconds or 0,
            resolved_at=aware(row.resolved_at),
            closed_at=aware(row.closed_at),
            reopen_count=row.reopen_count or 0,
            rating=row.rating,
            rated_at=aware(row.rated_at),
            public_consent=bool(row.public_consent),
            anonymised_at=aware(row.anonymised_at),
            overdue_at=aware(row.overdue_at),
            reminded_at=aware(row.reminded_at),
            escalated_at=aware(row.escalated_at),
            version=row.version or 1,
        )

    @property
    def open(self) -> bool:
        return self.status in OPEN_STATUSES

    def overdue(self, now: dt.datetime) -> bool:
        """Past its deadline while still open and not waiting for the citizen."""
        return (
            self.open
            and self.status != "WAITING_FOR_CITIZEN"
            and self.deadline_at is not None
            and now > self.deadline_at
        )


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    id: int
    request_id: int
    event: str
    from_status: str | None
    to_status: str
    at: dt.datetime
    actor_kind: str
    actor: str
    department: str | None
    note: str | None

    @classmethod
    def from_row(cls, row: Row[Any] | RequestHistoryRecord) -> Self:
        at = aware(row.at)
        assert at is not None
        return cls(
            id=row.id,
            request_id=row.request_id,
            event=row.event,
            from_status=row.from_status,
            to_status=row.to_status,
            at=at,
            actor_kind=row.actor_kind,
            actor=row.actor,
            department=row.department,
            note=row.note,
        )


@dataclass(frozen=True, slots=True)
class Reply:
    id: int
    request_id: int
    at: dt.datetime
    author_kind: str
    author: str
    department: str | None
    body: str

    @classmethod
    def from_row(cls, row: Row[Any] | RequestReplyRecord) -> Self:
        at = aware(row.at)
        assert at is not None
        return cls(
            id=row.id,
            request_id=row.request_id,
            at=at,
            author_kind=row.author_kind,
            author=row.author,
            department=row.department,
            body=row.body,
        )


# --- Reads -----------------------------------------------------------------------------------


async def load(
    connection: AsyncConnection,
    request_id: int,
    *,
    where: ColumnElement[bool] | None = None,
    for_update: bool = False,
) -> CitizenRequest | None:
    """One request by id; `where` is a row rule's condition (gateway/access/rows.py), and
    `for_update` locks the row (on SQLite, begin with db.engines.begin_write instead)."""
    statement = select(REQUESTS).where(
        REQUESTS.c.id == request_id, where if where is not None else true()
    )
    if for_update and connection.dialect.name != "sqlite":
        statement = statement.with_for_update()
    row = (await connection.execute(statement)).first()
    return CitizenRequest.from_row(row) if row is not None else None


async def load_by_tracking_code(
    connection: AsyncConnection,
    tracking_code: str,
    *,
    where: ColumnElement[bool] | None = None,
    for_update: bool = False,
) -> CitizenRequest | None:
    """One request by its (parsed, 16-digit) tracking code; see `load`."""
    statement = select(REQUESTS).where(
        REQUESTS.c.tracking_code == tracking_code, where if where is not None else true()
    )
    if for_update and connection.dialect.name != "sqlite":
        statement = statement.with_for_update()
    row = (await connection.execute(statement)).first()
    return CitizenRequest.from_row(row) if row is not None else None


async def load_many(
    connection: AsyncConnection,
    ids: Iterable[int],
    *,
    where: ColumnElement[bool] | None = None,
) -> dict[int, CitizenRequest]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    statement = select(REQUESTS).where(
        REQUESTS.c.id.in_(wanted), where if where is not None else true()
    )
    return {row.id: CitizenRequest.from_row(row) for row in await connection.execute(statement)}


async def load_history(
    connection: AsyncConnection, request_ids: Sequence[int]
) -> dict[int, list[HistoryEntry]]:
    """The history of each request, oldest first (by id: appends are ordered)."""
    found: dict[int, list[HistoryEntry]] = {request_id: [] for request_id in request_ids}
    if not request_ids:
        return found
    rows = await connection.execute(
        select(HISTORY)
        .where(HISTORY.c.request_id.in_(sorted(set(request_ids))))
        .order_by(HISTORY.c.id)
    )
    for row in rows:
        found[row.request_id].append(HistoryEntry.from_row(row))
    return found


async def load_replies(
    connection: AsyncConnection, request_ids: Sequence[int]
) -> dict[int, list[Reply]]:
    found: dict[int, list[Reply]] = {request_id: [] for request_id in request_ids}
    if not request_ids:
        return found
    rows = await connection.execute(
        select(REPLIES)
        .where(REPLIES.c.request_id.in_(sorted(set(request_ids))))
        .order_by(REPLIES.c.id)
    )
    for row in rows:
        found[row.request_id].append(Reply.from_row(row))
    return found


async def load_services(
    connection: AsyncConnection,
    *,
    codes: Iterable[str] | None = None,
    ids: Iterable[int] | None = None,
    group: str | None = None,
    region: int | None = None,
    include_inactive: bool = False,
) -> list[ServiceDefinition]:
    """Services of the catalogue in group, then code, order: those named (by code or id), or
    of a group, or enabled in a region; the inactive ones only when asked."""
    statement = select(
        SERVICES,
        GROUPS.c.code.label("group_code"),
        GROUPS.c.name_fa.label("group_name_fa"),
        GROUPS.c.name_en.label("group_name_en"),
    ).join(GROUPS, GROUPS.c.id == SERVICES.c.group_id)
    if codes is not None:
        statement = statement.where(SERVICES.c.code.in_(sorted(set(codes))))
    if ids is not None:
        statement = statement.where(SERVICES.c.id.in_(sorted(set(ids))))
    if group is not None:
        statement = statement.where(GROUPS.c.code == group)
    if region is not None:
        statement = statement.where(
            SERVICES.c.id.in_(
                select(SERVICE_REGIONS.c.service_id).where(SERVICE_REGIONS.c.region == region)
            )
        )
    if not include_inactive:
        statement = statement.where(SERVICES.c.active == true())
    statement = statement.order_by(GROUPS.c.position, SERVICES.c.code)
    rows = list(await connection.execute(statement))
    service_ids = [row.id for row in rows]
    departments: dict[int, tuple[list[str], list[str]]] = {i: ([], []) for i in service_ids}
    regions: dict[int, list[int]] = {i: [] for i in service_ids}
    if service_ids:
        for part in await connection.execute(
            select(SERVICE_DEPARTMENTS)
            .where(SERVICE_DEPARTMENTS.c.service_id.in_(service_ids))
            .order_by(SERVICE_DEPARTMENTS.c.id)
        ):
            responsible, sees = departments[part.service_id]
            (responsible if part.role == "RESPONSIBLE" else sees).append(part.department)
        for enabled in await connection.execute(
            select(SERVICE_REGIONS)
            .where(SERVICE_REGIONS.c.service_id.in_(service_ids))
            .order_by(SERVICE_REGIONS.c.region)
        ):
            regions[enabled.service_id].append(enabled.region)
    return [
        ServiceDefinition(
            id=row.id,
            code=row.code,
            group_code=row.group_code,
            group_name_fa=row.group_name_fa,
            group_name_en=row.group_name_en,
            name_fa=row.name_fa,
            name_en=row.name_en,
            description_fa=row.description_fa,
            description_en=row.description_en,
            channel=row.channel,
            owner_department=row.owner_department,
            deadline_days=row.deadline_days,
            questions=tuple(row.questions or ()),
            keywords=row.keywords,
            referred_agency=row.referred_agency,
            active=bool(row.active),
            responsible=tuple(departments[row.id][0]),
            sees=tuple(departments[row.id][1]),
            regions=tuple(regions[row.id]),
            updated_at=aware(row.updated_at) or dt.datetime.min.replace(tzinfo=dt.UTC),
        )
        for row in rows
    ]


async def load_service(
    connection: AsyncConnection, *, code: str | None = None, id: int | None = None
) -> ServiceDefinition | None:
    """One service, active or not, by code or id."""
    found = await load_services(
        connection,
        codes=[code] if code is not None else None,
        ids=[id] if id is not None else None,
        include_inactive=True,
    )
    return found[0] if found else None


async def load_workweek(connection: AsyncConnection) -> Workweek:
    """The 137 centre's working week (Saturday to Thursday, gateway/requests/deadlines.py) with
    the holidays of the table."""
    days = await connection.scalars(select(HOLIDAYS.c.day))
    return request_week(days)


# --- Writes every part shares ------------------------------------------------------------------


async def append_history(
    connection: AsyncConnection,
    *,
    request_id: int,
    event: str,
    from_status: str | None,
    to_status: str,
    at: dt.datetime,
    actor_kind: str,
    actor: str,
    department: str | None = None,
    note: str | None = None,
) -> None:
    """Appends one step to a request's history (never updated, never deleted). `event` is
    TRANSITION for a change of status, else what happened (REGISTERED, ROUTED, MERGED, SPLIT,
    REPLIED, RATED, ANONYMISED); `at` is aware."""
    await connection.execute(
        insert(HISTORY).values(
            request_id=request_id,
            event=event,
            from_status=from_status,
            to_status=to_status,
            at=naive(at),
            actor_kind=actor_kind,
            actor=actor,
            department=department,
            note=note,
        )
    )
