"""`gateway keys`: issue, list and revoke API keys from the command line."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from db.engines import Databases
from gateway.access import keys as api_keys
from gateway.access.audit import record_cli_change
from gateway.cli.configuration import load_settings
from gateway.cli.databases import open_databases
from gateway.errors import GatewayError

T = TypeVar("T")

keys = click.Group("keys", help="Issue, list and revoke API keys.")


def _run(work: Callable[[Databases], Awaitable[T]]) -> T:
    """Migrates the gateway database, then runs `work` over it."""
    settings = load_settings()

    async def go() -> T:
        async with open_databases(settings, "gateway") as databases:
            return await work(databases)

    try:
        return asyncio.run(go())
    except GatewayError as exc:
        raise click.ClickException(str(exc)) from None


def _when(moment: dt.datetime | None) -> str:
    return "never" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


@keys.command()
@click.option("--kind", required=True, help="notary, bank, counter, operator or department:<name>.")
@click.option("--name", required=True, help="The principal's name; created on first use.")
@click.option(
    "--organisation",
    default=None,
    help="A bank's three-digit bank code, as in its Sheba numbers (017 Melli, 012 Mellat…); "
    "required for a bank, refused for other kinds.",
)
@click.option(
    "--expires-days",
    type=click.IntRange(min=0),
    default=api_keys.DEFAULT_LIFETIME.days,
    show_default=True,
    help="Days until the key expires; 0: never.",
)
def create(kind: str, name: str, organisation: str | None, expires_days: int) -> None:
    """Issue a key; it is printed once, alone on the last line."""
    try:
        principal_kind, department = api_keys.parse_kind(kind)
    except GatewayError as exc:
        raise click.BadParameter(str(exc), param_hint="--kind") from None
    try:
        # A bank key without its bank code could verify no payment: refuse it here.
        bank_code = api_keys.parse_organisation(principal_kind, organisation, required=True)
    except GatewayError as exc:
        raise click.BadParameter(str(exc), param_hint="--organisation") from None
    expires_in = dt.timedelta(days=expires_days) if expires_days else None

    async def work(databases: Databases) -> tuple[api_keys.KeyInfo, str]:
        made = await api_keys.create_key(
            databases, principal_kind, name, department, expires_in, organisation=bank_code
        )
        await record_cli_change(databases, "keys.create", "ApiKey", str(made[0].id))
        return made

    info, key = _run(work)
    click.echo(f"Key {info.prefix} for {info.kind_label} «{info.principal_name}»", err=False)
    click.echo(f"  principal id: {info.principal_id}")
    if info.organisation is not None:
        click.echo(f"  bank code:    {info.organisation}")
    click.echo(f"  expires:      {_when(info.expires_at)}")
    click.echo("Store the key now; it cannot be shown again:")
    click.echo(key)


@keys.command("list")
def list_() -> None:
    """Every key with its state; never a secret."""
    found = _run(api_keys.list_keys)
    if not found:
        click.echo("No API keys.")
        return
    rows = [("PREFIX", "KIND", "NAME", "STATE", "CREATED", "EXPIRES")]
    rows += [
        (
            info.prefix,
            info.kind_label,
            info.principal_name,
            info.state,
            _when(info.created_at),
            _when(info.expires_at),
        )
        for info in found
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@keys.command()
@click.argument("prefix")
def revoke(prefix: str) -> None:
    """Revoke the key with this prefix (or id). Running servers notice within seconds."""

    async def work(databases: Databases) -> api_keys.KeyInfo:
        revoked = await api_keys.revoke_key(databases, prefix)
        await record_cli_change(databases, "keys.revoke", "ApiKey", str(revoked.id))
        return revoked

    info = _run(work)
    click.echo(
        f"Key {info.prefix} of {info.kind_label} «{info.principal_name}» is revoked "
        f"(since {_when(info.revoked_at)})."
    )
