"""decommissioned devices and yanked releases

Revision ID: 0003_withdrawals
Revises: 0002_amendments_recorded
Create Date: 2026-11-30 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_withdrawals"
down_revision = "0002_amendments_recorded"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("decommissioned_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("decommission_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("yanked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("yank_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.drop_column("yank_reason")
        batch_op.drop_column("yanked_at")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("decommission_reason")
        batch_op.drop_column("decommissioned_at")
