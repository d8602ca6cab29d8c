"""principals' organisation; the caller's request id beside the gateway's in the audit trail

Revision ID: gateway_0003
Revises: gateway_0002
Create Date: 2026-11-30 07:05:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = 'gateway_0003'
down_revision: Union[str, Sequence[str], None] = 'gateway_0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column('principals', sa.Column('organisation', sa.String(length=64), nullable=True))
    op.add_column('audit_records', sa.Column('caller_request_id', sa.String(length=64), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column('audit_records', 'caller_request_id')
    op.drop_column('principals', 'organisation')
