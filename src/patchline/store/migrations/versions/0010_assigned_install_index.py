"""index devices by assigned build and install state, for the rollout brakes' read

Revision ID: 0010_assigned_install_index
Revises: 0009_ddi_attributes
Create Date: 2026-11-30 16:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0010_assigned_install_index"
down_revision = "0009_ddi_attributes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_devices_assigned_install", "devices", ["model", "assigned_build", "install_state"]
    )
    op.drop_index("ix_devices_assigned_build", table_name="devices")


def downgrade() -> None:
    op.create_index("ix_devices_assigned_build", "devices", ["model", "assigned_build"])
    op.drop_index("ix_devices_assigned_install", table_name="devices")
