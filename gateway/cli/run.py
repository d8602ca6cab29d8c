"""`gateway run`: migrate, seed demo data on first run (development), and serve /graphql."""

from __future__ import annotations

import asyncio
import sys

import click

from db import registry
from gateway.access.audit_key import AuditKeyError, load_audit_key
from gateway.access.keys import ensure_demo_principals
from gateway.cli.configuration import load_settings
from gateway.cli.databases import open_databases
from gateway.clock import utc_now
from gateway.edge.serve import serve
from gateway.inquiries import demo as demo_inquiries
from gateway.observe.logs import configure_logging
from gateway.settings import Settings


async def _prepare(settings: Settings) -> dict[str, str]:
    """Migrates every database; in development seeds them on first run and returns fresh
    demo keys (secrets are never stored, so old ones cannot be shown)."""
    async with open_databases(settings) as databases:
        if not settings.development:
            return {}
        if settings.seed_parcels:  # every database of the registry with a seeder, if empty
            await registry.seed_empty(
                databases,
                parcels=settings.seed_parcels,
                announce=lambda name: click.echo(
                    f"Seeding demo data ({name}): {settings.seed_parcels} parcels …"
                ),
            )
            # A year of past inquiries over the city, once (the gateway holds none yet).
            seeded = await demo_inquiries.seed_demo_inquiries(
                databases,
                settings,
                count=demo_inquiries.count_for(settings.seed_parcels),
                now=utc_now(),
            )
            if seeded is not None:
                click.echo(f"Seeded demo data (gateway): {seeded.inquiries} past inquiries.")
        return await ensure_demo_principals(databases)


@click.command()
def run() -> None:
    """Migrate, seed demo data on first run (development), and serve /graphql."""
    settings = load_settings()
    # Every line from here on in the gateway's format (JSON in production, text in development).
    configure_logging(settings.log_level, settings.effective_log_format)
    try:  # before any worker starts: production without an audit key is refused here
        load_audit_key(settings)
    except AuditKeyError as exc:
        raise click.ClickException(str(exc)) from None
    demo_keys = asyncio.run(_prepare(settings))
    if settings.development:
        click.echo("Demo API keys (send as 'Authorization: Bearer <key>'):")
        for label, key in demo_keys.items():
            click.echo(f"  {label:<28} {key}")
    click.echo(f"Gateway listening on http://{settings.host}:{settings.port}/graphql", err=False)
    sys.stdout.flush()
    serve(settings)
