"""`gateway keys`: issue, list and revoke API keys from the command line. A revocation is
announced to the key's holder through Redis, when configured, so that running gateways'
apiKeyRevoked subscriptions hear it."""

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
from gateway.events import build_events
from gateway.settings import Settings

T = TypeVar("T")

keys = click.Group("keys", help="Issue, list and revoke API keys.")


def _run(work: Callable[[Databases, Settings], Awaitable[T]]) -> T:
    """Migrates the gateway database, then runs `work` over it."""
    settings = load_settings()

    async def go() -> T:
        async with open_databases(settings, "gateway") as databases:
            return await work(databases, settings)

    try:
        return asyncio.run(go())
    except GatewayError as exc:
        raise click.ClickException(str(exc)) from None


def _when(moment: dt.datetime | None) -> str:
    return "never" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


@keys.command()
@click.option(
    "--kind",
    required=True,
    help="notary, bank, counter, operator, router (a federation router) or department:<name>.",
)
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

    async def work(databases: Databases, settings: Settings) -> tuple[api_keys.KeyInfo, str]:
        made = await api_keys.create_key(
            databases, principal_kind, name, department, expires_in, organisation=bank_code
        )
        await record_cli_change(
            databases, "keys.create", "ApiKey", str(made[0].id), settings=settings
        )
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
    found = _run(lambda databases, _settings: api_keys.list_keys(databases))
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

    async def work(databases: Databases, settings: Settings) -> api_keys.KeyInfo:
        async with databases.session("gateway") as session, session.begin():
            revocation = await api_keys.revoke(session, prefix)
        revoked = revocation.key
        await record_cli_change(
            databases, api_keys.KEYS_REVOKE, "ApiKey", str(revoked.id), settings=settings
        )
        if revocation.changed and settings.redis_url is not None:
            # Only Redis reaches the running gateways; in-process, no one here listens.
            events = build_events(settings)
            try:
                await events.publish(*api_keys.revocation_notice(revoked))
            finally:
                await events.close()
        return revoked

    info = _run(work)
    click.echo(
        f"Key {info.prefix} of {info.kind_label} «{info.principal_name}» is revoked "
        f"(since {_when(info.revoked_at)})."
    )
