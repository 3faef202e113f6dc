"""Latency tables devices measure on themselves, one per device, merged into its profile's.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_latency_tables",
        sa.Column("device_id", sa.String(32), nullable=False),
        sa.Column("space_fingerprint", sa.String(64), nullable=False),
        sa.Column("table_json", sa.Text(), nullable=False),
        sa.Column("submitted_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name="fk_device_latency_tables_device",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_id"),
    )
    op.create_index(
        "ix_device_latency_tables_space_fingerprint",
        "device_latency_tables",
        ["space_fingerprint"],
    )


def downgrade() -> None:
    op.drop_index("ix_device_latency_tables_space_fingerprint", "device_latency_tables")
    op.drop_table("device_latency_tables")
