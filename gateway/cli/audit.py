"""The `gateway audit` commands: check the audit trail's keyed chain and its checkpoints from
the command line."""

from __future__ import annotations

import asyncio

import click

from gateway.access.audit import open_audit_trail
from gateway.access.audit_key import AuditKeyError
from gateway.access.audit_verify import VerifyResult, verify
from gateway.cli.configuration import load_settings
from gateway.cli.databases import open_databases
from gateway.settings import Settings

audit = click.Group("audit", help="Check the audit trail of personal-data reads and changes.")


async def _verify(settings: Settings) -> VerifyResult:
    async with open_databases(settings) as databases:
        return await verify(open_audit_trail(settings, databases))


@audit.command("verify")
def verify_command() -> None:
    """Recompute every record's keyed hash from the first, compare the end with the head and
    with the newest signed checkpoint (checkpoint directory, and Redis when configured).

    Exits 1 with a line for each finding: a record edited, deleted, reordered or forged; records
    missing at the end; a wiped or rolled-back trail; a checkpoint that is forged or signed
    with another key; a key that matches no record.
    """
    try:
        result = asyncio.run(_verify(load_settings()))
    except AuditKeyError as exc:
        raise click.ClickException(str(exc)) from None
    if result.ok:
        against = (
            ""
            if result.checkpoint is None
            else f", up to its checkpoint of {result.checkpoint.length} records"
        )
        click.echo(f"audit trail intact: {result.checked} records{against}")
        return
    for finding in result.findings:
        click.echo(str(finding), err=True)
    raise SystemExit(1)
