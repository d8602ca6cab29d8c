"""The `gateway audit` commands: check the audit trail's keyed chain and its checkpoints from
the command line."""

from __future__ import annotations

import asyncio

import click
from sqlalchemy.exc import SQLAlchemyError

from gateway.access.audit import open_audit_trail
from gateway.access.audit_key import AuditKeyError, load_audit_key
from gateway.access.audit_verify import VerifyResult, verify
from gateway.cli.configuration import load_settings
from gateway.cli.databases import open_databases
from gateway.settings import Settings

audit = click.Group("audit", help="Check the audit trail of personal-data reads and changes.")


async def _verify(settings: Settings) -> VerifyResult:
    load_audit_key(settings)  # the key first: without it, nothing is touched
    # The gateway's own database alone: the trail needs nothing else, and verification must
    # work from a host that reaches no department's database.
    async with open_databases(settings, "gateway") as databases:
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
    except (OSError, SQLAlchemyError) as exc:
        # Never the URL (it may carry a password), nor a traceback: what failed, and where.
        raise click.ClickException(
            "the gateway database (GATEWAY_GATEWAY_DATABASE_URL) cannot be read: "
            f"{type(exc).__name__}; the trail was not verified"
        ) from None
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
