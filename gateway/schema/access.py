"""Who is asking, their API keys and the audit trail, each behind its row-level rule; and the
Query fields that read them."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Any, Self

import strawberry

from db.gateway import ApiKey as ApiKeyRecord
from gateway.access import rows as row_rules
from gateway.access.permissions import Scope, requires
from gateway.context import Info
from gateway.errors import BadUserInput
from gateway.loaders.access import API_KEYS
from gateway.schema.node import Node, node_type
from gateway.schema.pages import PageInfo, decode_cursor, encode_cursor, page_info

_keys = ApiKeyRecord.__table__


@strawberry.enum
class KeyState(Enum):
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"


@node_type(loader=lambda loaders: loaders.api_key_by_id, scope=Scope.KEYS_READ)
@strawberry.type(description="An API key, as its holder may see it: never the secret.")
class ApiKey(Node):
    prefix: str
    holder_kind: str
    holder_name: str
    department: str | None
    state: KeyState
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: Any) -> Self:
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        state = KeyState.ACTIVE
        if row.revoked_at is not None:
            state = KeyState.REVOKED
        elif row.expires_at is not None and row.expires_at <= now:
            state = KeyState.EXPIRED
        return cls(
            pk=row.id,
            prefix=row.prefix,
            holder_kind=row.kind,
            holder_name=row.name,
            department=row.department,
            state=state,
            created_at=row.created_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
        )


# No scope: the AuditRecord row rule alone decides who reads one (gateway/access/rows.py).
@node_type(loader=lambda loaders: loaders.audit_record_by_id, scope=None)
@strawberry.type(description="One read of personal data or one change, in the hash chain.")
class AuditRecord(Node):
    recorded_at: dt.datetime
    principal_kind: str
    principal_id: str
    action: str
    operation: str
    subject_type: str
    subject_id: str
    purpose: str | None
    request_id: str = strawberry.field(description="The gateway's own id: one per request.")
    caller_request_id: str | None = strawberry.field(
        description="The X-Request-Id the caller sent, if any: the caller's own correlation, "
        "which two requests may share."
    )

    @classmethod
    def from_row(cls, row: Any) -> Self:
        """From a database row or the audit trail's own AuditRecordRow."""
        return cls(
            pk=row.id,
            recorded_at=row.recorded_at,
            principal_kind=row.principal_kind,
            principal_id=row.principal_id,
            action=row.action,
            operation=row.operation,
            subject_type=row.subject_type,
            subject_id=row.subject_id,
            purpose=row.purpose,
            request_id=row.request_id,
            caller_request_id=row.caller_request_id,
        )


@strawberry.type
class AuditRecordEdge:
    node: AuditRecord
    cursor: str


@strawberry.type
class AuditRecordConnection:
    edges: list[AuditRecordEdge]
    page_info: PageInfo


@strawberry.input(description="Every condition given must hold.")
class AuditFilter:
    principal_id: str | None = None
    subject_type: str | None = None
    subject_id: str | None = None
    action: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


async def api_keys(info: Info) -> list[ApiKey]:
    """The caller's own API keys (the ApiKey row rule)."""
    rule = row_rules.API_KEYS
    statement = API_KEYS.where(rule.condition(info.context.principal)).order_by(_keys.c.id)
    async with info.context.databases.gateway.connect() as connection:
        rows = (await connection.execute(statement)).all()
    return [ApiKey.from_row(row) for row in rows]


async def audit_trail(
    info: Info, filter: AuditFilter | None, first: int, after: str | None
) -> AuditRecordConnection:
    """Audit records the caller may see (the AuditRecord row rule), newest last."""
    cap = info.context.settings.max_page_size
    if not 1 <= first <= cap:
        raise BadUserInput(f"first must be between 1 and {cap}.", field="first")
    principal = info.context.principal
    rule = row_rules.AUDIT_RECORDS
    given = filter or AuditFilter()
    owner = rule.owner(principal)
    # Outside the rule, the trail is simply empty: asking for another's records finds none.
    if not rule.sees_all(principal) and (owner is None or given.principal_id not in (None, owner)):
        return AuditRecordConnection(edges=[], page_info=page_info(False, after, []))
    rows, has_next = await info.context.audit_trail.query(
        principal_id=str(owner) if owner is not None else given.principal_id,
        subject_type=given.subject_type,
        subject_id=given.subject_id,
        action=given.action,
        since=given.since,
        until=given.until,
        first=first,
        after_id=decode_cursor("audit", after),
    )
    edges = [
        AuditRecordEdge(node=AuditRecord.from_row(r), cursor=encode_cursor("audit", r.id))
        for r in rows
    ]
    return AuditRecordConnection(
        edges=edges, page_info=page_info(has_next, after, [edge.cursor for edge in edges])
    )


@strawberry.type(description="Who the gateway takes the caller to be, and what it may do.")
class Viewer:
    kind: str
    name: str
    department: str | None
    scopes: list[str]

    @strawberry.field(description="The caller's own API keys.")
    async def api_keys(self, info: Info) -> list[ApiKey]:
        return await api_keys(info)

    @strawberry.field(description="The caller's own audit records (all of them with audit:read).")
    async def audit_trail(
        self,
        info: Info,
        filter: AuditFilter | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> AuditRecordConnection:
        return await audit_trail(info, filter, first, after)


@strawberry.type
class AccessQuery:
    @strawberry.field(description="Who the gateway takes the caller to be.")
    def viewer(self, info: Info) -> Viewer:
        principal = info.context.principal
        return Viewer(
            kind=principal.kind.value,
            name=principal.name,
            department=principal.department,
            scopes=sorted(principal.scopes),
        )

    @strawberry.field(
        description="The caller's own API keys.",
        permission_classes=[requires(Scope.KEYS_READ)],
    )
    async def api_keys(self, info: Info) -> list[ApiKey] | None:
        return await api_keys(info)

    @strawberry.field(
        description="The audit trail: the caller's own records, or all with audit:read."
    )
    async def audit_trail(
        self,
        info: Info,
        filter: AuditFilter | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> AuditRecordConnection:
        return await audit_trail(info, filter, first, after)
