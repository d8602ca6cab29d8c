"""A response cache for queries whose every field says it may be cached, and for how long.

Opt-in per field, as Apollo's `@cacheControl`: a field carries a hint
(`strawberry.field(metadata=cache_hint(Freshness.PLANNING))`) naming how fresh its data must
be (a max age from settings) and whether an answer may be shared between callers who see the
same (PUBLIC) or only reused for the same principal (PRIVATE). An operation's policy is read
from its document once: its max age is the least of the hints of the fields it selects, and
it is PRIVATE if any of them is. A root field, or a field returning an object or a list of
objects, without a hint makes the operation uncacheable; a field returning a scalar or an
enum without one inherits its parent's (as in Apollo). Mutations and subscriptions are never
cached, nor are answers with errors, nor answers that served personal data (an audited read
must write its audit record each time, so such an answer is not kept at all).

An entry is keyed by the document (its SHA-256), the operation's name, the variables and the
caller's visibility: for PRIVATE the principal itself; for PUBLIC everything row rules and
scopes read (kind, department, organisation, scopes), so that callers who would be shown
different data never share an entry. Entries live in this process (an LRU) or, when
`redis_url` is set, in Redis, shared by every process. A Redis that fails is a miss.
"""

from __future__ import annotations

import hashlib
import logging
import math
import sys
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol, TypeVar

import coredis
import coredis.exceptions
import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_leaf_type,
)
from graphql.execution import ExecutionResult
from strawberry.extensions import SchemaExtension

from gateway.access.permissions import personal_data_served
from gateway.access.principals import Principal, PrincipalKind
from gateway.clock import WallClock, utc_now
from gateway.context import Context
from gateway.settings import Settings
from gateway.shared import redis_bytes, redis_call

log = logging.getLogger("gateway")

CACHE_HINT = "cache_hint"
WARN_EVERY_S = 60
REDIS_TIMEOUT_S = 0.5  # a Redis slower than this is a miss: the databases answer instead
T = TypeVar("T")
_STRAWBERRY_FIELD = "strawberry-definition"


class Freshness(Enum):
    """How fresh a field's data must be; each has its max age in settings."""

    PLANNING = "planning"  # parcels, regions, districts: change by a department's edit
    DUES = "dues"  # change when a payment is recorded
    CATALOGUE = "catalogue"  # the services catalogue: changed by operators, rarely


class CacheScope(Enum):
    PUBLIC = "public"  # shared by callers who see the same (same scopes and row-rule inputs)
    PRIVATE = "private"  # per principal


@dataclass(frozen=True, slots=True)
class CacheHint:
    freshness: Freshness
    scope: CacheScope = CacheScope.PUBLIC


def cache_hint(freshness: Freshness, scope: CacheScope = CacheScope.PUBLIC) -> dict[str, CacheHint]:
    """A field's metadata: its answers may be cached this long, shared or per principal."""
    return {CACHE_HINT: CacheHint(freshness, scope)}


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """What an operation's selected fields allow: max_age_s 0 means not cached."""

    max_age_s: int
    scope: CacheScope = CacheScope.PUBLIC

    @property
    def cacheable(self) -> bool:
        return self.max_age_s > 0


UNCACHEABLE = CachePolicy(0)


def max_ages(settings: Settings) -> dict[Freshness, int]:
    return {
        Freshness.PLANNING: settings.response_cache_planning_max_age_s,
        Freshness.DUES: settings.response_cache_dues_max_age_s,
        Freshness.CATALOGUE: settings.response_cache_catalogue_max_age_s,
    }


def field_hint(definition: GraphQLField) -> CacheHint | None:
    """The hint a schema field carries (`cache_hint` in its metadata), or None."""
    field = (definition.extensions or {}).get(_STRAWBERRY_FIELD)
    metadata = getattr(field, "metadata", None) or {}
    hint = metadata.get(CACHE_HINT)
    return hint if isinstance(hint, CacheHint) else None


def operation_policy(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    ages: dict[Freshness, int],
) -> CachePolicy:
    """The policy of the operation `operation_name` names in a validated document."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    chosen = operations
    if len(chosen) != 1 or chosen[0].operation != OperationType.QUERY:
        return UNCACHEABLE
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    root = schema.query_type
    if root is None:
        return UNCACHEABLE
    max_age = math.inf
    private = False
    # (selection set, its parent type, whether its fields are root fields); no recursion, and
    # each fragment's fields walked once per parent type (validation forbids cycles).
    pending: list[tuple[SelectionSetNode, GraphQLObjectType | GraphQLInterfaceType, bool]] = [
        (chosen[0].selection_set, root, True)
    ]
    seen: set[tuple[str, str]] = set()
    while pending:
        selections, parent, at_root = pending.pop()
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                if name == "__typename":
                    continue
                definition = parent.fields.get(name)
                if definition is None:  # __schema, __type: introspection is never cached
                    return UNCACHEABLE
                hint = field_hint(definition)
                returned = get_named_type(definition.type)
                if hint is None:
                    if at_root or not is_leaf_type(returned):
                        return UNCACHEABLE
                else:
                    max_age = min(max_age, ages[hint.freshness])
                    private = private or hint.scope is CacheScope.PRIVATE
                if selection.selection_set is not None:
                    if not isinstance(returned, GraphQLObjectType | GraphQLInterfaceType):
                        return UNCACHEABLE  # a union: every member would need its hints
                    pending.append((selection.selection_set, returned, False))
                continue
            if isinstance(selection, FragmentSpreadNode):
                fragment = fragments.get(selection.name.value)
                if fragment is None:
                    return UNCACHEABLE
                key = (fragment.name.value, parent.name)
                if key in seen:
                    continue
                seen.add(key)
                condition = schema.get_type(fragment.type_condition.name.value)
                inner = fragment.selection_set
            elif isinstance(selection, InlineFragmentNode):
                condition = (
                    parent
                    if selection.type_condition is None
                    else schema.get_type(selection.type_condition.name.value)
                )
                inner = selection.selection_set
            else:  # pragma: no cover (graphql-core has no other selection)
                return UNCACHEABLE
            if not isinstance(condition, GraphQLObjectType | GraphQLInterfaceType):
                return UNCACHEABLE
            pending.append((inner, condition, at_root))
    if max_age == math.inf or max_age <= 0:
        return UNCACHEABLE
    return CachePolicy(int(max_age), CacheScope.PRIVATE if private else CacheScope.PUBLIC)


def visibility(principal: Principal, scope: CacheScope) -> str:
    """What about the caller can change the answer: the principal itself for PRIVATE; for
    PUBLIC what scopes and row rules read (gateway/access/rows.py), never the caller's id."""
    if scope is CacheScope.PRIVATE:
        return f"principal\x1f{principal.kind.value}\x1f{principal.id}"
    return "\x1f".join(
        (
            "visibility",
            principal.kind.value,
            principal.department or "",
            principal.organisation or "",
            *sorted(principal.scopes),
        )
    )


def entry_key(
    document_digest: bytes,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    seen_as: str,
) -> str:
    digest = hashlib.sha256()
    for part in (
        document_digest,
        (operation_name or "").encode(),
        orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS),
        seen_as.encode(),
    ):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


# --- where entries live ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    data: bytes  # the answer's `data`, as JSON
    expires: float  # wall-clock seconds since the epoch


class ResponseStore(Protocol):
    async def get(self, key: str) -> Entry | None: ...

    async def put(self, key: str, entry: Entry, ttl_s: int) -> None: ...


class MemoryResponseStore:
    """Entries in this process, the least recently used dropped first once there are more
    than `max_entries` or they hold more than `max_bytes` of answers."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[str, Entry] = OrderedDict()

    async def get(self, key: str) -> Entry | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    async def put(self, key: str, entry: Entry, ttl_s: int) -> None:
        replaced = self._entries.pop(key, None)
        if replaced is not None:
            self.bytes -= len(replaced.data)
        self._entries[key] = entry
        self.bytes += len(entry.data)
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            _, dropped = self._entries.popitem(last=False)
            self.bytes -= len(dropped.data)

    def __len__(self) -> int:
        return len(self._entries)


class RedisResponseStore:
    """Entries in Redis, shared by every gateway process; Redis expires them too. When Redis
    fails, a lookup misses and a store is skipped (answers come from the databases)."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = f"{prefix}response:"
        self._client: coredis.Redis[bytes] | None = None
        self._warned_at = -math.inf

    def _unavailable(self) -> None:
        self._unavailable_from(sys.exc_info()[1])

    def _unavailable_from(self, error: BaseException | None) -> None:
        # Under load a Redis that is down would fail every request's lookup: warn once a minute.
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            log.warning(
                "the response cache is unavailable in Redis; answering uncached", exc_info=error
            )

    @property
    def client(self) -> coredis.Redis[bytes]:
        if self._client is None:  # built on first use, inside the running event loop
            self._client = redis_bytes(self.url)
        return self._client

    async def _call(self, command: Awaitable[T]) -> T:
        # Shielded from a cancelled request and bounded (gateway/shared.py, redis_call).
        return await redis_call(command, REDIS_TIMEOUT_S)

    async def get(self, key: str) -> Entry | None:
        try:
            value = await self._call(self.client.get(self.prefix + key))
        except (coredis.exceptions.RedisError, OSError, TimeoutError):
            self._unavailable()
            return None
        if value is None:
            return None
        expires, _, data = bytes(value).partition(b"\n")
        try:
            return Entry(data, float(expires))
        except ValueError:
            return None

    async def put(self, key: str, entry: Entry, ttl_s: int) -> None:
        value = repr(entry.expires).encode() + b"\n" + entry.data
        try:
            await self._call(self.client.set(self.prefix + key, value, ex=max(1, ttl_s)))
        except (coredis.exceptions.RedisError, OSError, TimeoutError):
            self._unavailable()


class ResponseCache:
    """The policy of each document (computed once) and the store of answers."""

    def __init__(self, settings: Settings, store: ResponseStore, wall_clock: WallClock) -> None:
        self.ages = max_ages(settings)
        self.store = store
        self.wall_clock = wall_clock
        self.max_entry_bytes = settings.response_cache_max_entry_bytes
        # By the document's digest: the documents themselves may be long.
        self._policies: OrderedDict[tuple[bytes, str | None], CachePolicy] = OrderedDict()
        self._policies_max = settings.response_cache_size

    def now(self) -> float:
        return self.wall_clock().timestamp()

    def policy(
        self,
        schema: GraphQLSchema,
        document_digest: bytes,
        document: DocumentNode,
        operation_name: str | None,
    ) -> CachePolicy:
        key = (document_digest, operation_name)
        policy = self._policies.get(key)
        if policy is None:
            policy = operation_policy(schema, document, operation_name, self.ages)
            self._policies[key] = policy
            while len(self._policies) > self._policies_max:
                self._policies.popitem(last=False)
        return policy


def build_response_cache(
    settings: Settings, wall_clock: WallClock = utc_now
) -> ResponseCache | None:
    if not settings.response_cache:
        return None
    store: ResponseStore
    if settings.redis_url is None:
        store = MemoryResponseStore(
            settings.response_cache_size, settings.response_cache_memory_mb * 1024 * 1024
        )
    else:
        store = RedisResponseStore(settings.redis_url.get_secret_value(), settings.redis_key_prefix)
    return ResponseCache(settings, store, wall_clock)


# --- the HTTP header ------------------------------------------------------------------------

NO_STORE = "no-store"


def cache_control(policy: CachePolicy, remaining_s: float, principal: Principal) -> str:
    """The Cache-Control of an answer. Only an anonymous caller's PUBLIC answer is `public`:
    an HTTP cache may keep a `public` answer to a request with credentials and hand it to
    callers with other scopes, which the gateway's own keys keep apart."""
    age = int(remaining_s)
    if not policy.cacheable or age <= 0:
        return NO_STORE
    shared = policy.scope is CacheScope.PUBLIC and principal.kind is PrincipalKind.PUBLIC
    return f"{'public' if shared else 'private'}, max-age={age}"


def _combined(previous: str | None, header: str) -> str:
    """A batch's operations answer in one response: the most restrictive of their headers."""
    if previous is None:
        return header
    if NO_STORE in (previous, header):
        return NO_STORE
    ages = [int(h.rsplit("=", 1)[1]) for h in (previous, header)]
    shared = previous.startswith("public") and header.startswith("public")
    return f"{'public' if shared else 'private'}, max-age={min(ages)}"


# Where the view finds the request's header (the sub-response is shared by a batch).
HEADER_KEY = "gateway.cache_control"


class ResponseCaching(SchemaExtension):
    """Answers a cacheable query from the store, or keeps its answer; after the admission
    (trusted documents, cost budget) and validation, before execution."""

    def __init__(self, cache: ResponseCache) -> None:
        self.cache = cache

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        document = execution.graphql_document
        if not isinstance(context, Context) or document is None or execution.query is None:
            yield
            return
        digest = hashlib.sha256(execution.query.encode()).digest()
        policy = self.cache.policy(
            execution.schema._schema, digest, document, execution.operation_name
        )
        if not policy.cacheable:
            self._header(context, NO_STORE)
            yield
            return
        key = entry_key(
            digest,
            execution.operation_name,
            execution.variables,
            visibility(context.principal, policy.scope),
        )
        now = self.cache.now()
        entry = await self.cache.store.get(key)
        if entry is not None and entry.expires > now:
            execution.result = ExecutionResult(data=orjson.loads(entry.data), errors=None)
            self._header(context, cache_control(policy, entry.expires - now, context.principal))
            yield
            return
        yield
        result = execution.result
        if (
            not isinstance(result, ExecutionResult)
            or result.errors
            or result.data is None
            or personal_data_served()
        ):
            self._header(context, NO_STORE)
            return
        data = orjson.dumps(result.data)
        if len(data) > self.cache.max_entry_bytes:
            self._header(context, NO_STORE)
            return
        stored = self.cache.now()
        await self.cache.store.put(key, Entry(data, stored + policy.max_age_s), policy.max_age_s)
        self._header(context, cache_control(policy, policy.max_age_s, context.principal))

    @staticmethod
    def _header(context: Context, header: str) -> None:
        scope = context.request.scope
        scope[HEADER_KEY] = _combined(scope.get(HEADER_KEY), header)


def response_caching(cache: ResponseCache) -> Callable[[], SchemaExtension]:
    return lambda: ResponseCaching(cache)
