"""The gateway's own records under row-level rules: API keys with their holders, audit
records; each statement carries the principal's condition (gateway/access/rows.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.gateway import ApiKey, AuditRecord
from gateway.access import records
from gateway.access.audit import AuditRecordRow, stored_record
from gateway.access.keys import KeyInfo
from gateway.access.principals import Principal
from gateway.access.rows import RULES
from gateway.clock import utc_now
from gateway.loaders.batching import KeyedQuery, RecordByKey

_keys = ApiKey.__table__
_audit = AuditRecord.__table__

# Built once; each request narrows them by its principal's rule.
AUDIT_RECORD_BY_ID = KeyedQuery(select(_audit), _audit.c.id, stored_record)
# Its records depend on the moment (is the key expired?): each request gives its own.
API_KEY_BY_ID = KeyedQuery(records.API_KEYS, _keys.c.id, lambda row: row)


def api_key_by_id(engine: AsyncEngine, principal: Principal) -> RecordByKey[KeyInfo]:
    now = utc_now()

    def key_info(row: Row[Any]) -> KeyInfo:
        return records.key_info(row, now)

    query = API_KEY_BY_ID.with_record(key_info)
    return RecordByKey(engine, query.where(RULES.condition(ApiKey, principal)))


def audit_record_by_id(engine: AsyncEngine, principal: Principal) -> RecordByKey[AuditRecordRow]:
    query = AUDIT_RECORD_BY_ID.where(RULES.condition(AuditRecord, principal))
    return RecordByKey(engine, query)
