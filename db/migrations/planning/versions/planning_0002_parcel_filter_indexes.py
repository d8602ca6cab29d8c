"""Covering indexes for parcels(filter:) at a million parcels

Revision ID: planning_0002
Revises: planning_0001
Create Date: 2026-11-30 12:50:00

A filtered page first reads the ids of its parcels in id order, then their rows. These two
indexes hold every column the filters read besides violations, so that first read is an
index-only scan: in id order, or per region or land use in id order when one is given (the
last replaces the land use and id index).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "planning_0002"
down_revision: str | Sequence[str] | None = "planning_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_parcels_id_filters", "parcels", ["id", "region_id", "district_id", "land_use"]
    )
    op.create_index(
        "ix_parcels_region_id_filters", "parcels", ["region_id", "id", "district_id", "land_use"]
    )
    op.create_index(
        "ix_parcels_land_use_id_filters", "parcels", ["land_use", "id", "region_id", "district_id"]
    )
    op.drop_index("ix_parcels_land_use_id", table_name="parcels")


def downgrade() -> None:
    op.create_index("ix_parcels_land_use_id", "parcels", ["land_use", "id"])
    op.drop_index("ix_parcels_land_use_id_filters", table_name="parcels")
    op.drop_index("ix_parcels_region_id_filters", table_name="parcels")
    op.drop_index("ix_parcels_id_filters", table_name="parcels")
