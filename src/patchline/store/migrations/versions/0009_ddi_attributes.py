"""attributes hawkBit DDI controllers report through configData

Revision ID: 0009_ddi_attributes
Revises: 0008_support_promises
Create Date: 2026-11-30 16:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_ddi_attributes"
down_revision = "0008_support_promises"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("ddi_attributes", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("ddi_attributes")
