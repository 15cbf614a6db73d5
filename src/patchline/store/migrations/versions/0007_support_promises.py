"""support promises per model; install reports indexed by when they arrived

Revision ID: 0007_support_promises
Revises: 0006_rollouts
Create Date: 2026-11-30 16:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_support_promises"
down_revision = "0006_rollouts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "support_promises",
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("security_until", sa.Date(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("set_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("model"),
    )
    op.create_index("ix_reports_received_at", "install_reports", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_reports_received_at", table_name="install_reports")
    op.drop_table("support_promises")
