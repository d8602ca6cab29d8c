"""The one way a command opens the databases: migrated to the newest revision first (unless
asked not to), and disposed when the command is done with them, however it ends."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from db import migrate as migrations
from db.engines import Databases
from gateway.settings import Settings


@contextlib.asynccontextmanager
async def open_databases(
    settings: Settings, *names: str, migrate: bool = True
) -> AsyncIterator[Databases]:
    """The databases named (every one when none is), each brought to its newest revision
    first when `migrate`, so that a command works on a fresh host as on a running one."""
    urls = (
        {name: settings.database_url(name) for name in names} if names else settings.database_urls
    )
    databases = Databases(urls)
    try:
        if migrate:
            await migrations.upgrade(databases)
        yield databases
    finally:
        await databases.dispose()
