"""Who is asking, their API keys and the audit trail, each behind its row-level rule; and the
Query fields that read them."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated, Self

import strawberry

from gateway.access.audit import AuditRecordRow
from gateway.access.keys import KeyInfo
from gateway.access.permissions import Scope, requires
from gateway.access.records import AuditFilters, audit_records, count_audit_records, held_keys
from gateway.clock import as_utc
from gateway.context import Info
from gateway.schema.node import Node, node_type
from gateway.schema.pages import (
    After,
    Before,
    First,
    Last,
    PageInfo,
    encode_cursor,
    page_info_of,
    page_window,
)


@strawberry.enum(description="Whether an API key still works.")
class KeyState(Enum):
    ACTIVE = strawberry.enum_value("active", description="It works.")
    REVOKED = strawberry.enum_value("revoked", description="Its holder or an operator revoked it.")
    EXPIRED = strawberry.enum_value("expired", description="Its lifetime is over.")


@node_type(loader=lambda loaders: loaders.api_key_by_id, scope=Scope.KEYS_READ)
@strawberry.type(description="An API key, as its holder may see it: never the secret.")
class ApiKey(Node):
    prefix: str = strawberry.field(
        description="The key's public prefix: the 12 hex digits after gw_; revokeApiKey takes it."
    )
    holder_kind: str = strawberry.field(
        description="The holder's kind of caller: notary, bank, counter, department, operator "
        "or router (a federation router)."
    )
    holder_name: str = strawberry.field(description="The holder's name.")
    department: str | None = strawberry.field(
        description="The holder's department, for a department's key."
    )
    state: KeyState = strawberry.field(description="Whether the key still works.")
    created_at: dt.datetime = strawberry.field(description="When the key was issued (UTC).")
    expires_at: dt.datetime | None = strawberry.field(
        description="When the key stops working (UTC); null for a key that does not expire."
    )
    revoked_at: dt.datetime | None = strawberry.field(
        description="When the key was revoked (UTC); null unless revoked."
    )

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
    recorded_at: dt.datetime = strawberry.field(description="When it was recorded (UTC).")
    principal_kind: str = strawberry.field(description="The kind of caller who acted.")
    principal_id: str = strawberry.field(description="The caller who acted.")
    action: str = strawberry.field(description="What was done: read, or a change such as revoke.")
    operation: str = strawberry.field(
        description="The name of the GraphQL operation (or command) that did it."
    )
    subject_type: str = strawberry.field(
        description="The kind of record read or changed, e.g. Person."
    )
    subject_id: str = strawberry.field(
        description="Which record was read or changed, e.g. a national ID."
    )
    purpose: str | None = strawberry.field(
        description="Why, as the caller declared it (X-Road-Issue, e.g. an inquiry number)."
    )
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


@strawberry.type(description="An audit record in a page, with its cursor (Relay).")
class AuditRecordEdge:
    node: AuditRecord = strawberry.field(description="The audit record.")
    cursor: str = strawberry.field(description="Where the record stands in the list.")


@strawberry.type(description="A page of the audit trail (Relay connection), oldest first.")
class AuditRecordConnection:
    edges: list[AuditRecordEdge] = strawberry.field(description="The page's records.")
    page_info: PageInfo = strawberry.field(description="Where the page sits in the list.")
    filters: strawberry.Private[AuditFilters]

    @strawberry.field(
        description="How many records the caller may see match the filter, on all pages."
    )
    async def total_count(self, info: Info) -> int:
        return await count_audit_records(
            info.context.audit_trail, info.context.principal, self.filters
        )


@strawberry.input(description="Every condition given must hold.")
class AuditFilter:
    principal_id: str | None = strawberry.field(
        default=None,
        description="Records of this caller only (a principal's id, e.g. notary:12).",
    )
    subject_type: str | None = strawberry.field(
        default=None, description="Records about this kind of subject only, e.g. Person."
    )
    subject_id: str | None = strawberry.field(
        default=None, description="Records about this subject only, e.g. a national ID."
    )
    action: str | None = strawberry.field(
        default=None, description="Records of this action only, e.g. read or revoke."
    )
    since: dt.datetime | None = strawberry.field(
        default=None, description="Records from this moment on (inclusive)."
    )
    until: dt.datetime | None = strawberry.field(
        default=None, description="Records before this moment (exclusive)."
    )


async def api_keys(info: Info) -> list[ApiKey]:
    """The caller's own API keys (the ApiKey row rule)."""
    keys = await held_keys(info.context.databases.gateway, info.context.principal)
    return [ApiKey.from_domain(key) for key in keys]


async def audit_trail(
    info: Info,
    filter: AuditFilter | None,
    first: int | None,
    after: str | None,
    last: int | None = None,
    before: str | None = None,
) -> AuditRecordConnection:
    """Audit records the caller may see (the AuditRecord row rule), newest last."""
    window = page_window(
        "audit",
        first=first,
        after=after,
        last=last,
        before=before,
        cap=info.context.settings.max_page_size,
    )
    given = filter or AuditFilter()
    filters = AuditFilters(
        principal_id=given.principal_id,
        subject_type=given.subject_type,
        subject_id=given.subject_id,
        action=given.action,
        since=given.since,
        until=given.until,
    )
    page = await audit_records(info.context.audit_trail, info.context.principal, filters, window)
    edges = [
        AuditRecordEdge(node=AuditRecord.from_domain(r), cursor=encode_cursor("audit", r.id))
        for r in page.items
    ]
    return AuditRecordConnection(
        edges=edges,
        page_info=page_info_of(page, [edge.cursor for edge in edges]),
        filters=filters,
    )


@strawberry.type(description="Who the gateway takes the caller to be, and what it may do.")
class Viewer:
    kind: str = strawberry.field(
        description="The caller's kind: anonymous, notary, bank, counter, department, operator "
        "or router (a federation router)."
    )
    name: str = strawberry.field(description="The caller's name.")
    department: str | None = strawberry.field(
        description="The caller's department, for a department."
    )
    scopes: list[str] = strawberry.field(
        description="What the caller may read and do, as scopes (e.g. personal:read)."
    )

    @strawberry.field(description="The caller's own API keys.")
    async def api_keys(self, info: Info) -> list[ApiKey]:
        return await api_keys(info)

    @strawberry.field(description="The caller's own audit records (all of them with audit:read).")
    async def audit_trail(
        self,
        info: Info,
        filter: Annotated[
            AuditFilter | None,
            strawberry.argument(description="Only the records that match every condition given."),
        ] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> AuditRecordConnection:
        return await audit_trail(info, filter, first, after, last, before)


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
        filter: Annotated[
            AuditFilter | None,
            strawberry.argument(description="Only the records that match every condition given."),
        ] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> AuditRecordConnection:
        return await audit_trail(info, filter, first, after, last, before)
