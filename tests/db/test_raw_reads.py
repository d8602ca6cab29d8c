"""The loaders' keyed reads on PostgreSQL and SQLite run straight through the driver
(db/raw_reads.py): the same rows as SQLAlchemy's, on the engine's own pool, counted, retried
on a dead connection, and failing with SQLAlchemy's errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

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
    assert 1 <= len(opened) <= size
    pool = planning_engine.sync_engine.pool
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


async def test_statements_built_per_request_keep_sqlalchemys_path_and_are_not_kept(
    planning_engine: AsyncEngine,
) -> None:
    """Row rules narrow a registered statement per request: the narrowed copy is another
    statement, never registered (so never kept nor compiled per request), and no plan
    compiled for a statement is ever taken for another one that happens to get its id."""
    from gateway.access.principals import Principal, PrincipalKind
    from gateway.loaders import access

    operator = Principal(PrincipalKind.OPERATOR, "op-1", "Operator", scopes=frozenset())
    registered = len(raw_reads._REUSED)
    for _ in range(20):
        loader = access.api_key_by_id(planning_engine, operator)
        assert raw_reads.plan_for(planning_engine, loader.statement) is None
    assert len(raw_reads._REUSED) == registered

    statement = planning.PARCEL_BY_ID.statement
    plan = raw_reads.plan_for(planning_engine, statement)
    assert plan is not None
    other = planning.PARCEL_BY_ID.where(text("1 = 1")).statement
    plans = raw_reads._PLANS[planning_engine.sync_engine]
    plans[id(other)] = plans[id(statement)]  # as if `other` had been given a dead one's id
    try:
        assert raw_reads.plan_for(planning_engine, other) is None
    finally:
        del plans[id(other)]
