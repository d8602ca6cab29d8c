"""The test-only archive database's Alembic environment: the shared one, as every database's."""

from db.migrations.env_common import run

run()
