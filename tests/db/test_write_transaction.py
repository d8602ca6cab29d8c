"""`db.engines.write_transaction`: a write transaction whose work is synchronous SQLAlchemy,
committed when the work returns and rolled back when it raises; on SQLite the whole
transaction is one hand-over to a thread (not one per statement through aiosqlite), waiting
for another connection's write lock as `begin_write` does."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import Connection, event, make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from db import raw_reads
from db.engines import StatementCounter, create_engine, statement_counter, write_transaction
from tests.conftest import Backend

TABLE = "write_transaction_scratch"


@pytest.fixture
async def engine(backend: Backend) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(backend.urls["gateway"], pool_size=2)
    async with engine.begin() as connection:
        await connection.execute(text(f"DROP TABLE IF EXISTS {TABLE}"))
        await connection.execute(
            text(f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, note VARCHAR(40))")
        )
    yield engine
    async with engine.begin() as connection:
        await connection.execute(text(f"DROP TABLE {TABLE}"))
    await engine.dispose()


async def _notes(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        rows = await connection.execute(text(f"SELECT note FROM {TABLE} ORDER BY id"))
        return [row.note for row in rows]


def _add(connection: Connection, note: str) -> None:
    # Two statements: no key is generated the same way on every database.
    after = connection.execute(text(f"SELECT coalesce(max(id), 0) FROM {TABLE}")).scalar_one()
    connection.execute(
        text(f"INSERT INTO {TABLE} (id, note) VALUES (:id, :n)"), {"id": after + 1, "n": note}
    )


def _insert(note: str, fail: bool = False) -> Callable[[Connection], int]:
    def work(connection: Connection) -> int:
        _add(connection, note)
        count = connection.execute(text(f"SELECT count(*) FROM {TABLE}")).scalar_one()
        if fail:
            raise ValueError("the work failed")
        return int(count)

    return work


async def test_what_the_work_wrote_is_committed(engine: AsyncEngine) -> None:
    assert await write_transaction(engine, _insert("first")) == 1
    assert await write_transaction(engine, _insert("second")) == 2
    assert await _notes(engine) == ["first", "second"]


async def test_nothing_is_written_when_the_work_raises(engine: AsyncEngine) -> None:
    await write_transaction(engine, _insert("kept"))
    with pytest.raises(ValueError, match="the work failed"):
        await write_transaction(engine, _insert("lost", fail=True))
    assert await _notes(engine) == ["kept"]
    # The writer is whole after it.
    assert await write_transaction(engine, _insert("after")) == 2


async def test_on_sqlite_the_transaction_is_one_hand_over_to_a_thread(
    engine: AsyncEngine,
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's writes")
    through_aiosqlite: list[str] = []
    event.listen(
        engine.sync_engine, "before_cursor_execute", lambda *a: through_aiosqlite.append(a[2])
    )
    threads: list[int] = []

    def work(connection: Connection) -> None:
        threads.append(threading.get_ident())
        for note in ("a", "b", "c"):
            _add(connection, note)

    counter = StatementCounter()
    token = statement_counter.set(counter)
    try:
        await write_transaction(engine, work)
    finally:
        statement_counter.reset(token)
    assert len(threads) == 1
    assert threads[0] != threading.get_ident()
    assert through_aiosqlite == []  # no statement handed to aiosqlite's thread one by one
    assert counter.count == 8  # BEGIN IMMEDIATE, three reads and inserts, COMMIT: counted
    assert await _notes(engine) == ["a", "b", "c"]


async def test_on_sqlite_the_transaction_waits_for_another_writer(engine: AsyncEngine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's writes")
    path = make_url(str(engine.url)).database
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process's writer, say
        write = asyncio.create_task(write_transaction(engine, _insert("waited")))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not write.done()  # it cannot have written: the lock is held
        holder.execute("COMMIT")
        assert await write == 1
    finally:
        holder.close()
    assert await _notes(engine) == ["waited"]


async def test_traced_engines_write_through_their_own_events(engine: AsyncEngine) -> None:
    seen: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    raw_reads.keep_events(engine)
    await write_transaction(engine, _insert("traced"))
    assert any(TABLE in statement and "INSERT" in statement for statement in seen)
    assert await _notes(engine) == ["traced"]
