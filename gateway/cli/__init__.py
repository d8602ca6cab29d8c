"""The `gateway` command: run the server, migrate and seed databases, export the schema, and
manage API keys, the audit trail and trusted documents."""

from __future__ import annotations

import logging

import click

from gateway.cli import audit, data, keys, operations, run, schema, webhooks, worker


@click.group()
def main() -> None:
    """A GraphQL gateway over a municipality's department databases and agencies."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


for command in (
    run.run,
    worker.worker,
    data.migrate,
    data.seed,
    schema.export_schema,
    keys.keys,
    audit.audit,
    operations.operations,
    webhooks.webhooks,
):
    main.add_command(command)
