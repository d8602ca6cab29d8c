"""The loaders' keyed reads on PostgreSQL and SQLite run straight through the driver
(db/raw_reads.py): the same rows as SQLAlchemy's, on the engine's own pool, counted, retried
on a dead connection, and failing with SQLAlchemy's errors."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, make_url, text
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from db import engines, raw_reads
from db.engines import StatementCounter, create_engine, read_rows, statement_counter
from gateway import dues
from gateway.loaders import planning, revenue
from gateway.loaders.batching import KeyedQuery
from tests.conftest import Backend
from tests.db.test_disconnects import _pooled, _until_closed, close_server_side
from tests.db.test_disconnects import admin as admin  # the server's own account (a fixture)


@pytest.fixture(scope="module")
def raw(backend: Backend) -> Backend:
    if backend.name == "mariadb":
        pytest.skip("MariaDB's reads keep SQLAlchemy's path")
    return backend


@pytest.fixture(scope="module")
def postgres(raw: Backend) -> Backend:
    if raw.name != "postgres":
        pytest.skip("a server to close connections is PostgreSQL's")
    return raw


@pytest.fixture
async def planning_engine(raw: Backend) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(raw.urls["planning"], pool_size=3)
    yield engine
    await engine.dispose()


async def _keys(engine: AsyncEngine, sql: str) -> list[Any]:
    async with engine.connect() as connection:
        return list((await connection.execute(text(sql))).scalars())


def _registered(module: Any) -> list[tuple[str, KeyedQuery[Any]]]:
    return [(n, q) for n, q in vars(module).items() if isinstance(q, KeyedQuery)]


async def test_every_registered_statement_reads_the_rows_sqlalchemy_reads(raw: Backend) -> None:
    planning_engine = create_engine(raw.urls["planning"])
    revenue_engine = create_engine(raw.urls["revenue"])
    try:
        ids = await _keys(planning_engine, "SELECT id FROM parcels ORDER BY id LIMIT 40")
        codes = await _keys(
            planning_engine, "SELECT renewal_code FROM parcels ORDER BY id LIMIT 40"
        )
        people = await _keys(planning_engine, "SELECT id FROM persons ORDER BY id LIMIT 40")
        national = await _keys(
            planning_engine, "SELECT national_code FROM persons ORDER BY id LIMIT 40"
        )
        references = await _keys(
            revenue_engine, "SELECT bank_reference FROM payments ORDER BY id LIMIT 40"
        )
        keys_by_name = {
            "PARCEL_BY_RENEWAL_CODE": codes,
            "PERSON_BY_NATIONAL_CODE": national,
            "PARCELS_BY_OWNER": people,
            "PAYMENT_BY_REFERENCE": references,
        }
        cases = [(n, planning_engine, q.statement) for n, q in _registered(planning)]
        cases += [(n, revenue_engine, q.statement) for n, q in _registered(revenue)]
        cases.append(("ITEMS_BY_RENEWAL_CODE", revenue_engine, dues.ITEMS_BY_RENEWAL_CODE))
        raw = 0
        for name, engine, statement in cases:
            if name == "PARCEL_BY_PLATE":
                # A tuple of columns has no array: it keeps SQLAlchemy's path.
                assert raw_reads.plan_for(engine, statement) is None
                continue
            assert raw_reads.plan_for(engine, statement) is not None, name
            keys = keys_by_name.get(name, codes if "RENEWAL" in name else ids)
            got = await read_rows(engine, statement, {"keys": keys})
            async with engine.connect() as connection:
                expected = (await connection.execute(statement, {"keys": keys})).all()
            assert expected, name  # the comparison is about something
            if not statement._order_by_clauses:  # type: ignore[attr-defined]
                # Rows by key, in no promised order (the batch's plan may differ).
                got, expected = sorted(got, key=repr), sorted(expected, key=repr)
            assert [tuple(r) for r in got] == [tuple(r) for r in expected], name
            assert [tuple(map(type, r)) for r in got] == [tuple(map(type, r)) for r in expected], (
                name
            )
            assert got[0]._fields == expected[0]._fields, name
            raw += 1
        assert raw >= 15
    finally:
        await planning_engine.dispose()
        await revenue_engine.dispose()


async def test_a_read_is_one_statement_on_the_pool_without_opening_more(
    planning_engine: AsyncEngine,
) -> None:
    statement = planning.OWNERS_BY_PARCEL.statement
    opened: list[object] = []
    event.listen(planning_engine.sync_engine, "connect", lambda c, _r: opened.append(c))
    counter = StatementCounter()
    token = statement_counter.set(counter)
    try:
        # Three times the pool's size at once: they wait for a connection, none is opened
        # beyond the pool (and none opened and closed per use).
        size = planning_engine.sync_engine.pool.size()  # type: ignore[attr-defined]
        reads = [read_rows(planning_engine, statement, {"keys": [1, 2]}) for _ in range(3 * size)]
        answers = await asyncio.gather(*reads)
    finally:
        statement_counter.reset(token)
    assert counter.count == 3 * size
    assert answers[0]
    assert all(answer == answers[0] for answer in answers)
    pool = planning_engine.sync_engine.pool
    if planning_engine.dialect.name == "sqlite":
        # On the event loop's own thread, outside the pool: no connection of it opened.
        assert opened == []
    else:
        assert 1 <= len(opened) <= size
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    assert pool.checkedin() == len(opened)  # type: ignore[attr-defined]


async def test_a_dead_connection_met_by_a_raw_read_is_read_again(
    planning_engine: AsyncEngine, postgres: Backend, admin: AsyncEngine
) -> None:
    statement = planning.PARCEL_BY_ID.statement
    assert raw_reads.plan_for(planning_engine, statement) is not None
    # Without the checkout's check, a connection the server closed comes out of the pool.
    event.remove(planning_engine.sync_engine, "checkout", engines._closed_by_server)
    driver = await _pooled(planning_engine)
    await close_server_side(admin, postgres, "planning")
    await _until_closed(driver)
    rows = await read_rows(planning_engine, statement, {"keys": [1, 2]})
    assert [row.id for row in rows] == [1, 2]


async def test_a_failing_raw_read_raises_sqlalchemys_error(planning_engine: AsyncEngine) -> None:
    statement = planning.PARCEL_BY_ID.statement
    with pytest.raises((DBAPIError, StatementError)):
        await read_rows(planning_engine, statement, {"keys": [object()]})
    # The pool is whole after it.
    rows = await read_rows(planning_engine, statement, {"keys": [3]})
    assert [row.id for row in rows] == [3]


async def test_a_cancelled_raw_read_throws_its_connection_away(
    planning_engine: AsyncEngine,
) -> None:
    statement = planning.PARCEL_BY_ID.statement
    started = asyncio.Event()
    original = raw_reads.Plan.arguments

    def noting(plan: raw_reads.Plan, values: Any) -> list[Any]:
        started.set()
        return original(plan, values)

    raw_reads.Plan.arguments = noting  # type: ignore[method-assign]
    try:
        # The keys' array makes the server work long enough to cancel the read mid-statement.
        task = asyncio.create_task(
            read_rows(planning_engine, statement, {"keys": list(range(1, 200_000))})
        )
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        raw_reads.Plan.arguments = original  # type: ignore[method-assign]
    pool = planning_engine.sync_engine.pool
    assert pool.checkedout() == 0
    rows = await read_rows(planning_engine, statement, {"keys": [4]})
    assert [row.id for row in rows] == [4]


async def test_engines_with_statement_tracing_keep_sqlalchemys_path(
    planning_engine: AsyncEngine,
) -> None:
    statement = planning.PARCEL_BY_ID.statement
    seen: list[str] = []
    event.listen(
        planning_engine.sync_engine,
        "before_cursor_execute",
        lambda _c, _cu, sql, *_: seen.append(sql),
    )
    await read_rows(planning_engine, statement, {"keys": [1]})
    assert seen == []  # the raw path fires no cursor event …
    raw_reads.keep_events(planning_engine)  # … so tracing's engines keep SQLAlchemy's
    assert raw_reads.plan_for(planning_engine, statement) is None
    await read_rows(planning_engine, statement, {"keys": [1]})
    assert len(seen) == 1


async def test_statements_built_per_request_are_planned_once_per_shape(
    planning_engine: AsyncEngine,
) -> None:
    """Row rules narrow a registered statement per request: the narrowed copy is another
    statement, never registered (never kept nor compiled per request); it is planned once
    for its shape, and no plan compiled for a statement is ever taken for another one that
    happens to get its id."""
    from gateway.access.principals import Principal, PrincipalKind
    from gateway.loaders import access

    operator = Principal(PrincipalKind.OPERATOR, "op-1", "Operator", scopes=frozenset())
    registered = len(raw_reads._REUSED)
    plans = set()
    for _ in range(20):
        loader = access.api_key_by_id(planning_engine, operator)
        planned = raw_reads.plan_for(planning_engine, loader.statement)
        assert planned is not None  # an operator sees no key: `WHERE false`, no keys' IN
        plans.add(planned[0])
    assert len(plans) == 1
    assert len(raw_reads._REUSED) == registered

    statement = planning.PARCEL_BY_ID.statement
    planned = raw_reads.plan_for(planning_engine, statement)
    assert planned is not None
    other = planning.PARCEL_BY_ID.where(text("1 = 1")).statement
    by_id = raw_reads._PLANS[planning_engine.sync_engine]
    by_id[id(other)] = by_id[id(statement)]  # as if `other` had been given a dead one's id
    try:
        # Its keys' IN expands per call: SQLAlchemy's path, never the registered plan.
        assert raw_reads.plan_for(planning_engine, other) is None
    finally:
        del by_id[id(other)]


async def test_a_statement_built_per_request_reads_its_own_values(
    planning_engine: AsyncEngine,
) -> None:
    """Statements of one shape share a plan and each reads with its own values (a filter's,
    a window's limit, a text clause's, a parameter given at the call), the same rows and
    types as SQLAlchemy's; a shape that expands per call keeps SQLAlchemy's path."""
    from sqlalchemy import bindparam, select

    from db import planning as tables

    parcels = tables.Parcel.__table__

    def page(region: int, after: int, size: int) -> Any:
        return (
            select(parcels)
            .where(parcels.c.region_id == region, parcels.c.id > after)
            .where(text("parcels.area > :least").bindparams(least=size * 3))
            .order_by(parcels.c.id)
            .limit(size + 1)
        )

    cases = [page(region, after, size) for region in (1, 2, 3) for after, size in ((0, 5), (40, 9))]
    cases.append(select(parcels.c.id).where(parcels.c.renewal_code == bindparam("code")))
    codes = await _keys(planning_engine, "SELECT renewal_code FROM parcels ORDER BY id LIMIT 2")
    for answered, statement in enumerate(cases):
        parameters = {"code": codes[answered % 2]} if "code" in str(statement) else None
        planned = raw_reads.plan_for(planning_engine, statement, parameters)
        assert planned is not None
        got = await read_rows(planning_engine, statement, parameters)
        async with planning_engine.connect() as connection:
            expected = (await connection.execute(statement, parameters)).all()
        assert expected
        assert [tuple(r) for r in got] == [tuple(r) for r in expected]
        assert [tuple(map(type, r)) for r in got] == [tuple(map(type, r)) for r in expected]
        assert got[0]._fields == expected[0]._fields
    shapes = raw_reads._SHAPES[planning_engine.sync_engine]
    page_plans = {raw_reads.plan_for(planning_engine, c)[0] for c in cases[:-1]}  # type: ignore[index]
    assert len(page_plans) == 1
    assert len(shapes) == 2

    # A value missing: SQLAlchemy's path, and its own error.
    coded = select(parcels.c.id).where(parcels.c.renewal_code == bindparam("code"))
    assert raw_reads.plan_for(planning_engine, coded) is None
    with pytest.raises(StatementError, match="code"):
        await read_rows(planning_engine, coded)

    listed = select(parcels.c.id).where(parcels.c.id.in_([1, 2, 3]))
    assert raw_reads.plan_for(planning_engine, listed) is None
    assert [row.id for row in await read_rows(planning_engine, listed)] == [1, 2, 3]


async def test_shapes_are_kept_within_bounds(
    planning_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import literal_column, select

    monkeypatch.setattr(raw_reads, "_MAX_SHAPES", 4)
    for n in range(10):  # ten shapes: a column named differently each time
        statement = select(literal_column("1").label(f"c{n}"))
        assert raw_reads.plan_for(planning_engine, statement) is not None
        assert [tuple(r) for r in await read_rows(planning_engine, statement)] == [(1,)]
    shapes = raw_reads._SHAPES[planning_engine.sync_engine]
    assert len(shapes) == 4


# ---------------------------------------------------------------------------------------------
# SQLite: keyed reads on the event loop's own thread


@pytest.fixture
def sqlite_engine(planning_engine: AsyncEngine) -> AsyncEngine:
    if planning_engine.dialect.name != "sqlite":
        pytest.skip("reads on the loop's thread are SQLite's")
    return planning_engine


def _pool_connections(engine: AsyncEngine) -> list[object]:
    """Every checkout of the engine's pool from now on (aiosqlite's path)."""
    checkouts: list[object] = []
    event.listen(engine.sync_engine, "checkout", lambda c, _r, _p: checkouts.append(c))
    return checkouts


async def test_sqlite_reads_run_on_the_loops_thread_and_see_every_commit(
    sqlite_engine: AsyncEngine,
) -> None:
    statement = planning.PARCEL_BY_ID.statement
    checkouts = _pool_connections(sqlite_engine)
    (before,) = await read_rows(sqlite_engine, statement, {"keys": [5]})
    assert checkouts == []
    # A commit made meanwhile on another connection is read at once: the reader holds no
    # snapshot between reads.
    async with sqlite_engine.begin() as connection:
        await connection.execute(
            text("UPDATE parcels SET address = :a WHERE id = 5"), {"a": "changed for the test"}
        )
    try:
        checkouts.clear()  # the update's own
        (after,) = await read_rows(sqlite_engine, statement, {"keys": [5]})
        assert after.address == "changed for the test"
        assert checkouts == []
    finally:
        async with sqlite_engine.begin() as connection:
            await connection.execute(
                text("UPDATE parcels SET address = :a WHERE id = 5"), {"a": before.address}
            )
    # Read-only: the reader refuses to write, whatever it is given.
    reader = raw_reads._inline(sqlite_engine)
    assert reader is not None
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.read("UPDATE parcels SET address = 'x' WHERE id = 5", [])


async def test_a_sqlite_read_past_its_deadline_runs_on_aiosqlites_thread(
    sqlite_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    statement = planning.OWNERS_BY_PARCEL.statement
    keys = list(range(1, 3000))  # thousands of steps of SQLite's machine: its deadline is checked
    checkouts = _pool_connections(sqlite_engine)
    expected = await read_rows(sqlite_engine, statement, {"keys": keys})
    assert expected
    assert checkouts == []
    monkeypatch.setattr(raw_reads, "INLINE_READ_DEADLINE_S", -1.0)  # always past
    assert await read_rows(sqlite_engine, statement, {"keys": keys}) == expected
    assert len(checkouts) == 1  # interrupted, and read again on a connection of the pool


async def test_a_busy_sqlite_database_sends_the_read_to_aiosqlites_thread(
    raw: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop's thread never waits for a lock: a database locked by another connection
    sends the read to aiosqlite's thread, which waits for it as the pool's connections do,
    and answers once the lock is let go."""
    if raw.name != "sqlite":
        pytest.skip("reads on the loop's thread are SQLite's")
    source = make_url(raw.urls["planning"]).database
    assert source is not None
    with (
        contextlib.closing(sqlite3.connect(source)) as original,
        contextlib.closing(sqlite3.connect(tmp_path / "planning.sqlite3")) as copy,
    ):
        original.backup(copy)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'planning.sqlite3'}", pool_size=2)
    # The lock comes first, before any connection of the engine: in WAL mode only an
    # exclusive locking mode keeps readers out, and only a connection that is alone can take
    # it.
    holder = sqlite3.connect(tmp_path / "planning.sqlite3", isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    readers: list[raw_reads.InlineReader | None] = []
    asked = asyncio.Event()
    inline = raw_reads._inline

    def noting(engine: AsyncEngine) -> raw_reads.InlineReader | None:
        readers.append(inline(engine))
        asked.set()
        return readers[-1]

    monkeypatch.setattr(raw_reads, "_inline", noting)
    statement = planning.PARCEL_BY_ID.statement
    try:
        read = asyncio.create_task(read_rows(engine, statement, {"keys": [7]}))
        await asyncio.wait_for(asked.wait(), timeout=60)  # a bound only
        assert readers == [None]  # locked: no reader on the loop's thread …
        assert not read.done()  # … and the read waits for the lock on aiosqlite's thread
        holder.execute("ROLLBACK")
        holder.close()
        assert [row.id for row in await read] == [7]
        # Unlocked, the next read is the loop's thread's.
        assert [row.id for row in await read_rows(engine, statement, {"keys": [8]})] == [8]
        assert readers[-1] is not None
    finally:
        holder.close()
        await engine.dispose()


async def test_sqlite_readers_close_with_their_engine(raw: Backend) -> None:
    if raw.name != "sqlite":
        pytest.skip("reads on the loop's thread are SQLite's")
    engine = create_engine(raw.urls["planning"], pool_size=2)
    await read_rows(engine, planning.PARCEL_BY_ID.statement, {"keys": [1]})
    reader = raw_reads._inline(engine)
    assert reader is not None
    await engine.dispose()
    with pytest.raises(sqlite3.ProgrammingError):  # closed
        reader.connection.execute("SELECT 1")
    # The engine still reads after its disposal, on a new reader.
    rows = await read_rows(engine, planning.PARCEL_BY_ID.statement, {"keys": [1]})
    assert [row.id for row in rows] == [1]
    assert raw_reads._inline(engine) is not reader
    await engine.dispose()


async def test_in_memory_sqlite_databases_keep_the_pools_path() -> None:
    engine = create_async_engine("sqlite+aiosqlite://")
    try:
        assert raw_reads._inline(engine) is None
    finally:
        await engine.dispose()


async def test_a_reader_never_creates_a_missing_database_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.sqlite3"
    engine = create_engine(f"sqlite+aiosqlite:///{missing}", pool_size=1)
    try:
        assert raw_reads._inline(engine) is None
        assert not missing.exists()
    finally:
        await engine.dispose()


async def test_rows_of_another_shape_are_refused(planning_engine: AsyncEngine) -> None:
    """Rows are made straight from the driver's records (no named tuple's _make and its
    check per row): a record with other columns than the statement's is refused, not read
    into the wrong fields."""
    planned = raw_reads.plan_for(planning_engine, planning.PARCEL_BY_ID.statement)
    assert planned is not None
    plan = planned[0]
    rows = await read_rows(planning_engine, planning.PARCEL_BY_ID.statement, {"keys": [1]})
    assert plan.rows([tuple(rows[0])]) == [rows[0]]
    with pytest.raises(TypeError, match="columns"):
        plan.rows([tuple(rows[0])[:-1]])
