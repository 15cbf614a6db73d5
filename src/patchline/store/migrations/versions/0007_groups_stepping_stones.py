"""named device groups, and stepping stones of rollouts

Revision ID: 0007_groups_stepping_stones
Revises: 0006_rollouts
Create Date: 2026-11-30 15:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_groups_stepping_stones"
down_revision = "0006_rollouts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_groups",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "device_group_members",
        sa.Column("group_name", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=40), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["group_name"], ["device_groups.name"]),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"]),
        sa.PrimaryKeyConstraint("group_name", "device_id"),
    )
    op.create_index("ix_device_group_members_device", "device_group_members", ["device_id"])
    with op.batch_alter_table("rollouts") as batch:
        batch.add_column(sa.Column("stepping_stone", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rollouts") as batch:
        batch.drop_column("stepping_stone")
    op.drop_index("ix_device_group_members_device", table_name="device_group_members")
    op.drop_table("device_group_members")
    op.drop_table("device_groups")
