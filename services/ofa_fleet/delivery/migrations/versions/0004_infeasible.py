"""Where a profile was found infeasible: the revision and supernet no subnet of which fit
it, so the reconciler waits for either to change instead of retrying.

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
            sa.Column("infeasible_revision", sa.BigInteger(), nullable=False, server_default="0")
        )
        table.add_column(
            sa.Column("infeasible_supernet", sa.String(64), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("specializations") as table:
        table.drop_column("infeasible_supernet")
        table.drop_column("infeasible_revision")
