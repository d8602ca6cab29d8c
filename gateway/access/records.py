"""The gateway's own records as their holders read them, each under its row-level rule: API
keys (KeyInfo: never the secret, nor its hash) and the audit trail's records."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.gateway import ApiKey, AuditRecord, PrincipalRecord
from gateway.access import keys
from gateway.access.audit import AuditRecordRow, AuditTrail
from gateway.access.keys import KeyInfo
from gateway.access.principals import Principal, PrincipalKind
from gateway.access.rows import RULES, sees_none
from gateway.clock import as_utc, naive_utc, utc_now
from gateway.paging import Page, Window

_keys = ApiKey.__table__
_principals = PrincipalRecord.__table__

# API keys with their holders: built once; the rule's condition and the keys are added to it.
API_KEYS: Select[Any] = select(
    _keys.c.id,
    _keys.c.prefix,
    _keys.c.principal_id,
    _keys.c.created_at,
    _keys.c.expires_at,
    _keys.c.revoked_at,
    _principals.c.kind,
    _principals.c.name,
    _principals.c.department,
    _principals.c.organisation,
).join_from(_keys, _principals, _keys.c.principal_id == _principals.c.id)


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    return None if moment is None else as_utc(moment)


def key_info(row: Row[Any], now: dt.datetime) -> KeyInfo:
    """A row of API_KEYS as the key's holder may see it; `now` decides whether it expired."""
    return KeyInfo(
        id=row.id,
        prefix=row.prefix,
        principal_id=row.principal_id,
        principal_kind=PrincipalKind(row.kind),
        principal_name=row.name,
        department=row.department,
        created_at=as_utc(row.created_at),
        expires_at=_aware(row.expires_at),
        revoked_at=_aware(row.revoked_at),
        # The same rule as every other reader of keys (gateway/access/keys.py).
        state=keys._state(row.expires_at, row.revoked_at, naive_utc(now)),
        organisation=row.organisation,
    )


async def held_keys(
    engine: AsyncEngine, principal: Principal, now: dt.datetime | None = None
) -> list[KeyInfo]:
    """The API keys `principal` may see (the ApiKey rule: its own), oldest first."""
    condition = RULES.condition(ApiKey, principal)
    if sees_none(condition):
        return []
    statement = API_KEYS.where(condition).order_by(_keys.c.id)
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).all()
    moment = now or utc_now()
    return [key_info(row, moment) for row in rows]


@dataclass(frozen=True)
class AuditFilters:
    """What a read of the audit trail asks for; every condition given must hold."""

    principal_id: str | None = None
    subject_type: str | None = None
    subject_id: str | None = None
    action: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def _visible_conditions(
    trail: AuditTrail, principal: Principal, filters: AuditFilters
) -> list[ColumnElement[bool]] | None:
    """The conditions of a read by `principal` (the AuditRecord rule: its own records, or
    all with audit:read); None when the rule lets it see none."""
    visible = RULES.condition(AuditRecord, principal)
    if sees_none(visible):
        return None
    return trail.conditions(
        filters.principal_id,
        filters.subject_type,
        filters.subject_id,
        filters.action,
        filters.since,
        filters.until,
        visible,
    )


async def audit_records(
    trail: AuditTrail, principal: Principal, filters: AuditFilters, window: Window
) -> Page[AuditRecordRow]:
    """A page of the audit records `principal` may see that match the filters. Outside the
    rule the trail is simply empty: asking for another's records finds none."""
    conditions = _visible_conditions(trail, principal, filters)
    if conditions is None:
        return Page([], has_next=False, has_previous=False)
    return await trail.page(conditions, window)


async def count_audit_records(
    trail: AuditTrail, principal: Principal, filters: AuditFilters
) -> int:
    """How many audit records `principal` may see match the filters (one counting scan)."""
    conditions = _visible_conditions(trail, principal, filters)
    return 0 if conditions is None else await trail.count(conditions)
