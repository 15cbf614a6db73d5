"""amendments keep when they were recorded, and whether they were back-dated

Revision ID: 0002_amendments_recorded
Revises: 0001
Create Date: 2026-11-27 10:00:00.000000

Existing amendments are taken as recorded when their row was created (``created_at``,
which the server always set from its clock when it stored them), and as back-dated when
they took effect before that day; their reason says it was not asked for then.
"""

from __future__ import annotations

from datetime import UTC

import sqlalchemy as sa
from alembic import op

revision = "0002_amendments_recorded"
down_revision = "0001"
branch_labels = None
depends_on = None

EARLIER = "recorded before back-dated amendments needed a reason"


def upgrade() -> None:
    with op.batch_alter_table("policy_amendments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("backdated", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=True))
    table = sa.table(
        "policy_amendments",
        sa.column("id", sa.Integer()),
        sa.column("effective_from", sa.Date()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("recorded_at", sa.DateTime(timezone=True)),
        sa.column("backdated", sa.Boolean()),
        sa.column("reason", sa.Text()),
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(table.c.id, table.c.effective_from, table.c.created_at))
    for row_id, effective_from, created_at in rows.all():
        recorded = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
        backdated = effective_from < recorded.astimezone(UTC).date()
        connection.execute(
            sa.update(table)
            .where(table.c.id == row_id)
            .values(recorded_at=recorded, backdated=backdated, reason=EARLIER if backdated else "")
        )
    with op.batch_alter_table("policy_amendments", schema=None) as batch_op:
        batch_op.alter_column(
            "recorded_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.alter_column("backdated", existing_type=sa.Boolean(), nullable=False)
        batch_op.alter_column("reason", existing_type=sa.Text(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("policy_amendments", schema=None) as batch_op:
        batch_op.drop_column("reason")
        batch_op.drop_column("backdated")
        batch_op.drop_column("recorded_at")
