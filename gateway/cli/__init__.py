"""The `gateway` command: run the server, migrate and seed databases, export the schema, and
manage API keys, the audit trail, trusted documents, webhooks and dead jobs."""

from __future__ import annotations

import logging
import os

import click

from gateway.cli import (
    audit,
    check,
    data,
    jobs,
    keys,
    operations,
    run,
    schema,
    webhooks,
    worker,
)
from gateway.migration_logs import quiet_migrations

TRUE = ("1", "true", "yes", "on")


@click.group()
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="Also log what migrations do (alembic, the job engine's system database).",
)
def main(verbose: bool) -> None:
    """A GraphQL gateway over a municipality's department databases and agencies."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if verbose:  # through the environment, so that the settings and every worker see it
        os.environ["GATEWAY_LOG_MIGRATIONS"] = "true"
    quiet_migrations(show=os.environ.get("GATEWAY_LOG_MIGRATIONS", "").lower() in TRUE)


for command in (
    run.run,
    check.check_config,
    worker.worker,
    data.migrate,
    data.seed,
    schema.export_schema,
    keys.keys,
    audit.audit,
    operations.operations,
    webhooks.webhooks,
    jobs.jobs,
):
    main.add_command(command)
