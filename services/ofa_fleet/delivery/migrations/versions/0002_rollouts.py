"""Staged rollouts, operators' pins, and what the reconciler learnt from devices' reports.

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


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("fleet_name", sa.String(63), primary_key=True),
        sa.Column("profile_name", sa.String(63), nullable=False),
        sa.Column("from_sha256", sa.String(64), nullable=False),
        sa.Column("to_sha256", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("canary_percent", sa.Integer(), nullable=False),
        sa.Column("failure_threshold_percent", sa.Integer(), nullable=False),
        sa.Column("min_success_reports", sa.Integer(), nullable=False),
        sa.Column("canaries_json", sa.Text(), nullable=False),
        sa.Column("successes", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("needed_successes", sa.Integer(), nullable=False),
        sa.Column("started_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_rollouts_profile_name", "rollouts", ["profile_name"])
    op.create_table(
        "fleet_pins",
        sa.Column("fleet_name", sa.String(63), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("previous_rollout_json", sa.Text(), nullable=False),
        sa.Column("pinned_us", sa.BigInteger(), nullable=False),
    )
    with op.batch_alter_table("specializations") as table:
        table.add_column(
            sa.Column("over_budget_sha256", sa.String(64), nullable=False, server_default="")
        )
        table.add_column(
            sa.Column("over_budget_median_ms", sa.Float(), nullable=False, server_default="0")
        )
        table.add_column(
            sa.Column("over_budget_reports", sa.Integer(), nullable=False, server_default="0")
        )
        table.add_column(
            sa.Column("latency_reports_json", sa.Text(), nullable=False, server_default="[]")
        )


def downgrade() -> None:
    with op.batch_alter_table("specializations") as table:
        for column in (
            "latency_reports_json",
            "over_budget_reports",
            "over_budget_median_ms",
            "over_budget_sha256",
        ):
            table.drop_column(column)
    op.drop_table("fleet_pins")
    op.drop_index("ix_rollouts_profile_name", "rollouts")
    op.drop_table("rollouts")
