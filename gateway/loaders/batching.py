"""The batching machinery every loader shares: keyed statements built once, loaders whose
batches wait at the running operation's gate and hand out domain records, groups of keys,
agency calls in parallel."""

from __future__ import annotations

import asyncio
import copy
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from contextvars import ContextVar
from operator import attrgetter
from typing import Any, Generic, TypeVar

from aiodataloader import DataLoader, dispatch_queue
from aiodataloader import Loader as _Queued
from sqlalchemy import ColumnElement, Row, Select, bindparam
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engines import read_rows
from db.raw_reads import reused

# Well above any page size; only a pathological fan-out would split a batch.
MAX_KEYS_PER_STATEMENT = 2000

KeyT = TypeVar("KeyT")
ValueT = TypeVar("ValueT")
RecordT = TypeVar("RecordT")
OtherT = TypeVar("OtherT")


class DispatchGate:
    """Holds one operation's batches while part of its execution waits for a later turn of
    the event loop (gateway/guards/execution.py), so that the wait never splits a batch.

    A loader dispatches two turns after its first key, as aiodataloader does, so that keys
    asked for by everything running meanwhile join the batch: objects completed together
    ask for their relations within a turn or two of each other. Objects whose fields waited
    are completed over several turns, and what they ask for comes up to a turn per level of
    nesting after that; dispatches wait here until then, so that the number of statements
    stays a matter of the query's shape, not of timing.
    """

    def __init__(self, turns_after_release: int = 2) -> None:
        self.turns_after_release = turns_after_release
        self.held = False
        self.generation = 0
        self.waiting: list[DataLoader[Any, Any]] = []

    def hold(self) -> None:
        self.held = True
        self.generation += 1

    def release(self) -> None:
        """The waiting work has run: dispatch some turns later, unless held again."""
        self._count_down(self.turns_after_release, self.generation)

    def _count_down(self, turns: int, generation: int) -> None:
        if generation != self.generation:
            return  # held again meanwhile; that hold's release opens the gate
        if turns > 0:
            asyncio.get_running_loop().call_soon(self._count_down, turns - 1, generation)
            return
        self.held = False
        waiting, self.waiting = self.waiting, []
        for loader in waiting:
            dispatch_queue(loader)

    def dispatch(self, loader: DataLoader[Any, Any]) -> None:
        if self.held:
            self.waiting.append(loader)
        else:
            dispatch_queue(loader)


# The running operation's gate; execution sets it, its resolvers' tasks inherit it.
dispatch_gate: ContextVar[DispatchGate | None] = ContextVar("dispatch_gate", default=None)


class GatedLoader(DataLoader[KeyT, ValueT]):
    """A DataLoader whose batches wait at the running operation's DispatchGate, if any."""

    def __init__(
        self,
        max_batch_size: int | None = None,
        get_cache_key: Callable[[KeyT], Hashable] | None = None,
    ) -> None:
        # aiodataloader's constructor, less its checks of what the types already promise
        # (its coroutine check alone was a visible share of a look-up's CPU: every
        # request builds its loaders afresh).
        self.loop = asyncio.get_running_loop()
        if max_batch_size is not None:
            self.max_batch_size = max_batch_size
        if get_cache_key is not None:
            self.get_cache_key = get_cache_key  # type: ignore[method-assign,assignment]
        self._cache: dict[Any, asyncio.Future[ValueT]] = {}
        self._queue: list[_Queued] = []

    def get_cache_key(self, key: KeyT) -> Any:
        return key

    def do_resolve_reject(self, key: KeyT, future: asyncio.Future[ValueT]) -> None:
        self._queue.append(_Queued(key=key, future=future))
        if len(self._queue) == 1:
            # Two turns later, as aiodataloader schedules it (a callback that starts a task),
            # through the gate if any; two callbacks instead, without the task.
            self.loop.call_soon(self.loop.call_soon, _dispatch, self, dispatch_gate.get())


def _dispatch(loader: DataLoader[Any, Any], gate: DispatchGate | None) -> None:
    if gate is None:
        dispatch_queue(loader)
    else:
        gate.dispatch(loader)


class GroupLoader(GatedLoader[tuple[Hashable, ...], list[Any]]):
    """Loads whole groups of keys through another loader's batch function: one future per
    group, and one call (one statement) per turn for all the groups asked for in it. A list
    nested in a list (each owner's parcels on a page) thus loads its relations once per
    level, not once per parent, without a future per key."""

    def __init__(self, load: Callable[[list[Any]], Awaitable[list[Any]]]) -> None:
        super().__init__()
        self.load_keys = load

    async def batch_load_fn(self, groups: Sequence[tuple[Hashable, ...]]) -> list[list[Any]]:
        keys = list(dict.fromkeys(key for group in groups for key in group))
        values: dict[Hashable, Any] = {}
        for start in range(0, len(keys), MAX_KEYS_PER_STATEMENT):
            chunk = keys[start : start + MAX_KEYS_PER_STATEMENT]
            values.update(zip(chunk, await self.load_keys(chunk), strict=True))
        return [[values[key] for key in group] for group in groups]


class KeyedQuery(Generic[RecordT]):
    """A select restricted to a batch of keys, built once per process (module level: its
    statement is registered for the raw reads, db/raw_reads.py), and how each of its rows
    becomes a record (a frozen dataclass of the domain; converted once, in the batch).

    Reusing one statement object lets SQLAlchemy reuse its cache key and compiled
    form; building it per request costs more than running it on SQLite.
    """

    def __init__(
        self,
        statement: Select[Any],
        key: ColumnElement[Any],
        record: Callable[[Row[Any]], RecordT],
        *,
        key_of: Callable[[Row[Any]], Hashable] | None = None,
    ) -> None:
        self.statement = reused(statement.where(key.in_(bindparam("keys", expanding=True))))
        self.record = record
        self.key_of = key_of or attrgetter(_name_of(statement, key))

    def with_record(self, record: Callable[[Row[Any]], OtherT]) -> KeyedQuery[OtherT]:
        """The same statement, its rows made into records by `record` (built per request
        where the records depend on it): never a new statement per request, which would
        be compiled afresh each time."""
        changed: KeyedQuery[Any] = copy.copy(self)
        changed.record = record
        return changed

    def where(self, condition: ColumnElement[bool]) -> KeyedQuery[RecordT]:
        """The same query, narrowed by a row-level rule's condition (built per request)."""
        narrowed = copy.copy(self)
        narrowed.statement = self.statement.where(condition)
        return narrowed


def _name_of(statement: Select[Any], key: ColumnElement[Any]) -> str:
    """The name under which a row of `statement` holds the key column (rows are read by
    attribute, whether SQLAlchemy's or the raw path's named tuples)."""
    for name, column in statement.selected_columns.items():
        if column is key:
            return name
    raise ValueError(f"{key} is not among the statement's columns: give key_of")


class _ByKey(GatedLoader[Hashable, ValueT]):
    """Loads the records of one keyed query whose key is in the batch of keys.

    Each batch opens its own short connection: resolvers run concurrently and
    one session must never be shared between them.
    """

    def __init__(self, engine: AsyncEngine, query: KeyedQuery[Any]) -> None:
        super().__init__(max_batch_size=MAX_KEYS_PER_STATEMENT)
        self.engine = engine
        self.statement = query.statement
        self.record = query.record
        self.key_of = query.key_of

    async def _rows(self, keys: Sequence[Hashable]) -> Sequence[Row[Any]]:
        return await read_rows(self.engine, self.statement, {"keys": list(dict.fromkeys(keys))})


class RecordByKey(_ByKey[RecordT | None], Generic[RecordT]):
    """One record per key (None where there is none): a parcel by id, a person by code."""

    async def batch_load_fn(self, keys: Sequence[Hashable]) -> list[RecordT | None]:
        record, key_of = self.record, self.key_of
        by_key = {key_of(row): record(row) for row in await self._rows(keys)}
        return [by_key.get(k) for k in keys]


class RecordsByKey(_ByKey[list[RecordT]], Generic[RecordT]):
    """Every record of each key, in the statement's order: a parcel's buildings."""

    async def batch_load_fn(self, keys: Sequence[Hashable]) -> list[list[RecordT]]:
        record, key_of = self.record, self.key_of
        grouped: dict[Hashable, list[RecordT]] = defaultdict(list)
        for row in await self._rows(keys):
            grouped[key_of(row)].append(record(row))
        return [grouped.get(k, []) for k in keys]


class AgencyLoader(GatedLoader[Hashable, Any]):
    """Batches one request's calls to an agency operation that answers one key at a time.

    The calls run concurrently; one failing key fails only its own field.
    """

    def __init__(self, fetch: Callable[[Any], Awaitable[Any]]) -> None:
        super().__init__()
        self.fetch = fetch

    async def batch_load_fn(self, keys: Sequence[Hashable]) -> list[Any]:
        return list(await asyncio.gather(*(self.fetch(k) for k in keys), return_exceptions=True))
