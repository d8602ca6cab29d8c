"""The `gateway audit` commands: check the audit trail's hash chain from the command line."""

from __future__ import annotations

import asyncio

import click

from gateway.audit import AuditTrail, VerifyResult
from gateway.settings import Settings

audit = click.Group("audit", help="Check the audit trail of personal-data reads and changes.")


async def _verify(settings: Settings) -> VerifyResult:
    from db import migrate
    from db.engines import Databases

    databases = Databases(settings.database_urls)
    try:
        await migrate.upgrade(databases)
        return await AuditTrail(databases).verify()
    finally:
        await databases.dispose()


@audit.command()
def verify() -> None:
    """Recompute every record's hash from the first and compare the end with the head.

    Exits 1, naming the first bad record, when a record was edited, deleted or reordered.
    """
    # Imported here: gateway.cli imports this module to register the group.
    from gateway.cli import _settings

    result = asyncio.run(_verify(_settings()))
    if result.ok:
        click.echo(f"audit trail intact: {result.checked} records")
        return
    where = "" if result.first_bad_id is None else f" at record {result.first_bad_id}"
    click.echo(f"audit trail broken{where}: {result.reason}", err=True)
    raise SystemExit(1)
