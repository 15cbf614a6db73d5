"""what the server believes about a device: claimed region, failed builds

Revision ID: 0004_device_beliefs
Revises: 0003_withdrawals
Create Date: 2026-11-30 13:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_device_beliefs"
down_revision = "0003_withdrawals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_region", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("region_claim_flagged_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("failed_builds", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("beliefs_changed_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_index("ix_devices_beliefs_changed_at", ["beliefs_changed_at"])


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index("ix_devices_beliefs_changed_at")
        batch_op.drop_column("beliefs_changed_at")
        batch_op.drop_column("failed_builds")
        batch_op.drop_column("region_claim_flagged_at")
        batch_op.drop_column("claimed_region")
