"""`gateway export-schema`: the schema's SDL, as schema.graphql holds it."""

from __future__ import annotations

import click

from gateway.schema import build_schema
from gateway.schema.federation import federated_sdl
from gateway.settings import Settings


@click.command("export-schema")
@click.option(
    "--federation",
    is_flag=True,
    help="The subgraph SDL a federation router composes (as `_service { sdl }` answers), "
    "for GATEWAY_MUNICIPALITY_CODE's municipality.",
)
def export_schema(federation: bool) -> None:
    """Print the schema's SDL (schema.graphql is this output, checked in)."""
    schema = build_schema(Settings())
    click.echo(federated_sdl(schema) if federation else schema.as_str())
