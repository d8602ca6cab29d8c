"""Engines and sessionmakers, one per database, and the per-request count of SQL statements."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import functools
import random
import time
import weakref
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Executable, Row, event, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from db import raw_reads
from db.raw_reads import SQLITE_CACHE_KIB

T = TypeVar("T")

# A unit of work's session: what a mutation (gateway/schema/mutation.py) hands the domain's
# changes. The schema names it by this name: it never imports SQLAlchemy itself.
Session = AsyncSession


@dataclass
class StatementCounter:
    count: int = 0


# Set per request by the gateway; engines add to whatever counter is current.
statement_counter: contextvars.ContextVar[StatementCounter | None] = contextvars.ContextVar(
    "statement_counter", default=None
)


def _count_statement(*_args: Any, **_kwargs: Any) -> None:
    counter = statement_counter.get()
    if counter is not None:
        counter.count += 1


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside a writer; foreign keys are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Each connection keeps its own page cache (2 MB by default) and a worker holds dozens
    # of connections across its databases: a smaller one each keeps a worker's memory
    # bounded (the pages are in the operating system's cache anyway, a read away).
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cursor.close()


def create_engine(url: str, *, echo: bool = False, pool_size: int | None = None) -> AsyncEngine:
    """An engine for `url`. `pool_size` bounds a server database's pool: several processes
    share a server's connections."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # Enough connections (one thread each) for a worker's concurrent requests, opened as
        # needed and kept: an overflow connection would be opened and closed per use, which
        # costs a thread and a file each time.
        kwargs.update(pool_size=48, max_overflow=0)
    else:
        size = pool_size or 10
        # No pre-ping on PostgreSQL: it cost a round trip in a transaction of its own before
        # every checkout. A connection the server closed is known locally (_closed_by_server),
        # a disconnect met mid-statement invalidates the whole pool, and reads retry once
        # (read_rows); MariaDB's driver learns of a closed socket only when it next reads,
        # so it keeps the ping (one COM_PING, no transaction).
        pre_ping = parsed.get_backend_name() != "postgresql"
        if parsed.get_backend_name() == "postgresql":
            # No JIT: the gateway's statements are short, and a misjudged plan (statistics
            # not yet gathered after a bulk load) JIT-compiled them on every execution, at
            # tens of milliseconds each.
            kwargs["connect_args"] = {"server_settings": {"jit": "off"}}
        # Connections are opened as needed and kept, up to `size`; past that a statement waits
        # for one. No overflow: SQLAlchemy closes an overflow connection as soon as it is
        # returned, so under steady load beyond the pool each statement paid for a new
        # connection (a server process forked, authentication, the driver's setup): with 5
        # kept and 5 overflowing, 240 new connections in 10 s and a third less throughput.
        kwargs.update(pool_size=size, max_overflow=0, pool_pre_ping=pre_ping, pool_recycle=1800)
    if parsed.get_backend_name() == "mysql":
        # Persian text needs the four-byte UTF-8 charset.
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    engine = create_async_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    if parsed.get_backend_name() == "postgresql":
        event.listen(engine.sync_engine, "checkout", _closed_by_server)
    event.listen(engine.sync_engine, "before_cursor_execute", _count_statement)
    return engine


def _closed_by_server(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """At checkout, at no cost: asyncpg marks a connection closed as soon as the event loop
    reads the server's goodbye (a restart, pg_terminate_backend, an idle timeout); the pool
    then throws it away and hands out another (SQLAlchemy retries on DisconnectionError)."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise DisconnectionError("the server closed this connection")


def records(rows: Sequence[Row[Any]]) -> list[Any]:
    """Rows as named tuples of the same fields, read by attribute or position as Rows are.

    Reading a Row's column by attribute goes through its __getattr__ once the ordinary
    look-up has failed, about a microsecond a read: converting a page of a hundred parcels
    of twelve columns cost a millisecond. A named tuple reads one in a few dozen
    nanoseconds (the loaders' raw reads give rows of the same kind)."""
    if not rows:
        return []
    make = _record_type(rows[0]._fields)._make
    return [make(row) for row in rows]


@functools.lru_cache(maxsize=256)
def _record_type(fields: tuple[str, ...]) -> Any:
    return collections.namedtuple("Row", fields)


async def read_rows(
    engine: AsyncEngine, statement: Executable, parameters: Mapping[str, Any] | None = None
) -> Sequence[Row[Any]]:
    """The rows of a read-only statement, on a short connection of the pool; run once more on
    a new connection when the first turned out dead (the server restarted, or closed it while
    the event loop had not yet noticed): reading twice is harmless, and the failure has made
    the pool discard every connection opened before it.

    On PostgreSQL the statement runs in autocommit: one round trip instead of three (asyncpg
    would begin a transaction for it, and the pool roll it back on return), and a lone
    SELECT sees one snapshot either way. The switch costs no round trip with asyncpg.

    On PostgreSQL and SQLite the statement runs straight through the driver (db/raw_reads.py):
    a registered one (`raw_reads.reused`) by its own plan, any other by its shape's; should
    it fail there, it runs again here, so that a dead connection's read is retried and any
    other failure is SQLAlchemy's own error."""
    planned = raw_reads.plan_for(engine, statement, parameters)
    if planned is not None:
        plan, values = planned
        counter = statement_counter.get()
        if counter is not None:
            counter.count += 1
        try:
            records = await raw_reads.fetch(engine, plan, values)
        except Exception:
            pass
        else:
            # Named tuples, read as Rows are (by attribute or position).
            return plan.rows(records)  # type: ignore[return-value]
    reader = _readers.get(engine)
    if reader is None:
        reader = engine
        if engine.dialect.name == "postgresql":
            reader = engine.execution_options(isolation_level="AUTOCOMMIT")
        _readers[engine] = reader
    try:
        async with reader.connect() as connection:
            return (await connection.execute(statement, parameters)).all()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    async with reader.connect() as connection:
        return (await connection.execute(statement, parameters)).all()


# Each engine's reader: itself, or on PostgreSQL a view of it (the same pool) in autocommit.
_readers: weakref.WeakKeyDictionary[AsyncEngine, AsyncEngine] = weakref.WeakKeyDictionary()


class Databases:
    """The engines of every configured database, built once in the app's lifespan."""

    def __init__(
        self, urls: Mapping[str, str], *, echo: bool = False, pool_size: int | None = None
    ) -> None:
        self.engines: dict[str, AsyncEngine] = {
            name: create_engine(url, echo=echo, pool_size=pool_size) for name, url in urls.items()
        }
        self.sessionmakers: dict[str, async_sessionmaker[AsyncSession]] = {
            name: async_sessionmaker(engine, expire_on_commit=False)
            for name, engine in self.engines.items()
        }
        self._probes: dict[str, AsyncEngine] = {}

    async def probe(self, name: str, inspect: Callable[[Connection], T] | None = None) -> T | None:
        """Opens a new connection to the database and runs `SELECT 1`, then `inspect` on it
        if given (its answer is returned); raises if it cannot.

        Never a pooled connection: one opened earlier outlives a SQLite file moved or deleted
        since, and a database dropped on its server. A SQLite file that is missing is an
        error here, not a new empty database."""
        probe = self._probes.get(name)
        if probe is None:
            url = _must_exist(self.engines[name].url)
            probe = self._probes[name] = create_async_engine(url, poolclass=NullPool)
        async with probe.connect() as connection:
            await connection.execute(text("SELECT 1"))
            if inspect is not None:
                return await connection.run_sync(inspect)
        return None

    def engine(self, name: str) -> AsyncEngine:
        return self.engines[name]

    def session(self, name: str) -> AsyncSession:
        return self.sessionmakers[name]()

    @property
    def planning(self) -> AsyncEngine:
        return self.engines["planning"]

    @property
    def revenue(self) -> AsyncEngine:
        return self.engines["revenue"]

    @property
    def gateway(self) -> AsyncEngine:
        return self.engines["gateway"]

    async def dispose(self) -> None:
        for engine in (*self.engines.values(), *self._probes.values()):
            await engine.dispose()


def _must_exist(url: URL) -> URL:
    """The URL of an existing SQLite file opened read-write only (SQLite would create a
    missing one); other URLs as they are."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return url
    return url.set(database=f"file:{url.database}").update_query_dict({"mode": "rw", "uri": "true"})


# How long a writer waits for SQLite's write lock in all, and how long between tries.
SQLITE_LOCK_WAIT_S = 5.0
SQLITE_LOCK_RETRY_S = (0.0002, 0.002)


# SQLite has one writer at a time. A process's own writers of one database take turns on a
# lock here before asking for SQLite's (BEGIN IMMEDIATE), instead of all polling SQLite's at
# once: under load, dozens of pollers starve the one writer holding it of the event loop, and
# a write that takes a millisecond alone takes hundreds. Other processes still meet at BEGIN
# IMMEDIATE. A lock belongs to one event loop (the job runtime has its own).
_WRITE_TURNS: weakref.WeakKeyDictionary[Any, dict[asyncio.AbstractEventLoop, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


@contextlib.asynccontextmanager
async def write_turn(engine: AsyncEngine) -> AsyncIterator[None]:
    """This process's turn to write to `engine` when it is SQLite (see _WRITE_TURNS); at
    once elsewhere, where writers lock rows and run side by side. Never nest two turns of
    one database: the inner would wait for the outer forever."""
    if engine.dialect.name != "sqlite":
        yield
        return
    loop = asyncio.get_running_loop()
    turns = _WRITE_TURNS.setdefault(engine.sync_engine, {})
    lock = turns.get(loop)
    if lock is None:
        lock = turns[loop] = asyncio.Lock()
    async with lock:
        yield


async def begin_write(connection: AsyncConnection) -> None:
    """Begins a transaction that will write after it reads. On SQLite the driver would begin
    only at the first write, after the reads, so two writers could read the same state;
    BEGIN IMMEDIATE takes the write lock first. Elsewhere the transaction begins as usual and
    the reads lock what they need (SELECT … FOR UPDATE)."""
    if connection.dialect.name == "sqlite":
        await _begin_immediate(connection)
    elif not connection.in_transaction():
        await connection.begin()


async def _begin_immediate(connection: AsyncConnection) -> None:
    """BEGIN IMMEDIATE, waiting for another process's writer with short, jittered tries.

    SQLite's own busy handler sleeps 1, 2, 5, 10 … up to 100 ms between tries, so two
    gateway processes writing to one file stall each other for hundreds of milliseconds; a
    write here holds the lock for about a millisecond.
    """
    deadline = time.monotonic() + SQLITE_LOCK_WAIT_S
    await connection.exec_driver_sql("PRAGMA busy_timeout = 0")
    try:
        while True:
            try:
                await connection.exec_driver_sql("BEGIN IMMEDIATE")
                return
            except OperationalError as exc:
                if "locked" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(random.uniform(*SQLITE_LOCK_RETRY_S))
    finally:
        await connection.exec_driver_sql(f"PRAGMA busy_timeout = {int(SQLITE_LOCK_WAIT_S * 1000)}")


async def write_transaction(engine: AsyncEngine, work: Callable[[Connection], T]) -> T:
    """Runs `work`, synchronous SQLAlchemy on a Connection, in one write transaction begun as
    `begin_write` begins one, committed when it returns and rolled back when it raises.

    On SQLite the whole transaction runs on one thread in one hand-over (`asyncio.to_thread`),
    on a connection of a synchronous engine over the same file: through aiosqlite each
    statement was a hand-over of its own to its connection's thread and back (a queue, a
    future, two thread switches and the GIL both ways, about 100 µs of CPU), and a
    transaction of seven statements cost the event loop seven of them. The caller takes the
    process's turn first (`write_turn`). Elsewhere, and on engines whose statements are
    traced, it runs on an async connection (`AsyncConnection.run_sync`).

    The work runs to its end on its thread even if the caller is cancelled meanwhile: what it
    committed stays committed."""
    writer = _sqlite_writer(engine)
    if writer is None:
        async with engine.connect() as connection:
            await begin_write(connection)
            done = await connection.run_sync(work)
            await connection.commit()
            return done
    return await asyncio.to_thread(_write_on_thread, writer, work)


def _write_on_thread(writer: Engine, work: Callable[[Connection], T]) -> T:
    with writer.connect() as connection:
        _begin_immediate_waiting(connection)
        try:
            done = work(connection)
        except BaseException:
            connection.exec_driver_sql("ROLLBACK")
            raise
        connection.exec_driver_sql("COMMIT")
        return done


def _begin_immediate_waiting(connection: Connection) -> None:
    """`_begin_immediate` on a thread: the writer's connections never wait in SQLite's busy
    handler (busy_timeout 0), they try again after a short, jittered sleep."""
    deadline = time.monotonic() + SQLITE_LOCK_WAIT_S
    while True:
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except OperationalError as exc:
            if "locked" not in str(exc).lower() or time.monotonic() > deadline:
                raise
        time.sleep(random.uniform(*SQLITE_LOCK_RETRY_S))


# Each SQLite engine's synchronous writer (an Engine over the same file), or None where
# writes take the async connection's path.
_WRITERS: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def _sqlite_writer(engine: AsyncEngine) -> Engine | None:
    sync_engine = engine.sync_engine
    if sync_engine.dialect.name != "sqlite" or not raw_reads.plain_sqlite_file(sync_engine.url):
        return None
    if not raw_reads.events_free(engine):
        return None  # traced: every statement through the engine's own events
    writer = _WRITERS.get(sync_engine)
    if writer is None:
        writer = _WRITERS[sync_engine] = _open_writer(sync_engine)
    return writer


def _open_writer(sync_engine: Engine) -> Engine:
    writer = create_sync_engine(
        sync_engine.url.set(drivername="sqlite"),
        # The driver's own transaction handling off: BEGIN IMMEDIATE and COMMIT are sent
        # here. Connections move between the executor's threads, one thread at a time.
        connect_args={"isolation_level": None, "check_same_thread": False, "timeout": 0},
        pool_size=2,
        max_overflow=0,
    )
    event.listen(writer, "connect", _sqlite_pragmas)
    event.listen(writer, "before_cursor_execute", _count_statement)

    def dispose_writer(_engine: Any) -> None:
        writer.dispose()

    event.listen(sync_engine, "engine_disposed", dispose_writer)
    return writer
