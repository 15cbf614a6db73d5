"""support promises per model; install reports counted per day, status and source

Revision ID: 0008_support_promises
Revises: 0007_groups_stepping_stones
Create Date: 2026-11-30 16:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_support_promises"
down_revision = "0007_groups_stepping_stones"
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
    op.create_table(
        "report_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "status", "source"),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    day = "CAST(timezone('UTC', received_at) AS DATE)" if postgres else "date(received_at)"
    kind = (
        "CASE WHEN lower(source) LIKE 'mirror%' THEN 'mirror' "
        "WHEN lower(source) LIKE 'sd card%' OR lower(source) LIKE 'bundle%' THEN 'card' "
        "ELSE 'server' END"
    )
    op.execute(
        f"INSERT INTO report_days (day, status, source, count) "  # noqa: S608 - constants
        f"SELECT {day}, status, {kind}, count(*) FROM install_reports "
        f"GROUP BY {day}, status, {kind}"
    )


def downgrade() -> None:
    op.drop_table("report_days")
    op.drop_table("support_promises")
