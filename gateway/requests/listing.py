"""Reading citizen requests as a list, the way feeds of them (Open311's GET requests) ask:
by tracking codes, or registered in a window, of some services, open or closed, newest first,
a page at a time; and a registrar's request by the idempotency key it registered it under.

Every read takes the caller's row rule (`where`, from gateway/access/rows.py), so a list shows
exactly what every other path to the same records shows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence

from sqlalchemy import ColumnElement, Select, func, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.access.rows import Exactly
from gateway.requests.records import (
    CLOSED_STATUSES,
    OPEN_STATUSES,
    REQUESTS,
    SERVICES,
    CitizenRequest,
    aware,
    naive,
)

__all__ = [
    "by_idempotency_key",
    "by_tracking_codes",
    "catalogue_changed_at",
    "registered_between",
]


def _where(
    statement: Select[tuple[object, ...]], where: ColumnElement[bool] | None
) -> Select[tuple[object, ...]]:
    return statement.where(where if where is not None else true())


async def by_tracking_codes(
    connection: AsyncConnection,
    codes: Sequence[str],
    *,
    where: ColumnElement[bool] | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> list[CitizenRequest]:
    """The requests of these (parsed) tracking codes the caller may see, newest first."""
    if not codes:
        return []
    statement = _where(
        select(REQUESTS).where(REQUESTS.c.tracking_code.in_(sorted(set(codes)))), where
    )
    statement = statement.order_by(REQUESTS.c.registered_at.desc(), REQUESTS.c.id.desc())
    statement = statement.offset(offset).limit(limit)
    return [CitizenRequest.from_row(row) for row in await connection.execute(statement)]


async def registered_between(
    connection: AsyncConnection,
    since: dt.datetime,
    until: dt.datetime,
    *,
    service_codes: Collection[str] = (),
    open_: bool = True,
    closed: bool = True,
    where: ColumnElement[bool] | None = None,
    offset: int = 0,
    limit: int = 1000,
) -> list[CitizenRequest]:
    """Requests registered in [since, until] the caller may see, newest first: of
    `service_codes` when given, open or closed or both."""
    if not (open_ or closed):
        return []
    statement = select(REQUESTS).where(
        REQUESTS.c.registered_at >= naive(since), REQUESTS.c.registered_at <= naive(until)
    )
    if service_codes:
        statement = statement.where(
            REQUESTS.c.service_id.in_(
                select(SERVICES.c.id).where(SERVICES.c.code.in_(sorted(set(service_codes))))
            )
        )
    if not (open_ and closed):
        statuses = OPEN_STATUSES if open_ else CLOSED_STATUSES
        statement = statement.where(REQUESTS.c.status.in_(sorted(statuses)))
    statement = _where(statement, where)
    statement = statement.order_by(REQUESTS.c.registered_at.desc(), REQUESTS.c.id.desc())
    statement = statement.offset(offset).limit(limit)
    return [CitizenRequest.from_row(row) for row in await connection.execute(statement)]


async def by_idempotency_key(
    connection: AsyncConnection,
    registered_by: str,
    idempotency_key: str,
    *,
    where: ColumnElement[bool] | None = None,
) -> CitizenRequest | None:
    """The request `registered_by` (a principal's label) registered under this key."""
    # Keys compare byte for byte: MariaDB's collations would match "APP-1" to "app-1 ".
    statement = _where(
        select(REQUESTS).where(
            Exactly(REQUESTS.c.registered_by, registered_by),
            Exactly(REQUESTS.c.idempotency_key, idempotency_key),
        ),
        where,
    )
    row = (await connection.execute(statement)).first()
    return CitizenRequest.from_row(row) if row is not None else None


async def catalogue_changed_at(connection: AsyncConnection) -> dt.datetime | None:
    """When the catalogue last changed (a service added or edited), aware; None when empty.
    Open311's discovery file names it, so that clients refresh the services they cache."""
    changed = await connection.scalar(select(func.max(SERVICES.c.updated_at)))
    return aware(changed)
