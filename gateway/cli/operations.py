"""`gateway operations`: register trusted documents (the only ones partners may send in
production) and list them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from gateway.access.audit import record_cli_change
from gateway.cli.configuration import load_settings
from gateway.cli.databases import open_databases
from gateway.errors import BadUserInput
from gateway.guards.documents import list_operations, register_operation
from gateway.schema import build_schema


@click.group()
def operations() -> None:
    """Trusted documents: the operations partners may send in production."""


@operations.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option("--name", help="A name for people (default: the document's operation names).")
def register(file: Path, name: str | None) -> None:
    """Register FILE.graphql; partners then send its text, or only its SHA-256."""
    settings = load_settings()
    # The exact bytes are hashed: clients send the same text, or its hash.
    document = file.read_text(encoding="utf-8")

    async def go() -> tuple[str, str, bool]:
        async with open_databases(settings, "gateway") as databases:
            info, created = await register_operation(
                databases, build_schema(settings)._schema, document, name
            )
            if created:
                await record_cli_change(
                    databases, "operations.register", "RegisteredOperation", info.sha256
                )
        return info.sha256, info.name, created

    try:
        sha256, registered_name, created = asyncio.run(go())
    except BadUserInput as exc:
        raise click.ClickException(str(exc)) from None
    state = "registered" if created else "already registered"
    click.echo(f"{state}: {sha256} {registered_name}")


@operations.command("list")
def list_() -> None:
    """Every registered operation: its SHA-256, name and when it was registered."""
    settings = load_settings()

    async def go() -> list[tuple[str, str, str]]:
        async with open_databases(settings, "gateway") as databases:
            found = await list_operations(databases)
        return [(o.sha256, o.created_at.strftime("%Y-%m-%d %H:%M"), o.name) for o in found]

    for sha256, created, name in asyncio.run(go()):
        click.echo(f"{sha256}  {created}  {name}")
