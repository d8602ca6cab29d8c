"""Alembic migrations for each database in the registry, run programmatically over its async
engine."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from db.engines import Databases
from db.registry import DATABASES


def alembic_config(name: str, connection: Connection | None = None) -> Config:
    entry = DATABASES[name]
    config = Config()
    config.set_main_option("script_location", str(entry.migrations))
    config.attributes["connection"] = connection
    config.attributes["target_metadata"] = entry.metadata
    return config


def _upgrade(connection: Connection, name: str) -> None:
    command.upgrade(alembic_config(name, connection), "head")


async def upgrade(databases: Databases) -> None:
    """Bring every open database to the newest revision of its history; safe to run on every
    start."""
    for name, engine in databases.engines.items():
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade, name)
