"""Connections the database server closed (a restart, pg_terminate_backend, KILL) cost no
request an error, though PostgreSQL's pools no longer ping before every checkout: a closed
connection is known at checkout for free, and a read that meets one runs again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import bindparam, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql.elements import BindParameter

from db import engines
from db.engines import create_engine, read_rows
from tests.conftest import SERVER_URLS, Backend

LOOKUP = """
query ($code: RenewalCode!) {
  parcel(renewalCode: $code) { renewalCode owners { nationalCode } dues { total outstanding } }
}
"""
WAIT_S = 30.0  # a safety net for a loaded machine, never a measure


@pytest.fixture(scope="module")
async def admin(backend: Backend) -> AsyncIterator[AsyncEngine]:
    if backend.name == "sqlite":
        pytest.skip("SQLite has no server to close connections")
    url = SERVER_URLS[backend.name]
    assert url
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    yield engine
    await engine.dispose()


def _database(url: str) -> str:
    return url.rsplit("/", 1)[1].split("?", 1)[0]


async def close_server_side(admin: AsyncEngine, backend: Backend, *names: str) -> int:
    """Closes every connection to these databases from the server's side, as a restart
    would, and waits until the server has let them go; how many there were."""
    databases = [_database(backend.urls[name]) for name in names]
    async with admin.connect() as connection:
        if backend.name == "postgres":
            ours = "datname = ANY(:names) AND pid <> pg_backend_pid()"
            found = (
                await connection.execute(
                    text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {ours}"),
                    {"names": databases},
                )
            ).all()
            left = text(f"SELECT count(*) FROM pg_stat_activity WHERE {ours}")
        else:
            ours = "db IN :names AND id <> CONNECTION_ID()"
            listed = text(f"SELECT id FROM information_schema.processlist WHERE {ours}")
            expand: BindParameter[Any] = bindparam("names", expanding=True)
            found = (
                await connection.execute(listed.bindparams(expand), {"names": databases})
            ).all()
            for row in found:
                await connection.execute(text(f"KILL {int(row.id)}"))
            left = text(f"SELECT count(*) FROM information_schema.processlist WHERE {ours}")
            left = left.bindparams(expand)
        async with asyncio.timeout(WAIT_S):
            while (await connection.execute(left, {"names": databases})).scalar_one():  # noqa: ASYNC110 (the server says when, no event)
                await asyncio.sleep(0.02)
    return len(found)


async def _some_code(backend: Backend) -> str:
    engine = create_async_engine(backend.urls["planning"])
    try:
        async with engine.connect() as connection:
            code = await connection.scalar(text("SELECT renewal_code FROM parcels ORDER BY id"))
    finally:
        await engine.dispose()
    return str(code)


async def test_a_request_after_the_server_closed_every_connection_is_answered(
    backend: Backend, admin: AsyncEngine, client: httpx.AsyncClient
) -> None:
    code = await _some_code(backend)
    payload = {"query": LOOKUP, "variables": {"code": code}}
    before = await client.post("/graphql", json=payload)
    assert before.status_code == 200, before.text
    assert before.json()["data"]["parcel"]["renewalCode"] == code

    closed = await close_server_side(admin, backend, "planning", "revenue")
    after = await client.post("/graphql", json=payload)

    assert closed >= 2  # the app's pooled connections to both databases were among them
    assert after.status_code == 200, after.text
    assert "errors" not in after.json()
    assert after.json() == before.json()


async def _pooled(engine: AsyncEngine) -> Any:
    """Puts a connection in the pool; its driver's connection (asyncpg's)."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
        raw = await connection.get_raw_connection()
        return raw.driver_connection


async def _until_closed(driver: Any) -> None:
    async with asyncio.timeout(WAIT_S):
        while not driver.is_closed():  # noqa: ASYNC110 (asyncpg offers no event)
            await asyncio.sleep(0.01)


async def test_postgres_checks_out_no_dead_connection_and_reads_run_again(
    backend: Backend, admin: AsyncEngine
) -> None:
    if backend.name != "postgres":
        pytest.skip("the ping-free pool is PostgreSQL's (MariaDB's driver keeps the ping)")
    engine = create_engine(backend.urls["planning"])
    statement = text("SELECT count(*) FROM parcels")
    try:
        assert engine.pool._pre_ping is False

        # With the checkout check: a connection the server closed is never handed out.
        driver = await _pooled(engine)
        await close_server_side(admin, backend, "planning")
        await _until_closed(driver)
        async with engine.connect() as connection:
            assert (await connection.execute(statement)).scalar_one() > 0

        # Without it, a dead connection comes out of the pool and its statement fails …
        event.remove(engine.sync_engine, "checkout", engines._closed_by_server)
        await _pooled(engine)
        await close_server_side(admin, backend, "planning")
        with pytest.raises(DBAPIError) as failed:
            async with engine.connect() as connection:
                await connection.execute(statement)
        assert failed.value.connection_invalidated

        # … and a read meeting one runs again on a new connection.
        await _pooled(engine)
        await close_server_side(admin, backend, "planning")
        rows = await read_rows(engine, statement)
        assert rows[0][0] > 0
    finally:
        await engine.dispose()
