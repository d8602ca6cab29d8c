"""Index for Parcel.citizenRequests by location (a bounding box on latitude and longitude)

Revision ID: contact_0003
Revises: contact_0002
Create Date: 2026-11-30 11:20:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "contact_0003"
down_revision: str | Sequence[str] | None = "contact_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_citizen_requests_latitude_longitude", "citizen_requests", ["latitude", "longitude"]
    )


def downgrade() -> None:
    op.drop_index("ix_citizen_requests_latitude_longitude", table_name="citizen_requests")
