"""Citizen requests as GraphQL lists and follows them, as frozen values: a department's queue
and the search (pages and counts), the catalogue's groups, a request as the caller may see it
now, and the request a follower follows.

Every read of requests carries the caller's row rule (gateway/access/rows.py), built here from
the principal: the schema says what to find (a `RequestSearch`) and gets domain objects back,
never a statement, a condition or a row.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, or_, select

from db.contact import CitizenRequestRecord, RequestFollowerRecord
from db.engines import Databases
from gateway.access.principals import Principal
from gateway.access.rows import RULES, sees_none
from gateway.errors import BadUserInput, NotFound
from gateway.paging import Page, Window, beyond, paged, windowed
from gateway.requests import records
from gateway.requests.records import CitizenRequest

# A row rule's condition, as the domain's changes take it (`where=`): opaque to the schema.
Rule = ColumnElement[bool]

_FOLLOWERS = RequestFollowerRecord.__table__


@dataclass(frozen=True, slots=True)
class RequestSearch:
    """Which requests to find: every condition given must hold. `statuses`: any of these
    (empty: any status); `routed`: only requests routed to some department; `overdue`: past
    their deadline at `now` (true) or not (false); `tracking_code` parsed already."""

    statuses: tuple[str, ...] = ()
    kind: str | None = None
    service_code: str | None = None
    region: int | None = None
    department: str | None = None
    routed: bool = False
    channel: str | None = None
    tracking_code: str | None = None
    text: str | None = None
    registered_from: dt.datetime | None = None
    registered_until: dt.datetime | None = None
    overdue: bool | None = None
    now: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.text is not None and not 2 <= len(self.text.strip()) <= 200:
            raise BadUserInput("Search text is 2 to 200 characters.", field="text")
        if self.overdue is not None and self.now is None:
            raise ValueError("overdue is judged at a moment: give now")


@dataclass(frozen=True, slots=True)
class Group:
    """One of the catalogue's groups."""

    code: str
    name_fa: str
    name_en: str


def condition(principal: Principal) -> Rule:
    """The caller's row rule on requests, for a change that answers NOT_FOUND itself."""
    return RULES.condition(CitizenRequestRecord, principal)


def rule(principal: Principal) -> Rule:
    """The caller's row rule on requests, for a change to one by id; NOT_FOUND at once
    when the caller may see none at all."""
    condition = RULES.condition(CitizenRequestRecord, principal)
    if sees_none(condition):
        raise NotFound("No citizen request with this id is yours to see.", field="id")
    return condition


def _conditions(principal: Principal, search: RequestSearch) -> list[Rule] | None:
    """The statement's conditions; None when the caller may see no request at all."""
    condition = RULES.condition(CitizenRequestRecord, principal)
    if sees_none(condition):
        return None
    table = records.REQUESTS
    conditions = [condition]
    if search.routed:
        conditions.append(table.c.department.is_not(None))
    if search.statuses:
        if len(search.statuses) == 1:
            conditions.append(table.c.status == search.statuses[0])
        else:
            conditions.append(table.c.status.in_(search.statuses))
    if search.kind is not None:
        conditions.append(table.c.kind == search.kind)
    if search.region is not None:
        conditions.append(table.c.region == search.region)
    if search.department is not None:
        conditions.append(table.c.department == search.department)
    if search.channel is not None:
        conditions.append(table.c.channel == search.channel)
    if search.tracking_code is not None:
        conditions.append(table.c.tracking_code == search.tracking_code)
    if search.service_code is not None:
        services = records.SERVICES
        conditions.append(
            table.c.service_id.in_(
                select(services.c.id).where(services.c.code == search.service_code)
            )
        )
    if search.text is not None:
        words = search.text.strip()
        pattern = "%" + words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(
            or_(
                table.c.description.like(pattern, escape="\\"),
                table.c.address.like(pattern, escape="\\"),
            )
        )
    if search.registered_from is not None:
        conditions.append(table.c.registered_at >= records.naive(search.registered_from))
    if search.registered_until is not None:
        conditions.append(table.c.registered_at < records.naive(search.registered_until))
    if search.overdue is not None:
        assert search.now is not None
        now = records.naive(search.now)
        late = (
            table.c.status.in_(sorted(records.OPEN_STATUSES - {"WAITING_FOR_CITIZEN"}))
            & table.c.deadline_at.is_not(None)
            & (table.c.deadline_at < now)
        )
        conditions.append(late if search.overdue else ~late)
    return conditions


async def find(
    databases: Databases,
    principal: Principal,
    search: RequestSearch,
    window: Window,
    *,
    descending: bool,
) -> Page[CitizenRequest]:
    """The requests the caller may see that match `search`, in the window (in id order,
    newest first when `descending`)."""
    conditions = _conditions(principal, search)
    if conditions is None:
        return Page([], has_next=False, has_previous=False)
    table = records.REQUESTS
    statement = windowed(
        select(table).where(*conditions), table.c.id, window, descending=descending
    )
    other_side = beyond(table.c.id, conditions, window, descending=descending)
    async with databases.engine(records.DATABASE).connect() as connection:
        rows = (await connection.execute(statement)).all()
        past = other_side is not None and bool((await connection.execute(other_side)).scalar())
    page = paged(rows, window, beyond_cursor=past)
    found = [CitizenRequest.from_row(row) for row in page.items]
    return Page(found, page.has_next, page.has_previous)


async def count(databases: Databases, principal: Principal, search: RequestSearch) -> int:
    """How many requests the caller may see match `search`, on all pages."""
    conditions = _conditions(principal, search)
    if conditions is None:
        return 0
    statement = select(func.count()).select_from(records.REQUESTS).where(*conditions)
    async with databases.engine(records.DATABASE).connect() as connection:
        return int((await connection.execute(statement)).scalar_one())


async def groups(databases: Databases) -> list[Group]:
    """The catalogue's groups, in order."""
    table = records.GROUPS
    async with databases.engine(records.DATABASE).connect() as connection:
        rows = await connection.execute(select(table).order_by(table.c.position))
        return [Group(code=r.code, name_fa=r.name_fa, name_en=r.name_en) for r in rows]


async def visible(databases: Databases, principal: Principal, code: str) -> CitizenRequest | None:
    """The request with tracking code `code` as the caller may see it now (a fresh read:
    loaders cache per request); None when it does not exist or is not the caller's."""
    condition = RULES.condition(CitizenRequestRecord, principal)
    if sees_none(condition):
        return None
    async with databases.engine(records.DATABASE).connect() as connection:
        return await records.load_by_tracking_code(connection, code, where=condition)


async def followed(
    databases: Databases, principal: Principal, follower: CitizenRequest, code: str
) -> CitizenRequest | None:
    """The request `follower` follows, by its tracking code (None when it follows no such
    request): with its citizen's name and mobile only for a caller whose row rule shows it
    anyway."""
    async with databases.engine(records.DATABASE).connect() as connection:
        found = await records.load_by_tracking_code(connection, code)
        if found is None:
            return None
        follows = await connection.scalar(
            select(_FOLLOWERS.c.id).where(
                _FOLLOWERS.c.request_id == found.id,
                _FOLLOWERS.c.follower_request_id == follower.id,
            )
        )
        if follows is None:
            return None
        condition = RULES.condition(CitizenRequestRecord, principal)
        visible = not sees_none(condition) and (
            await records.load(connection, found.id, where=condition) is not None
        )
    if visible:
        return found
    return dataclasses.replace(found, citizen_name=None, citizen_mobile=None)


def open_queue_statuses() -> tuple[str, ...]:
    """What a department's queue shows by default: every open status, and REFERRED."""
    return tuple(sorted(records.OPEN_STATUSES | {"REFERRED"}))
