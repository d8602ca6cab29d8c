"""Indexes for Parcel.citizenRequests by address and for the engaged citizens

Revision ID: contact_0002
Revises: contact_0001
Create Date: 2026-11-30 11:00:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "contact_0002"
down_revision: str | Sequence[str] | None = "contact_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_citizen_requests_address", "citizen_requests", ["address"])
    op.create_index(
        "ix_citizen_requests_mobile_registered_at",
        "citizen_requests",
        ["citizen_mobile", "registered_at"],
    )
    op.create_index(
        "ix_citizen_requests_consent_mobile",
        "citizen_requests",
        ["public_consent", "anonymised_at", "citizen_mobile"],
    )


def downgrade() -> None:
    op.drop_index("ix_citizen_requests_consent_mobile", table_name="citizen_requests")
    op.drop_index("ix_citizen_requests_mobile_registered_at", table_name="citizen_requests")
    op.drop_index("ix_citizen_requests_address", table_name="citizen_requests")
