"""`gateway migrate` and `gateway seed`: the databases' revisions and their demo data."""

from __future__ import annotations

import asyncio

import click

from db import demo, registry
from gateway.cli.configuration import load_settings
from gateway.cli.databases import open_databases
from gateway.clock import utc_now
from gateway.inquiries import demo as demo_inquiries


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
@click.option(
    "--reset",
    is_flag=True,
    help="Delete existing planning, revenue and contact-centre rows, and every inquiry, first.",
)
def seed(parcels: int | None, reset: bool) -> None:
    """Fill the planning and revenue databases with deterministic demo data, and the
    gateway's with a year of past inquiries over it."""
    settings = load_settings()
    count = parcels or settings.seed_parcels

    async def go() -> tuple[demo.SeedSummary, demo_inquiries.DemoInquiries | None]:
        async with open_databases(settings) as databases:
            if await demo.is_seeded(databases):
                if not reset:
                    raise click.ClickException("the databases already hold data; use --reset")
                await demo.clear(databases)
                await demo_inquiries.clear(databases)
                await registry.clear_seeded(databases)  # the contact centre's too
            with click.progressbar(length=count, label="Seeding parcels") as bar:
                done = 0

                def progress(completed: int) -> None:
                    nonlocal done
                    bar.update(completed - done)
                    done = completed

                city = await demo.seed_demo(databases, parcels=count, progress=progress)
            inquiries = await demo_inquiries.seed_demo_inquiries(
                databases, settings, count=demo_inquiries.count_for(count), now=utc_now()
            )
            # The other databases with a seeder (the contact centre's catalogue and demo
            # requests), once, while they are empty.
            await registry.seed_empty(databases, parcels=count)
            return city, inquiries

    summary, inquiries = asyncio.run(go())
    click.echo(", ".join(f"{n} {t}" for t, n in vars(summary).items()))
    if inquiries is not None:
        click.echo(", ".join(f"{n} {t.replace('_', ' ')}" for t, n in vars(inquiries).items()))
