"""The `gateway` command: run the server, migrate and seed databases, export the schema."""

from __future__ import annotations

import asyncio
import logging
import sys

import click

from gateway.settings import Settings


def _settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # a configuration error names the setting, never its value
        names = sorted({".".join(map(str, e["loc"])) for e in getattr(exc, "errors", list)()})
        raise click.ClickException(
            f"invalid configuration: {', '.join('GATEWAY_' + n.upper() for n in names)}"
        ) from None


async def _prepare(settings: Settings, *, seed: bool) -> None:
    from db import demo, migrate
    from db.engines import Databases

    databases = Databases(settings.database_urls)
    try:
        await migrate.upgrade(databases)
        if seed and settings.seed_parcels and not await demo.is_seeded(databases):
            click.echo(f"Seeding demo data: {settings.seed_parcels} parcels …")
            await demo.seed_demo(databases, parcels=settings.seed_parcels)
    finally:
        await databases.dispose()


@click.group()
def main() -> None:
    """A GraphQL gateway over a municipality's department databases and agencies."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


async def _demo_keys(settings: Settings) -> dict[str, str]:
    from db.engines import Databases
    from gateway.access.keys import ensure_demo_principals

    databases = Databases({"gateway": settings.database_url("gateway")})
    try:
        return await ensure_demo_principals(databases)
    finally:
        await databases.dispose()


@main.command()
def run() -> None:
    """Migrate, seed demo data on first run (development), and serve /graphql."""
    from gateway.access.audit_key import AuditKeyError, load_audit_key
    from gateway.edge.serve import serve

    settings = _settings()
    try:  # before any worker starts: production without an audit key is refused here
        load_audit_key(settings)
    except AuditKeyError as exc:
        raise click.ClickException(str(exc)) from None
    asyncio.run(_prepare(settings, seed=settings.development))
    if settings.development:
        # Fresh demo keys on every start: secrets are never stored, so old ones can't be shown.
        click.echo("Demo API keys (send as 'Authorization: Bearer <key>'):")
        for label, key in asyncio.run(_demo_keys(settings)).items():
            click.echo(f"  {label:<28} {key}")
    click.echo(f"Gateway listening on http://{settings.host}:{settings.port}/graphql", err=False)
    sys.stdout.flush()
    serve(settings)


@main.command()
def migrate() -> None:
    """Bring every database to the newest schema revision."""
    asyncio.run(_prepare(_settings(), seed=False))
    click.echo("Databases are at the newest revision.")


@main.command()
@click.option(
    "--parcels",
    type=click.IntRange(min=1),
    default=None,
    help="How many parcels (default: GATEWAY_SEED_PARCELS).",
)
@click.option("--reset", is_flag=True, help="Delete existing planning and revenue rows first.")
def seed(parcels: int | None, reset: bool) -> None:
    """Fill the planning and revenue databases with deterministic demo data."""
    from db import demo
    from db.engines import Databases

    settings = _settings()
    count = parcels or settings.seed_parcels

    async def go() -> demo.SeedSummary:
        await _prepare(settings, seed=False)
        databases = Databases(settings.database_urls)
        try:
            if await demo.is_seeded(databases):
                if not reset:
                    raise click.ClickException("the databases already hold data; use --reset")
                await demo.clear(databases)
            with click.progressbar(length=count, label="Seeding parcels") as bar:
                done = 0

                def progress(completed: int) -> None:
                    nonlocal done
                    bar.update(completed - done)
                    done = completed

                return await demo.seed_demo(databases, parcels=count, progress=progress)
        finally:
            await databases.dispose()

    summary = asyncio.run(go())
    click.echo(", ".join(f"{n} {t}" for t, n in vars(summary).items()))


@main.command("export-schema")
def export_schema() -> None:
    """Print the schema's SDL (schema.graphql is this output, checked in)."""
    from gateway.schema import build_schema

    click.echo(build_schema(Settings()).as_str())


def _register_groups() -> None:
    from gateway.audit_cli import audit
    from gateway.keys_cli import keys
    from gateway.operations_cli import operations

    for group in (keys, audit, operations):
        main.add_command(group)


_register_groups()
