"""`gateway migrate` and `gateway seed`: the databases' revisions and their demo data."""

from __future__ import annotations

import asyncio

import click

from db import demo
from gateway.cli.configuration import load_settings
from gateway.cli.databases import open_databases


@click.command()
def migrate() -> None:
    """Bring every database to the newest schema revision."""

    async def go() -> None:
        async with open_databases(load_settings()):
            pass  # opening them migrated them

    asyncio.run(go())
    click.echo("Databases are at the newest revision.")


@click.command()
@click.option(
    "--parcels",
    type=click.IntRange(min=1),
    default=None,
    help="How many parcels (default: GATEWAY_SEED_PARCELS).",
)
@click.option("--reset", is_flag=True, help="Delete existing planning and revenue rows first.")
def seed(parcels: int | None, reset: bool) -> None:
    """Fill the planning and revenue databases with deterministic demo data."""
    settings = load_settings()
    count = parcels or settings.seed_parcels

    async def go() -> demo.SeedSummary:
        async with open_databases(settings) as databases:
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

    summary = asyncio.run(go())
    click.echo(", ".join(f"{n} {t}" for t, n in vars(summary).items()))
