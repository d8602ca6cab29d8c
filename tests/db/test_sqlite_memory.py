"""A worker holds dozens of SQLite connections (one thread each); each keeps its own page cache,
which is what held a worker's memory past its budget under load. Each is kept small."""

from __future__ import annotations

from pathlib import Path

from db.engines import SQLITE_CACHE_KIB, create_engine


async def test_every_sqlite_connection_keeps_a_small_page_cache(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'cache.sqlite3'}")
    try:
        async with engine.connect() as first, engine.connect() as second:
            for connection in (first, second):
                found = (await connection.exec_driver_sql("PRAGMA cache_size")).scalar()
                # Negative: KiB rather than pages. SQLite's own default is -2000.
                assert found == -SQLITE_CACHE_KIB
        assert SQLITE_CACHE_KIB <= 512
    finally:
        await engine.dispose()
