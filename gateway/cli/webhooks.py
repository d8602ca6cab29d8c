"""`gateway webhooks`: point a partner's inquiry events at its server, list and remove the
webhooks. Every change is written to the audit trail under the operator who ran it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncSession

from db.engines import Databases
from gateway.access.audit import record_cli_change
from gateway.cli.configuration import load_settings
from gateway.cli.databases import open_databases
from gateway.clock import utc_now
from gateway.errors import BadUserInput, GatewayError
from gateway.inquiries import webhooks as partner_webhooks
from gateway.settings import Settings

T = TypeVar("T")

webhooks = click.Group("webhooks", help="Partners' webhooks for their inquiries' events.")

ORGANISATION_HELP = (
    "The partner as its inquiries name it: a bank's three-digit code (017), or "
    "<notary|counter>:<principal id> as `gateway keys create` prints it (notary:12)."
)


def _change(
    operation: str, work: Callable[[AsyncSession, Settings], Awaitable[partner_webhooks.Webhook]]
) -> partner_webhooks.Webhook:
    """Runs `work` in one transaction of the migrated gateway database, then audits it."""
    settings = load_settings()

    async def go() -> partner_webhooks.Webhook:
        async with open_databases(settings, "gateway") as databases:
            async with databases.session("gateway") as session, session.begin():
                webhook = await work(session, settings)
            await record_cli_change(
                databases, operation, "PartnerWebhook", str(webhook.id), settings=settings
            )
            return webhook

    return _run(go())


def _run(work: Coroutine[Any, Any, T]) -> T:
    """Runs a command's work; bad input names its option, other refusals are one line."""
    try:
        return asyncio.run(work)
    except BadUserInput as exc:
        option = "--organisation" if exc.extensions.get("field") == "organisation" else "--url"
        raise click.BadParameter(str(exc), param_hint=option) from None
    except GatewayError as exc:
        raise click.ClickException(str(exc)) from None


@webhooks.command("set")
@click.option("--organisation", required=True, help=ORGANISATION_HELP)
@click.option(
    "--url",
    required=True,
    help="Where events are POSTed: http(s), no credentials; https only in production.",
)
def set_(organisation: str, url: str) -> None:
    """Create or replace a partner's webhook; its new secret is printed once, alone on the
    last line."""
    secret: list[str] = []

    async def work(session: AsyncSession, settings: Settings) -> partner_webhooks.Webhook:
        webhook, made = await partner_webhooks.set_webhook(
            session,
            organisation,
            url,
            utc_now(),
            production=not settings.development,
            key=partner_webhooks.sealing_key(settings),
        )
        secret.append(made)
        return webhook

    webhook = _change("webhooks.set", work)
    click.echo(f"Webhook for {webhook.organisation}: {webhook.url}")
    click.echo(
        "Each delivery is signed: X-Gateway-Signature: t=<unix seconds>,v1=<HMAC-SHA256 of "
        "'<t>.<body>' with this secret, hex>."
    )
    click.echo("Give the partner the secret now; it cannot be shown again:")
    click.echo(secret[0])


@webhooks.command("list")
def list_() -> None:
    """Every webhook: organisation, URL and since when; never a secret."""
    settings = load_settings()

    async def go() -> list[partner_webhooks.Webhook]:
        async with open_databases(settings, "gateway") as databases:
            return await _list(databases)

    found = _run(go())
    if not found:
        click.echo("No webhooks.")
        return
    rows = [("ORGANISATION", "SINCE", "URL")]
    rows += [(w.organisation, w.created_at.strftime("%Y-%m-%d %H:%M UTC"), w.url) for w in found]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for organisation, since, address in rows:
        click.echo(f"{organisation.ljust(widths[0])}  {since.ljust(widths[1])}  {address}")


async def _list(databases: Databases) -> list[partner_webhooks.Webhook]:
    async with databases.session("gateway") as session:
        return await partner_webhooks.list_webhooks(session)


@webhooks.command()
@click.option("--organisation", required=True, help=ORGANISATION_HELP)
def remove(organisation: str) -> None:
    """Remove a partner's webhook; deliveries still pending keep being retried, and fail
    unless a webhook is set again before their last attempt."""

    async def work(session: AsyncSession, _settings: Settings) -> partner_webhooks.Webhook:
        return await partner_webhooks.remove_webhook(session, organisation)

    webhook = _change("webhooks.remove", work)
    click.echo(f"Webhook for {webhook.organisation} removed.")
