"""The database registry: one entry names a database, and settings, migrations, engines, demo
seeding, the test fixtures and /readyz all follow it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict
from sqlalchemy import Integer, MetaData, String, exists, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from db.base import NAMING
from db.engines import Databases
from db.registry import DATABASES, Database, Seeder
from gateway.edge.app import create_app
from gateway.settings import Settings
from tests.conftest import make_backend, settings_for


class ArchiveBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Letter(ArchiveBase):
    """The test-only database's one model."""

    __tablename__ = "letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject: Mapped[str] = mapped_column(String(200))


LETTERS = ["درخواست پروانه", "پاسخ استعلام", "Inquiry 1403-000123"]


async def _archive_is_seeded(databases: Databases) -> bool:
    async with databases.engine("archive").connect() as connection:
        return bool(await connection.scalar(select(exists().select_from(Letter))))


async def _seed_archive(databases: Databases, _parcels: int) -> None:
    async with databases.engine("archive").begin() as connection:
        await connection.execute(insert(Letter), [{"subject": s} for s in LETTERS])


# The whole of what adding a database takes, besides its models and migrations.
ARCHIVE = Database(
    name="archive",
    describes="a test-only archive of letters",
    metadata=ArchiveBase.metadata,
    migrations=Path(__file__).parent / "archive_migrations",
    seeder=Seeder(is_seeded=_archive_is_seeded, seed=_seed_archive),
)


@pytest.fixture
def archive() -> Iterator[Database]:
    DATABASES.add(ARCHIVE)
    try:
        yield ARCHIVE
    finally:
        DATABASES.remove(ARCHIVE.name)


def _diff(connection: Any) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, ArchiveBase.metadata))


@pytest.mark.parametrize("server", ["sqlite", "postgres", "mariadb"])
async def test_a_database_added_by_one_registry_entry_is_migrated_seeded_served_and_ready(
    server: str, archive: Database, tmp_path: Path
) -> None:
    backend, servers = await make_backend(server, tmp_path, parcels=2)
    try:
        assert list(backend.urls) == ["planning", "revenue", "gateway", "contact", "archive"]
        settings = settings_for(backend)
        assert settings.database_url("archive") == backend.urls["archive"]
        app = create_app(settings)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
        ):
            # Migrated by its own history, seeded by its seeder, reached through the app's
            # engines like any other database.
            async with app.state.databases.engine("archive").connect() as connection:
                revision = await connection.scalar(text("SELECT version_num FROM alembic_version"))
                assert revision == "archive_0001"
                assert await connection.run_sync(_diff) == []
                subjects = (await connection.scalars(select(Letter.subject))).all()
                assert sorted(subjects) == sorted(LETTERS)
            ready = await c.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["databases"] == dict.fromkeys(backend.urls, "ready")

            await _make_unreachable(backend.urls["archive"], servers)
            gone = await c.get("/readyz")
            assert gone.status_code == 503
            assert gone.json()["failing"] == ["archive"]
            assert gone.json()["databases"]["archive"] == "unavailable"
            assert gone.json()["databases"]["planning"] == "ready"
    finally:
        if servers is not None:
            await servers.drop_all()


async def _make_unreachable(url: str, servers: Any) -> None:
    """The archive's file moved away, or its database dropped on the server, while the app's
    pool still holds a connection to it."""
    parsed = make_url(url)
    if servers is None:
        _move_away(Path(parsed.database or ""))
        return
    force = " WITH (FORCE)" if parsed.get_backend_name() == "postgresql" else ""
    await servers._execute(f"DROP DATABASE {parsed.database}{force}")


def _move_away(path: Path) -> None:
    path.rename(path.with_name("moved-away.sqlite3"))


async def test_seeding_fills_only_the_empty_databases(archive: Database, tmp_path: Path) -> None:
    backend, _ = await make_backend("sqlite", tmp_path, parcels=2)
    databases = Databases(backend.urls)
    try:
        from db import registry

        assert await registry.seed_empty(databases, parcels=2) == []  # all seeded already
        async with databases.engine("archive").begin() as connection:
            await connection.execute(Letter.__table__.delete())
        announced: list[str] = []
        assert await registry.seed_empty(databases, parcels=2, announce=announced.append) == [
            "archive"
        ]
        assert announced == ["archive"]
        async with databases.engine("archive").connect() as connection:
            assert await connection.scalar(select(func.count()).select_from(Letter)) == 3
    finally:
        await databases.dispose()


def test_a_registered_database_is_configured_by_its_own_variable(
    archive: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert archive.url_variable == "GATEWAY_ARCHIVE_DATABASE_URL"
    monkeypatch.setenv("GATEWAY_ARCHIVE_DATABASE_URL", "postgresql+asyncpg://gw@db/archive")
    settings = Settings(data_dir=tmp_path)
    assert settings.database_url("archive") == "postgresql+asyncpg://gw@db/archive"
    assert settings.database_url("planning") == f"sqlite+aiosqlite:///{tmp_path}/planning.sqlite3"
    assert list(settings.database_urls) == ["planning", "revenue", "gateway", "contact", "archive"]


def test_the_documented_database_variables_and_toml_keys_still_work(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("planning", "revenue", "gateway"):
        monkeypatch.setenv(f"GATEWAY_{name.upper()}_DATABASE_URL", f"mysql+asyncmy://gw@db/{name}")
    settings = Settings(data_dir=tmp_path)
    assert {name: settings.database_urls[name] for name in ("planning", "revenue", "gateway")} == {
        name: f"mysql+asyncmy://gw@db/{name}" for name in ("planning", "revenue", "gateway")
    }
    monkeypatch.delenv("GATEWAY_REVENUE_DATABASE_URL")
    toml = tmp_path / "gateway.toml"
    toml.write_text('revenue_database_url = "postgresql+asyncpg://gw@db/revenue"\n')

    class FromFile(Settings):  # as GATEWAY_CONFIG_FILE names a file when Settings is defined
        model_config = SettingsConfigDict(**{**Settings.model_config, "toml_file": toml})

    from_file = FromFile(data_dir=tmp_path)
    assert from_file.database_url("revenue") == "postgresql+asyncpg://gw@db/revenue"
    # The environment wins over the file.
    assert from_file.database_url("planning") == "mysql+asyncmy://gw@db/planning"


def test_a_database_the_registry_does_not_hold_is_refused_by_its_setting_name() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(archive_database_url="sqlite+aiosqlite:///secret-place.sqlite3")
    assert [error["loc"] for error in refused.value.errors()] == [("archive_database_url",)]
    with pytest.raises(ValidationError) as refused_too:
        Settings(database_urls={"archive": "sqlite+aiosqlite:///elsewhere.sqlite3"})
    assert [error["loc"] for error in refused_too.value.errors()] == [("database_urls",)]


def test_the_registry_refuses_a_second_entry_of_a_name_and_a_name_unfit_for_a_variable() -> None:
    with pytest.raises(ValueError, match="already registered"):
        DATABASES.add(ARCHIVE.__class__(**{**ARCHIVE.__dict__, "name": "planning"}))
    with pytest.raises(ValueError, match="lower-case"):
        Database(
            name="Archive-2",
            describes="",
            metadata=MetaData(),
            migrations=Path(os.devnull),
        )
