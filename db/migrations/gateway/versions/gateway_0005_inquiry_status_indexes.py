"""a partial index for the inquiries' status list: the answers revoked or superseded

The status list (gateway/inquiries/publication.py) reads only the answers that are not valid,
a few among many. PostgreSQL and SQLite index just those rows; MariaDB, without partial
indexes, gets the same columns over every row, which the list reads instead of the table.

Revision ID: gateway_0005
Revises: gateway_0004
Create Date: 2026-11-30 10:25:00.000000

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = 'gateway_0005'
down_revision: Union[str, Sequence[str], None] = 'gateway_0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

WITHDRAWN = sa.text(
    "answer_id IS NOT NULL AND (revoked_at IS NOT NULL OR superseded_by IS NOT NULL)"
)


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('inquiries', schema=None) as batch_op:
        batch_op.create_index(
            'ix_inquiries_withdrawn',
            ['revoked_at', 'superseded_by', 'answer_id', 'id'],
            unique=False,
            postgresql_where=WITHDRAWN,
            sqlite_where=WITHDRAWN,
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('inquiries', schema=None) as batch_op:
        batch_op.drop_index('ix_inquiries_withdrawn')
