"""The lists GraphQL shows of inquiries and checks, as frozen values: a caller's inquiries
(newest first), a department's queue of checks (oldest first), their counts, and one inquiry
by tracking code as the caller may see it now.

Every statement here carries the record type's row rule (gateway/access/rows.py), built from
the principal it is given: the schema names what to list (an `InquirySearch`, a
`QueueSearch`) and gets domain objects back, never a statement or a row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, FromClause, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.engines import Databases
from db.gateway import InquiryCheckRecord, InquiryRecord
from gateway.access.principals import Principal
from gateway.access.rows import RULES, sees_none
from gateway.clock import WallClock
from gateway.inquiries import records, workflow
from gateway.inquiries.records import CHECK_QUEUED, Inquiry, InquiryCheck
from gateway.paging import Page, Window, beyond, paged, windowed

_EMPTY: Page[Any] = Page([], has_next=False, has_previous=False)


@dataclass(frozen=True, slots=True)
class InquirySearch:
    """Which of the caller's inquiries to list: every condition given must hold."""

    status: str | None = None
    kind: str | None = None
    verdict: str | None = None


@dataclass(frozen=True, slots=True)
class QueueSearch:
    """Which checks of a department's queue to list: those still waiting (or those
    answered), and with `overdue` only those past their deadline at `now` (or within it)."""

    now: dt.datetime
    answered: bool = False
    overdue: bool | None = None


def _inquiry_conditions(
    principal: Principal, search: InquirySearch
) -> list[ColumnElement[bool]] | None:
    """The conditions of the list; None when the caller may see no inquiry at all."""
    condition = RULES.condition(InquiryRecord, principal)
    if sees_none(condition):
        return None
    table = records.INQUIRIES
    conditions = [condition]
    if search.status is not None:
        conditions.append(table.c.status == search.status)
    if search.kind is not None:
        conditions.append(table.c.kind == search.kind)
    if search.verdict is not None:
        conditions.append(table.c.verdict == search.verdict)
    return conditions


def _queue_conditions(principal: Principal, search: QueueSearch) -> list[ColumnElement[bool]]:
    table = records.CHECKS
    conditions = [RULES.condition(InquiryCheckRecord, principal), table.c.manual.is_(True)]
    if search.answered:
        conditions.append(table.c.answered_by.is_not(None))
    else:
        conditions.append(table.c.state == CHECK_QUEUED)
    if search.overdue is True:
        conditions += [
            table.c.state == CHECK_QUEUED,
            records.past_due(table.c.due_at, search.now),
        ]
    elif search.overdue is False:
        conditions.append(
            (table.c.state != CHECK_QUEUED) | ~records.past_due(table.c.due_at, search.now)
        )
    return conditions


async def _count(
    databases: Databases, table: FromClause, conditions: Sequence[ColumnElement[bool]]
) -> int:
    statement = select(func.count()).select_from(table).where(*conditions)
    async with databases.gateway.connect() as connection:
        return int((await connection.execute(statement)).scalar_one())


async def _page(
    databases: Databases,
    table: FromClause,
    conditions: Sequence[ColumnElement[bool]],
    window: Window,
    *,
    descending: bool,
) -> Page[Any]:
    """The rows of `table` under `conditions` in the window, in the list's order."""
    statement = windowed(
        select(table).where(*conditions), table.c.id, window, descending=descending
    )
    other_side = beyond(table.c.id, conditions, window, descending=descending)
    async with databases.gateway.connect() as connection:
        rows = (await connection.execute(statement)).all()
        past = other_side is not None and bool((await connection.execute(other_side)).scalar())
    return paged(rows, window, beyond_cursor=past)


async def inquiries(
    databases: Databases, principal: Principal, search: InquirySearch, window: Window
) -> Page[Inquiry]:
    """The caller's inquiries matching `search` in the window, newest first."""
    conditions = _inquiry_conditions(principal, search)
    if conditions is None:
        return _EMPTY
    page = await _page(databases, records.INQUIRIES, conditions, window, descending=True)
    return Page([Inquiry.from_row(row) for row in page.items], page.has_next, page.has_previous)


async def count_inquiries(databases: Databases, principal: Principal, search: InquirySearch) -> int:
    """How many of the caller's inquiries match `search`, on all pages."""
    conditions = _inquiry_conditions(principal, search)
    if conditions is None:
        return 0
    return await _count(databases, records.INQUIRIES, conditions)


async def queue(
    databases: Databases, principal: Principal, search: QueueSearch, window: Window
) -> Page[InquiryCheck]:
    """The checks of the caller's department's queue (operators: every department's)
    matching `search` in the window, oldest first."""
    conditions = _queue_conditions(principal, search)
    page = await _page(databases, records.CHECKS, conditions, window, descending=False)
    return Page(
        [InquiryCheck.from_row(row) for row in page.items], page.has_next, page.has_previous
    )


async def count_queue(databases: Databases, principal: Principal, search: QueueSearch) -> int:
    """How many checks of the queue match `search`, on all pages."""
    return await _count(databases, records.CHECKS, _queue_conditions(principal, search))


async def visible(databases: Databases, principal: Principal, code: str) -> Inquiry | None:
    """The inquiry with tracking code `code` as the caller may see it now (a fresh read:
    loaders cache per request); None when it does not exist or is not the caller's."""
    condition = RULES.condition(InquiryRecord, principal)
    if sees_none(condition):
        return None
    table = records.INQUIRIES
    async with databases.gateway.connect() as connection:
        row = (
            await connection.execute(select(table).where(table.c.tracking_code == code, condition))
        ).first()
    return None if row is None else Inquiry.from_row(row)


async def revoke(session: AsyncSession, code: str, reason: str, now: WallClock) -> Inquiry:
    """workflow.revoke, its record read back as the inquiry the schema shows."""
    return Inquiry.from_row(await workflow.revoke(session, code, reason, now))
