"""Which documents may run: operations registered by an operator, and automatic persisted
queries (APQ).

In production a partner sends only registered operations (`gateway operations register`), as
full text or as `extensions.persistedQuery.sha256Hash`; internal callers may also use Apollo's
APQ, kept in this process or in Redis. Anything else is PERSISTED_QUERY_NOT_FOUND.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import coredis
import coredis.exceptions
from graphql import GraphQLError, GraphQLSchema, OperationDefinitionNode, parse, validate
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from db.engines import Databases
from db.gateway import RegisteredOperation
from gateway.access.principals import Principal
from gateway.clock import as_utc, naive_utc, utc_now
from gateway.errors import BadUserInput, GatewayError
from gateway.guards.policy import trusted_documents_only
from gateway.settings import Settings
from gateway.shared import redis_call, redis_text

log = logging.getLogger("gateway.guards")

_SHA256 = re.compile(r"[0-9a-f]{64}")


class PersistedQueryNotFound(GatewayError):
    code = "PERSISTED_QUERY_NOT_FOUND"


def sha256_hex(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


# --- registered operations -------------------------------------------------------------


@dataclass(frozen=True)
class OperationInfo:
    sha256: str
    name: str
    created_at: dt.datetime  # aware, UTC


async def register_operation(
    databases: Databases, schema: GraphQLSchema, document: str, name: str | None = None
) -> tuple[OperationInfo, bool]:
    """Registers a document that validates against `schema`; (its record, whether new)."""
    try:
        parsed = parse(document)
    except GraphQLError as exc:
        raise BadUserInput(
            f"The document is not GraphQL: {exc.message}", field="document"
        ) from None
    errors = validate(schema, parsed)
    if errors:
        raise BadUserInput(
            f"The document does not match the schema: {errors[0].message}", field="document"
        )
    if name is None:
        names = [
            d.name.value
            for d in parsed.definitions
            if isinstance(d, OperationDefinitionNode) and d.name is not None
        ]
        name = ", ".join(names) or "anonymous"
    digest = sha256_hex(document)
    query = select(RegisteredOperation).where(RegisteredOperation.sha256 == digest)
    async with databases.session("gateway") as session:
        existing = (await session.execute(query)).scalar_one_or_none()
    if existing is not None:
        return OperationInfo(existing.sha256, existing.name, as_utc(existing.created_at)), False
    record = RegisteredOperation(
        sha256=digest,
        name=name[:200],
        document=document,
        created_at=naive_utc(utc_now()),
    )
    try:
        async with databases.session("gateway") as session, session.begin():
            session.add(record)
    except IntegrityError:  # registered meanwhile by someone else
        async with databases.session("gateway") as session:
            existing = (await session.execute(query)).scalar_one()
        return OperationInfo(existing.sha256, existing.name, as_utc(existing.created_at)), False
    return OperationInfo(record.sha256, record.name, as_utc(record.created_at)), True


async def list_operations(databases: Databases) -> list[OperationInfo]:
    query = select(
        RegisteredOperation.sha256, RegisteredOperation.name, RegisteredOperation.created_at
    ).order_by(RegisteredOperation.id)
    async with databases.session("gateway") as session:
        rows = (await session.execute(query)).all()
    return [OperationInfo(row.sha256, row.name, as_utc(row.created_at)) for row in rows]


class RegisteredDocuments:
    """The registered documents by SHA-256, in memory after the first load. A miss reloads
    them, at most every `refresh_s`, so that unknown hashes cannot hammer the database."""

    def __init__(self, refresh_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.refresh_s = refresh_s
        self.clock = clock
        self.loads = 0
        self._documents: dict[str, str] | None = None
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    def _stale(self, sha256: str) -> bool:
        if self._documents is None:
            return True
        return sha256 not in self._documents and self.clock() - self._loaded_at >= self.refresh_s

    async def get(self, databases: Databases, sha256: str) -> str | None:
        if self._stale(sha256):
            async with self._lock:
                if self._stale(sha256):  # else another request loaded them meanwhile
                    await self._load(databases)
        return None if self._documents is None else self._documents.get(sha256)

    async def _load(self, databases: Databases) -> None:
        query = select(RegisteredOperation.sha256, RegisteredOperation.document)
        self._loaded_at = self.clock()
        try:
            async with databases.session("gateway") as session:
                rows = (await session.execute(query)).all()
        except SQLAlchemyError:
            if self._documents is None:
                raise
            log.warning("could not reload registered operations; keeping those held")
            return
        self.loads += 1
        self._documents = {row.sha256: row.document for row in rows}


# --- automatic persisted queries -----------------------------------------------------------


class PersistedQueries(Protocol):
    async def get(self, sha256: str) -> str | None: ...

    async def put(self, sha256: str, document: str) -> None: ...


class MemoryPersistedQueries:
    """APQ documents in this process, the least recently used dropped first."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._entries: OrderedDict[str, str] = OrderedDict()

    async def get(self, sha256: str) -> str | None:
        document = self._entries.get(sha256)
        if document is not None:
            self._entries.move_to_end(sha256)
        return document

    async def put(self, sha256: str, document: str) -> None:
        self._entries[sha256] = document
        self._entries.move_to_end(sha256)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)


class RedisPersistedQueries:
    """APQ documents in Redis, shared by every gateway process, each kept for `ttl_s`.
    When Redis fails, a lookup misses (the client resends the text) and a store is skipped."""

    def __init__(self, url: str, prefix: str, ttl_s: int) -> None:
        self.url = url
        self.prefix = f"{prefix}apq:"
        self.ttl_s = ttl_s
        self._client: coredis.Redis[str] | None = None

    @property
    def client(self) -> coredis.Redis[str]:
        if self._client is None:  # built on first use, inside the running event loop
            self._client = redis_text(self.url)
        return self._client

    async def get(self, sha256: str) -> str | None:
        try:
            return await redis_call(self.client.get(self.prefix + sha256))
        except (coredis.exceptions.RedisError, OSError):
            log.warning("persisted queries unavailable in Redis", exc_info=True)
            return None

    async def put(self, sha256: str, document: str) -> None:
        try:
            await redis_call(self.client.set(self.prefix + sha256, document, ex=self.ttl_s))
        except (coredis.exceptions.RedisError, OSError):
            log.warning("could not keep a persisted query in Redis", exc_info=True)


def build_persisted_queries(settings: Settings) -> PersistedQueries:
    if settings.redis_url is None:
        return MemoryPersistedQueries(settings.apq_cache_size)
    return RedisPersistedQueries(
        settings.redis_url.get_secret_value(), settings.redis_key_prefix, settings.apq_ttl_s
    )


class TrustedDocuments:
    """Which document a request runs: its text, a registered one or a persisted one."""

    def __init__(self, registered: RegisteredDocuments, persisted: PersistedQueries) -> None:
        self.registered = registered
        self.persisted = persisted

    async def document(
        self,
        query: str | None,
        extensions: dict[str, Any] | None,
        principal: Principal,
        settings: Settings,
        databases: Databases,
    ) -> str | None:
        sha256 = _persisted_hash(extensions)
        if query is None:
            if sha256 is None:
                return None  # strawberry answers that the request has no query
            document = await self.registered.get(databases, sha256)
            if document is None and principal.kind.internal:
                document = await self.persisted.get(sha256)
            if document is None:
                # Apollo clients resend the full text on exactly this message.
                raise PersistedQueryNotFound("PersistedQueryNotFound")
            return document
        digest = sha256_hex(query)
        if sha256 is not None and sha256 != digest:
            raise BadUserInput("The sha256Hash is not the query's.", field="sha256Hash")
        if trusted_documents_only(settings, principal):
            if await self.registered.get(databases, digest) is None:
                raise PersistedQueryNotFound(
                    "This operation is not registered; only registered operations are "
                    "accepted from partners.",
                    sha256=digest,
                )
        elif sha256 is not None and principal.kind.internal:
            await self.persisted.put(digest, query)
        return query


def _persisted_hash(extensions: dict[str, Any] | None) -> str | None:
    persisted = (extensions or {}).get("persistedQuery")
    if persisted is None:
        return None
    sha256 = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
    if (
        not isinstance(persisted, dict)
        or persisted.get("version") != 1
        or not isinstance(sha256, str)
        or not _SHA256.fullmatch(sha256.lower())
    ):
        raise BadUserInput(
            "extensions.persistedQuery needs version 1 and a sha256Hash of 64 hex digits.",
            field="persistedQuery",
        )
    return sha256.lower()
