"""Delivery's first schema: models, their blobs, each profile's current model and history,
the reconciler's specialization states and watch cursor.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("profile_name", sa.String(63), nullable=False),
        sa.Column("profile_revision", sa.BigInteger(), nullable=False),
        sa.Column("supernet_version", sa.String(64), nullable=False),
        sa.Column("arch", sa.Text(), nullable=False),
        sa.Column("figures_json", sa.Text(), nullable=False),
        sa.Column("manifest", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_models_created", "models", ["created_us", "sha256"])
    op.create_index("ix_models_profile_created", "models", ["profile_name", "created_us", "sha256"])
    op.create_table(
        "model_blobs",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "current_models",
        sa.Column("profile_name", sa.String(63), primary_key=True),
        sa.Column(
            "sha256",
            sa.String(64),
            sa.ForeignKey("models.sha256", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("since_us", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "model_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("profile_name", sa.String(63), nullable=False),
        sa.Column(
            "sha256",
            sa.String(64),
            sa.ForeignKey("models.sha256", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("reason", sa.String(256), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_model_history_profile", "model_history", ["profile_name", "id"])
    op.create_table(
        "specializations",
        sa.Column("profile_name", sa.String(63), primary_key=True),
        sa.Column("profile_revision", sa.BigInteger(), nullable=False),
        sa.Column("supernet_version", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("next_attempt_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "watch_cursors",
        sa.Column("source", sa.String(63), primary_key=True),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "watch_cursors",
        "specializations",
        "model_history",
        "current_models",
        "model_blobs",
        "models",
    ):
        op.drop_table(table)
