"""Every database the gateway knows, in one place: its name, its models' metadata, its
Alembic history and, where it has demo data, its seeder.

Settings (`GATEWAY_<NAME>_DATABASE_URL`, a SQLite file under the data folder by default),
migrations (db/migrate.py), the engines the app builds, `/readyz` and the test fixtures all
read `DATABASES`. Adding a database is one entry below, plus its models (db/<name>.py, on a
declarative base of its own in db/base.py) and its migrations (db/migrations/<name>/).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import MetaData

# The model modules register their tables on their base's metadata when imported.
import db.contact
import db.gateway
import db.planning
import db.revenue  # noqa: F401
from db import contact_demo, demo
from db.base import ContactBase, GatewayBase, PlanningBase, RevenueBase
from db.engines import Databases

MIGRATIONS = Path(__file__).parent / "migrations"

_NAME = re.compile(r"[a-z][a-z0-9_]{0,30}")


@dataclass(frozen=True)
class Seeder:
    """Demo data for a fresh database (development, and the test fixtures): `seed` fills it,
    at the demo's scale in parcels, only when `is_seeded` says it is still empty."""

    is_seeded: Callable[[Databases], Awaitable[bool]]
    seed: Callable[[Databases, int], Awaitable[object]]
    # Deletes the demo data again (`gateway seed --reset`); None: cleared elsewhere.
    clear: Callable[[Databases], Awaitable[None]] | None = None


@dataclass(frozen=True)
class Database:
    """One database: what it holds, the tables its models declare, its Alembic history."""

    name: str
    describes: str
    metadata: MetaData
    migrations: Path
    seeder: Seeder | None = None

    def __post_init__(self) -> None:
        # The name becomes a setting, an environment variable and a file or database name.
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"a database name is lower-case letters, digits and _: {self.name!r}")

    @property
    def url_setting(self) -> str:
        """The settings field (and TOML key) naming its URL."""
        return f"{self.name}_database_url"

    @property
    def url_variable(self) -> str:
        """The environment variable naming its URL."""
        return f"GATEWAY_{self.name.upper()}_DATABASE_URL"


class Registry:
    """The databases in order; tests add one of their own for the length of a test."""

    def __init__(self, *entries: Database) -> None:
        self._entries: dict[str, Database] = {}
        for entry in entries:
            self.add(entry)

    def add(self, entry: Database) -> Database:
        if entry.name in self._entries:
            raise ValueError(f"a database named {entry.name!r} is already registered")
        self._entries[entry.name] = entry
        return entry

    def remove(self, name: str) -> None:
        del self._entries[name]

    def __iter__(self) -> Iterator[Database]:
        return iter(tuple(self._entries.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __getitem__(self, name: str) -> Database:
        return self._entries[name]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def by_setting(self, setting: str) -> Database | None:
        """The database whose URL a settings key (`<name>_database_url`) names, if any."""
        name = setting.removesuffix("_database_url")
        if name == setting or name not in self._entries:
            return None
        return self._entries[name]


async def _seed_city(databases: Databases, parcels: int) -> object:
    return await demo.seed_demo(databases, parcels=parcels)


DATABASES = Registry(
    Database(
        name="planning",
        describes="planning department",
        metadata=PlanningBase.metadata,
        migrations=MIGRATIONS / "planning",
        # The demo city spans planning and revenue (dues are kept under parcels' renewal
        # codes), so one seeder fills both.
        seeder=Seeder(is_seeded=demo.is_seeded, seed=_seed_city),
    ),
    Database(
        name="revenue",
        describes="revenue department",
        metadata=RevenueBase.metadata,
        migrations=MIGRATIONS / "revenue",
    ),
    Database(
        name="gateway",
        describes="the gateway's own records",
        metadata=GatewayBase.metadata,
        migrations=MIGRATIONS / "gateway",
    ),
    Database(
        name="contact",
        describes="the contact centre (137): services catalogue and citizen requests",
        metadata=ContactBase.metadata,
        migrations=MIGRATIONS / "contact",
        # The services catalogue, regions, holidays, routing rules and a few hundred past
        # citizen requests (db/contact_demo.py).
        seeder=Seeder(
            is_seeded=contact_demo.is_seeded,
            seed=contact_demo.seed_catalogue,
            clear=contact_demo.clear,
        ),
    ),
)


async def clear_seeded(databases: Databases) -> list[str]:
    """Runs the `clear` of every open database whose seeder has one; the names cleared."""
    cleared = []
    for entry in DATABASES:
        if entry.seeder is None or entry.seeder.clear is None:
            continue
        if entry.name not in databases.engines:
            continue
        await entry.seeder.clear(databases)
        cleared.append(entry.name)
    return cleared


async def seed_empty(
    databases: Databases,
    *,
    parcels: int,
    announce: Callable[[str], None] | None = None,
) -> list[str]:
    """Runs the seeder of every open database that has one and is still empty, in registry
    order; `announce` hears each name before its seeding starts. Returns the names seeded."""
    seeded = []
    for entry in DATABASES:
        if entry.seeder is None or entry.name not in databases.engines:
            continue
        if await entry.seeder.is_seeded(databases):
            continue
        if announce is not None:
            announce(entry.name)
        await entry.seeder.seed(databases, parcels)
        seeded.append(entry.name)
    return seeded
