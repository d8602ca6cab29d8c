"""Alembic migrations for each database, run programmatically over its async engine."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, MetaData

from db.base import GatewayBase, PlanningBase, RevenueBase
from db.engines import Databases

MIGRATIONS = Path(__file__).parent / "migrations"

METADATA: dict[str, MetaData] = {
    "planning": PlanningBase.metadata,
    "revenue": RevenueBase.metadata,
    "gateway": GatewayBase.metadata,
}


def alembic_config(name: str, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS / name))
    config.attributes["connection"] = connection
    config.attributes["target_metadata"] = METADATA[name]
    return config


def _upgrade(connection: Connection, name: str) -> None:
    command.upgrade(alembic_config(name, connection), "head")


async def upgrade(databases: Databases) -> None:
    """Bring every database to the newest revision; safe to run on every start."""
    # Importing the model modules registers their tables on the metadata.
    import db.gateway
    import db.planning
    import db.revenue  # noqa: F401

    for name, engine in databases.engines.items():
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade, name)
