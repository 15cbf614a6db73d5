"""the rule that allowed each device's assigned build; indexes of offline receipts and of
audit entries by subject (a device's decisions)

Revision ID: 0011_deliveries_by_rule
Revises: 0010_assigned_install_index
Create Date: 2026-11-30 19:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_deliveries_by_rule"
down_revision = "0010_assigned_install_index"
branch_labels = None
depends_on = None

RECEIPTS = sa.text("source LIKE 'bundle %'")


def upgrade() -> None:
    op.add_column("devices", sa.Column("assigned_rule", sa.String(length=128), nullable=True))
    op.create_index("ix_devices_assigned_rule", "devices", ["assigned_rule", "install_state"])
    op.create_index(
        "ix_reports_receipts",
        "install_reports",
        ["target", "device_id"],
        postgresql_where=RECEIPTS,
        sqlite_where=RECEIPTS,
    )
    op.create_index("ix_audit_subject", "audit_entries", ["subject", "seq"])


def downgrade() -> None:
    op.drop_index("ix_audit_subject", table_name="audit_entries")
    op.drop_index("ix_reports_receipts", table_name="install_reports")
    op.drop_index("ix_devices_assigned_rule", table_name="devices")
    op.drop_column("devices", "assigned_rule")
