"""The gateway's own records under row-level rules: API keys with their holders, audit
records; each statement carries the principal's condition."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.gateway import ApiKey as ApiKeyRecord
from db.gateway import AuditRecord as AuditRecordRow
from db.gateway import PrincipalRecord
from gateway.access import rows
from gateway.access.principals import Principal
from gateway.loaders.batching import KeyedQuery, RowsByKey

_keys = ApiKeyRecord.__table__
_principals = PrincipalRecord.__table__
_audit = AuditRecordRow.__table__

API_KEYS = select(
    _keys.c.id,
    _keys.c.prefix,
    _keys.c.created_at,
    _keys.c.expires_at,
    _keys.c.revoked_at,
    _principals.c.kind,
    _principals.c.name,
    _principals.c.department,
).join_from(_keys, _principals, _keys.c.principal_id == _principals.c.id)


def api_key_by_id(engine: AsyncEngine, principal: Principal) -> RowsByKey:
    condition = rows.API_KEYS.condition(principal)
    query = KeyedQuery(API_KEYS.where(condition), _keys.c.id, many=False)
    return RowsByKey(engine, query)


def audit_record_by_id(engine: AsyncEngine, principal: Principal) -> RowsByKey:
    condition = rows.AUDIT_RECORDS.condition(principal)
    query = KeyedQuery(select(_audit).where(condition), _audit.c.id, many=False)
    return RowsByKey(engine, query)
