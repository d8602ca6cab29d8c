"""The body of every database's alembic env.py: migrate over the connection handed in."""

from __future__ import annotations

from alembic import context


def run() -> None:
    config = context.config
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=config.attributes["target_metadata"],
        # SQLite alters tables by copying them; batch mode does that for us.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
