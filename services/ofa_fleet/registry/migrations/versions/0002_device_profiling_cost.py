"""Each device's running total of what its on-boot profiling drew (the carbon ledger).

Existing devices start at zero: nothing they reported before carried a cost.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = ("profiling_cpu_seconds", "profiling_joules", "profiling_co2e_grams")


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        for name in COLUMNS:
            batch.add_column(
                sa.Column(name, sa.Float(), nullable=False, server_default=sa.text("0"))
            )


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        for name in COLUMNS:
            batch.drop_column(name)
