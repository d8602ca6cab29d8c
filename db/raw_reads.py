"""The reads every request makes, straight through the driver (asyncpg, aiosqlite).

A loader's keyed select (a parcel by renewal code, a parcel's owners, its dues) is built once
per process and run several times per request. Through SQLAlchemy's execution layer (the
AsyncConnection's greenlet, execution context, events, result proxy) one such statement cost
about 450 µs of CPU on PostgreSQL, against 150 µs for the same SQL on a connection of the same
pool (860 against 290 µs on SQLite): a third of a single look-up's CPU. Here a statement
registered with `reused` is compiled once per engine by SQLAlchemy itself (its SQL, its
parameters' order, its types' conversions), its `IN` over a batch of keys bound as one value
(`= ANY($1)`, an array, on PostgreSQL; `IN (SELECT value FROM json_each(?))`, a JSON array,
on SQLite), and run on a connection checked out of the engine's own pool (so no connection is
opened beyond the pool's bounds, and the checkout's checks still apply). Its rows are named
tuples with the same fields and values as SQLAlchemy's rows.

A statement built per request (a page's, by its filter and window) is planned by its shape:
compiled once for each SQLAlchemy cache key (what SQLAlchemy's own compiled cache is keyed
by), its values read from each statement's key as SQLAlchemy reads them. On PostgreSQL a
page's statement through the execution layer cost about 6 % of the page's CPU.

What SQLAlchemy does around a statement is kept: the request's statement count, a dead
connection's read run once more on a new one, and errors raised as SQLAlchemy raises them
(a statement that fails here runs again through SQLAlchemy, which raises its own error).
Shapes that expand per call (an `IN` over a list not registered) or cannot be cached,
MariaDB, and engines with statement tracing on take SQLAlchemy's path (db/engines.py
read_rows).
"""

from __future__ import annotations

import collections
import json
import keyword
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Executable, any_, bindparam, event, func, literal_column, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, ClauseElement
from sqlalchemy.sql.visitors import replacement_traverse, traverse
from sqlalchemy.util import greenlet_spawn

ExecutableT = TypeVar("ExecutableT", bound=Executable)

# SQLite's page cache per connection, in KiB (PRAGMA cache_size; SQLite's default is 2,000).
SQLITE_CACHE_KIB = 256

# Statements built once per process and run on every request, by identity.
_REUSED: dict[int, Executable] = {}

# Engines whose statements must go through SQLAlchemy's events (tracing's spans).
_EVENTFUL: weakref.WeakSet[Any] = weakref.WeakSet()


def reused(statement: ExecutableT) -> ExecutableT:
    """Registers a statement built once per process (module level) for the raw path. Never
    one built per request: it would be kept, and compiled, for each."""
    _REUSED[id(statement)] = statement
    return statement


def keep_events(engine: AsyncEngine) -> None:
    """This engine's statements fire SQLAlchemy's cursor events (tracing's spans)."""
    _EVENTFUL.add(engine.sync_engine)


class Plan:
    """One statement's SQL for the driver, its parameters in order, and how values are
    converted on the way in and out, as SQLAlchemy's types would."""

    __slots__ = (
        "arrays", "bind", "compiled", "convert", "defaults", "parameters", "row", "sql", "types",
    )  # fmt: skip

    def __init__(
        self,
        sql: str,
        parameters: tuple[str, ...],
        defaults: Mapping[str, Any],
        bind: Mapping[str, Callable[[Any], Any]],
        row: type[tuple[Any, ...]],
        types: tuple[Any, ...],
        arrays: frozenset[str],
        convert: tuple[Callable[[Any], Any] | None, ...] | bool | None = False,
        compiled: Any = None,
    ) -> None:
        self.sql = sql
        self.parameters = parameters  # by position ($1, $2 …)
        self.defaults = defaults  # values bound in the statement itself, converted
        self.bind = bind  # the types' conversions of the caller's values
        self.row = row  # a named tuple with SQLAlchemy's row's fields
        self.types = types  # each column's SQLAlchemy type
        self.arrays = arrays  # batches of keys sent as one JSON array (SQLite)
        # Each column's conversion, None for none; False until the server has named the
        # columns' types (asyncpg's conversions depend on them); None: no column has one.
        self.convert = convert
        # A statement planned by its shape (plan_for): SQLAlchemy's compiled form, which
        # takes each statement's values from its cache key. None: a registered statement.
        self.compiled = compiled

    def arguments(self, values: Mapping[str, Any] | None) -> list[Any]:
        given = values or {}
        arguments = []
        for name in self.parameters:
            if name in self.defaults:
                arguments.append(self.defaults[name])
                continue
            value = given.get(name)
            processor = self.bind.get(name)
            if name in self.arrays:
                value = json.dumps(value)
            elif processor is not None:
                value = processor(value)
            arguments.append(value)
        return arguments

    async def learn_types(self, connection: Any, dialect: Any) -> None:
        """The columns' conversions, from the types the server gives them (once)."""
        prepared = await connection.prepare(self.sql)
        oids = [attribute.type.oid for attribute in prepared.get_attributes()]
        self.convert = _conversions(self.types, dialect, oids)

    def rows(self, records: Sequence[Any]) -> list[tuple[Any, ...]]:
        # The named tuple made straight from the record, as its _make does without its
        # Python-level call and length check (one per row): the statement gives its columns.
        row = self.row
        if records and len(records[0]) != len(row._fields):  # type: ignore[attr-defined]
            raise TypeError(f"expected {len(row._fields)} columns, got {len(records[0])}")  # type: ignore[attr-defined]
        convert = self.convert
        if not convert:
            return [_tuple_new(row, record) for record in records]
        assert isinstance(convert, tuple)
        return [
            _tuple_new(
                row, [v if c is None else c(v) for c, v in zip(convert, record, strict=True)]
            )
            for record in records
        ]


_tuple_new = tuple.__new__

_DRIVERS = {("postgresql", "asyncpg"), ("sqlite", "aiosqlite")}

# Each engine's plans by statement identity, each with its statement (so that no other
# statement is ever taken for it by its id); None: that statement takes SQLAlchemy's path.
_PLANS: weakref.WeakKeyDictionary[Any, dict[int, tuple[Executable, Plan | None]]] = (
    weakref.WeakKeyDictionary()
)


def plan_for(
    engine: AsyncEngine, statement: Executable, parameters: Mapping[str, Any] | None = None
) -> tuple[Plan, Mapping[str, Any] | None] | None:
    """The raw plan of a statement on a PostgreSQL or SQLite engine and the values to run it
    with, or None for SQLAlchemy's path.

    A registered statement (`reused`) has a plan of its own, its `IN` over a batch of keys
    bound as one value. Any other (a page's statement, built per request by its filter and
    window) is planned by its shape: SQLAlchemy's cache key, the same for every statement
    that compiles to the same SQL, is what SQLAlchemy's own compiled cache is keyed by, and
    each statement's values are read from its key as SQLAlchemy reads them
    (construct_params' extracted parameters). A shape that expands per call (an `IN` over a
    list) or cannot be cached keeps SQLAlchemy's path."""
    sync_engine = engine.sync_engine
    plans = _PLANS.get(sync_engine)
    if plans is None:
        if (engine.dialect.name, engine.dialect.driver) not in _DRIVERS:
            return None
        plans = _PLANS[sync_engine] = {}
    if sync_engine in _EVENTFUL:
        return None
    key = id(statement)
    known = plans.get(key)
    if known is not None and known[0] is statement:
        plan = known[1]
    elif _REUSED.get(key) is statement:
        plan = _compile(engine, statement)
        plans[key] = (statement, plan)
    else:
        return _plan_by_shape(engine, statement, parameters)
    return None if plan is None else (plan, parameters)


# Plans of statements built per request, by their cache key, for each engine; None for a
# shape that keeps SQLAlchemy's path. At most _MAX_SHAPES each, the oldest forgotten first
# (as SQLAlchemy's compiled cache holds 500).
_SHAPES: weakref.WeakKeyDictionary[Any, dict[Any, Plan | None]] = weakref.WeakKeyDictionary()
_MAX_SHAPES = 500


def _plan_by_shape(
    engine: AsyncEngine, statement: Executable, parameters: Mapping[str, Any] | None
) -> tuple[Plan, Mapping[str, Any]] | None:
    cache_key = statement._generate_cache_key()  # type: ignore[attr-defined]
    if cache_key is None:
        return None  # holds something that cannot be cached
    shapes = _SHAPES.get(engine.sync_engine)
    if shapes is None:
        shapes = _SHAPES[engine.sync_engine] = {}
    try:
        plan = shapes[cache_key.key]
    except KeyError:
        try:
            plan = _compile_shape(engine, statement, cache_key)
        except Exception:
            plan = None  # SQLAlchemy's path raises its own error for it, or runs it
        if len(shapes) >= _MAX_SHAPES:
            del shapes[next(iter(shapes))]
        shapes[cache_key.key] = plan
    if plan is None:
        return None
    try:
        values = plan.compiled.construct_params(
            params=parameters, extracted_parameters=cache_key.bindparams
        )
    except Exception:
        return None  # a value missing, say: SQLAlchemy's path raises its own error
    return plan, values


def _compile_shape(engine: AsyncEngine, statement: Executable, cache_key: Any) -> Plan | None:
    dialect = engine.dialect
    # Compiled with its cache key, so that construct_params maps another statement's
    # extracted values onto this one's parameters.
    compiled: Any = statement.compile(dialect=dialect, cache_key=cache_key)  # type: ignore[attr-defined]
    if compiled.positiontup is None or getattr(compiled, "post_compile_params", None):
        return None
    names = _row_names(compiled)
    if names is None:
        return None
    processors = {
        name: processor
        for name, processor in compiled._bind_processors.items()
        if processor is not None
    }
    types = tuple(column.type for column in compiled._result_columns)
    sqlite = dialect.name == "sqlite"
    return Plan(
        sql=compiled.string,
        parameters=tuple(compiled.positiontup),
        defaults={},
        bind=processors,  # every value is the statement's own, converted on each call
        row=collections.namedtuple("Row", names),
        types=types,
        arrays=frozenset(),
        convert=_conversions(types, dialect, None) if sqlite else False,
        compiled=compiled,
    )


def _row_names(compiled: Any) -> list[str] | None:
    """The row's field names, when a named tuple can hold them as SQLAlchemy's row does."""
    names = [column.keyname for column in compiled._result_columns]
    if len(set(names)) != len(names) or not all(
        name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("_")
        for name in names
    ):
        return None
    return names


def _keys_in(sqlite: bool) -> Callable[[ClauseElement], ClauseElement | None]:
    """`column IN (:keys)` over an expanding parameter as one parameter for the whole batch:
    `column = ANY(:keys)`, an array, on PostgreSQL; `column IN (SELECT value FROM
    json_each(:keys))`, a JSON array, on SQLite."""

    def replace(element: ClauseElement) -> ClauseElement | None:
        if (
            isinstance(element, BinaryExpression)
            and element.operator is operators.in_op
            and isinstance(element.right, BindParameter)
            and element.right.expanding
            and not hasattr(element.left, "clauses")  # a tuple of columns: no such value
        ):
            key = element.right.key
            if sqlite:
                each: Any = select(literal_column("value")).select_from(
                    func.json_each(bindparam(key))
                )
                return element.left.in_(each)
            return element.left == any_(bindparam(key, type_=ARRAY(element.left.type)))
        return None

    return replace


def _compile(engine: AsyncEngine, statement: Executable) -> Plan | None:
    dialect = engine.dialect
    sqlite = dialect.name == "sqlite"
    clause: Any = replacement_traverse(statement, {}, _keys_in(sqlite))  # type: ignore[call-overload]
    compiled = clause.compile(dialect=dialect)
    if compiled.positiontup is None or getattr(compiled, "post_compile_params", None):
        return None  # something still expands per call
    names = _row_names(compiled)
    if names is None:
        return None
    parameters = tuple(compiled.positiontup)
    # The caller's parameters (required binds); the others carry their value in the statement.
    given = {name: None for name, bind in compiled.binds.items() if bind.required}
    processors = {
        name: processor
        for name, processor in compiled._bind_processors.items()
        if processor is not None
    }
    defaults = {
        name: value if name not in processors else processors[name](value)
        for name, value in compiled.construct_params(given).items()
        if name not in given
    }
    types = tuple(column.type for column in compiled._result_columns)
    return Plan(
        sql=compiled.string,
        parameters=parameters,
        defaults=defaults,
        bind={name: processors[name] for name in given if name in processors},
        row=collections.namedtuple("Row", names),
        types=types,
        arrays=_expanding(statement) if sqlite else frozenset(),
        # SQLite's conversions do not depend on what the driver says of a column.
        convert=_conversions(types, dialect, None) if sqlite else False,
    )


def _expanding(statement: Executable) -> frozenset[str]:
    found: set[str] = set()

    def visit(element: BindParameter[Any]) -> None:
        if element.expanding:
            found.add(element.key)

    traverse(statement, {}, {"bindparam": visit})  # type: ignore[call-overload]
    return frozenset(found)


def _conversions(
    types: Sequence[Any], dialect: Any, driver_types: Sequence[Any] | None
) -> tuple[Callable[[Any], Any] | None, ...] | None:
    convert = tuple(
        type_._cached_result_processor(dialect, None if driver_types is None else driver_type)
        for type_, driver_type in zip(types, driver_types or [None] * len(types), strict=True)
    )
    return None if all(c is None for c in convert) else convert


async def fetch(engine: AsyncEngine, plan: Plan, values: Mapping[str, Any] | None) -> list[Any]:
    """The records of `plan` on a connection of the engine's pool (raises what the driver
    raises; the caller decides). The connection goes back to the pool unless the fetch was
    interrupted or the connection is dead, in which case it is thrown away."""
    pool = engine.sync_engine.pool
    sqlite = engine.dialect.name == "sqlite"
    if sqlite and plan.compiled is None:  # a registered keyed read (see InlineReader)
        inline = _inline(engine)
        if inline is not None:
            records = inline.read(plan.sql, plan.arguments(values))
            if records is not None:
                return records
    fairy = await greenlet_spawn(pool.connect)
    try:
        driver: Any = fairy.driver_connection
        arguments = plan.arguments(values)
        if sqlite:
            records = await driver.execute_fetchall(plan.sql, arguments)
        else:
            if plan.convert is False:
                await plan.learn_types(driver, engine.dialect)
            records = await driver.fetch(plan.sql, *arguments)
    except BaseException as exc:
        # Cancelled mid-statement or dead: the connection's state is unknown.
        if isinstance(exc, Exception) and not _is_disconnect(fairy, sqlite):
            await _give_back(pool, fairy)
        else:
            await greenlet_spawn(fairy.invalidate, exc)
        raise
    await _give_back(pool, fairy)
    return list(records)


async def _give_back(pool: Any, fairy: Any) -> None:
    """Returns a connection to the pool, as SQLAlchemy's own Connection does when it knows
    there is no transaction to reset (`_close_special`): none was begun, so the rollback on
    return would send nothing on PostgreSQL and cost aiosqlite's thread a turn for nothing.
    While the pool has room for it, without a greenlet; a connection beyond the pool's size
    is closed on return, which takes the greenlet."""
    if pool.checkedin() < pool.size():
        fairy._close_special(transaction_reset=True)
    else:
        await greenlet_spawn(fairy._close_special, transaction_reset=True)


def _is_disconnect(fairy: Any, sqlite: bool) -> bool:
    driver = fairy.driver_connection
    return driver is None or (not sqlite and bool(driver.is_closed()))


# ---------------------------------------------------------------------------------------------
# SQLite's keyed reads on the event loop's own thread

# How long a read may hold the event loop before it is interrupted and run again on
# aiosqlite's thread instead.
INLINE_READ_DEADLINE_S = 0.005
# SQLite calls the deadline's check every this many virtual-machine steps (a parcel by its
# renewal code takes a few hundred: a keyed read of a few rows is never checked at all).
_INLINE_CHECK_EVERY = 1000


class InlineReader:
    """A plain sqlite3 connection to an engine's file, used only by the thread that opened it,
    for the registered keyed reads.

    aiosqlite runs every statement on a thread of its connection's own and hands the answer
    back through the event loop's wake-up pipe: about 100 µs of CPU per statement (a queue,
    a future, two thread switches and the GIL's hand-over both ways, more under load), where
    the same keyed read on the caller's thread costs under 10. Reads from the file's pages,
    which the operating system keeps, are short and bounded by the batch's keys; should one
    take longer than INLINE_READ_DEADLINE_S (a cold disk, a batch of thousands of keys), it
    is interrupted and runs on aiosqlite's thread. The connection is read-only (query_only),
    never waits for a lock (a busy database sends the read to aiosqlite's thread, which
    waits as every connection of the pool does) and holds no transaction between reads: in
    WAL mode each read sees what was committed when it began, as a read on a pooled
    connection does."""

    __slots__ = ("connection", "deadline")

    def __init__(self, path: str) -> None:
        # mode=rw: never creates a missing file. timeout=0: no busy handler.
        # check_same_thread=False only so that the engine's disposal may close it from
        # another thread (no two threads ever read on it).
        self.connection = sqlite3.connect(
            f"{Path(path).resolve().as_uri()}?mode=rw",
            uri=True,
            timeout=0,
            isolation_level=None,
            check_same_thread=False,
        )
        self.connection.execute("PRAGMA query_only=ON")
        self.connection.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        self.deadline = 0.0
        self.connection.set_progress_handler(self._past_deadline, _INLINE_CHECK_EVERY)

    def _past_deadline(self) -> bool:
        return time.perf_counter() > self.deadline

    def read(self, sql: str, arguments: Sequence[Any]) -> list[Any] | None:
        """The statement's records, or None when it must run on aiosqlite's thread instead
        (past its deadline, or the database busy). Raises sqlite3's other errors."""
        self.deadline = time.perf_counter() + INLINE_READ_DEADLINE_S
        cursor = self.connection.cursor()
        try:
            return cursor.execute(sql, arguments).fetchall()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF in _TRY_ON_THE_THREAD:  # extended codes too
                return None
            raise
        finally:
            cursor.close()  # ends the statement, and its read transaction, in every case

    def close(self) -> None:
        self.connection.close()


_TRY_ON_THE_THREAD = frozenset(
    {sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
)

# Each SQLite engine's inline readers by (process, thread); None for an engine whose
# database is not a plain file (an in-memory database is another one on every connection).
_INLINE: weakref.WeakKeyDictionary[Any, dict[tuple[int, int], InlineReader] | None] = (
    weakref.WeakKeyDictionary()
)


def _inline(engine: AsyncEngine) -> InlineReader | None:
    sync_engine = engine.sync_engine
    try:
        readers = _INLINE[sync_engine]
    except KeyError:
        readers = _INLINE[sync_engine] = _inline_readers(sync_engine)
    if readers is None:
        return None
    key = (os.getpid(), threading.get_ident())
    reader = readers.get(key)
    if reader is None:
        try:
            reader = InlineReader(str(sync_engine.url.database))
        except sqlite3.Error:
            return None  # locked at its first statement, say: the pool's path, and later again
        readers[key] = reader
    return reader


def plain_sqlite_file(url: Any) -> bool:
    """Whether a SQLite URL names a file by its path (not an in-memory database, which is
    another one on every connection, nor a URI with options)."""
    return bool(url.database) and url.database != ":memory:" and not url.query.get("uri")


def events_free(engine: AsyncEngine) -> bool:
    """Whether an engine's statements may skip its SQLAlchemy events (none traced)."""
    return engine.sync_engine not in _EVENTFUL


def _inline_readers(sync_engine: Any) -> dict[tuple[int, int], InlineReader] | None:
    if not plain_sqlite_file(sync_engine.url):
        return None
    readers: dict[tuple[int, int], InlineReader] = {}

    def close_readers(_engine: Any) -> None:
        for reader in readers.values():
            reader.close()
        readers.clear()

    event.listen(sync_engine, "engine_disposed", close_readers)
    return readers
