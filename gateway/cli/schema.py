"""`gateway export-schema`: the schema's SDL, as schema.graphql holds it."""

from __future__ import annotations

import click

from gateway.schema import build_schema
from gateway.settings import Settings


@click.command("export-schema")
def export_schema() -> None:
    """Print the schema's SDL (schema.graphql is this output, checked in)."""
    click.echo(build_schema(Settings()).as_str())
