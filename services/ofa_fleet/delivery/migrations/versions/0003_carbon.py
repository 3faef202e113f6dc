"""The carbon ledger: each model's specialization cost, and each supernet's own ledger.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COST_COLUMNS = (
    "specialization_cpu_seconds",
    "specialization_joules",
    "specialization_co2e_grams",
)


def upgrade() -> None:
    with op.batch_alter_table("models") as table:
        for column in COST_COLUMNS:
            table.add_column(sa.Column(column, sa.Float(), nullable=False, server_default="0"))
    op.create_table(
        "supernet_ledgers",
        sa.Column("supernet_version", sa.String(64), primary_key=True),
        sa.Column("ledger_json", sa.Text(), nullable=False),
        sa.Column("seen_us", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("supernet_ledgers")
    with op.batch_alter_table("models") as table:
        for column in reversed(COST_COLUMNS):
            table.drop_column(column)
