"""Which profile revision and supernet a profile's last failed attempt was for: where no
subnet fits (INFEASIBLE) the reconciler waits for either to change instead of retrying,
and a failing profile (FAILING) whose revision changed is tried at once, not after its
backoff.

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
    with op.batch_alter_table("specializations") as table:
        table.add_column(
            sa.Column("failed_revision", sa.BigInteger(), nullable=False, server_default="0")
        )
        table.add_column(
            sa.Column("failed_supernet", sa.String(64), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("specializations") as table:
        table.drop_column("failed_supernet")
        table.drop_column("failed_revision")
