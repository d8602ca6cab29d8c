"""The migrations create exactly what the models describe, on every backend."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from db.engines import Databases
from db.migrate import upgrade
from db.registry import DATABASES
from tests.conftest import Backend


def _diff(connection: Any, name: str) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, DATABASES[name].metadata))


async def test_migrated_databases_match_the_models(backend: Backend) -> None:
    databases = Databases(backend.urls)
    try:
        await upgrade(databases)  # a second run is a no-op
        for name, engine in databases.engines.items():
            async with engine.connect() as connection:
                diff = await connection.run_sync(_diff, name)
            assert diff == [], (name, diff)
    finally:
        await databases.dispose()
