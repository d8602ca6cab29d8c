"""Who is asking, their API keys and the audit trail, each behind its row-level rule; and the
Query fields that read them."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Self

import strawberry

from gateway.access.audit import AuditRecordRow
from gateway.access.keys import KeyInfo
from gateway.access.permissions import Scope, requires
from gateway.access.records import audit_records, held_keys
from gateway.clock import as_utc
from gateway.context import Info
from gateway.errors import BadUserInput
from gateway.schema.node import Node, node_type
from gateway.schema.pages import PageInfo, decode_cursor, encode_cursor, page_info


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
    def from_domain(cls, key: KeyInfo) -> Self:
        return cls(
            pk=key.id,
            prefix=key.prefix,
            holder_kind=key.principal_kind.value,
            holder_name=key.principal_name,
            department=key.department,
            state=KeyState(key.state),
            created_at=key.created_at,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
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
    def from_domain(cls, record: AuditRecordRow) -> Self:
        return cls(
            pk=record.id,
            recorded_at=as_utc(record.recorded_at),
            principal_kind=record.principal_kind,
            principal_id=record.principal_id,
            action=record.action,
            operation=record.operation,
            subject_type=record.subject_type,
            subject_id=record.subject_id,
            purpose=record.purpose,
            request_id=record.request_id,
            caller_request_id=record.caller_request_id,
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
    keys = await held_keys(info.context.databases.gateway, info.context.principal)
    return [ApiKey.from_domain(key) for key in keys]


async def audit_trail(
    info: Info, filter: AuditFilter | None, first: int, after: str | None
) -> AuditRecordConnection:
    """Audit records the caller may see (the AuditRecord row rule), newest last."""
    cap = info.context.settings.max_page_size
    if not 1 <= first <= cap:
        raise BadUserInput(f"first must be between 1 and {cap}.", field="first")
    given = filter or AuditFilter()
    found, has_next = await audit_records(
        info.context.audit_trail,
        info.context.principal,
        principal_id=given.principal_id,
        subject_type=given.subject_type,
        subject_id=given.subject_id,
        action=given.action,
        since=given.since,
        until=given.until,
        first=first,
        after_id=decode_cursor("audit", after),
    )
    edges = [
        AuditRecordEdge(node=AuditRecord.from_domain(r), cursor=encode_cursor("audit", r.id))
        for r in found
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
