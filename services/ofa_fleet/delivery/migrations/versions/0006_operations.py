"""Long-running operations: an operator's Respecialize is kept until it ends and after,
so any replica can answer for it and the next leader finishes it.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operations",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("profile_name", sa.String(63), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("ended_us", sa.BigInteger(), nullable=False),
        sa.Column("outcome_sha256", sa.String(64), nullable=False),
        sa.Column("error_code", sa.String(32), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=False),
        sa.Column("error_reason", sa.String(64), nullable=False),
    )
    op.create_index("ix_operations_open", "operations", ["ended_us", "profile_name"])


def downgrade() -> None:
    op.drop_index("ix_operations_open", "operations")
    op.drop_table("operations")
