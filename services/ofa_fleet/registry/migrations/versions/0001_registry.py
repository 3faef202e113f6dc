"""The registry's first schema: profiles, fleets, devices and the change feed.

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
        "profiles",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("spec_json", sa.Text(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "fleets",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column(
            "profile_name",
            sa.String(63),
            sa.ForeignKey("profiles.name", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("rollout_json", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_fleets_profile_name", "fleets", ["profile_name"])
    op.create_table(
        "devices",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "fleet_name",
            sa.String(63),
            sa.ForeignKey("fleets.name", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("hardware_id", sa.String(128), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_us", sa.BigInteger(), nullable=True),
        sa.Column("model_sha256", sa.String(64), nullable=True),
        sa.Column("measured_latency_ms", sa.Float(), nullable=True),
        sa.Column("onnxruntime_version", sa.String(64), nullable=True),
        sa.Column("errors_json", sa.Text(), nullable=True),
        sa.Column("reported_us", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_devices_fleet_name", "devices", ["fleet_name"])
    op.create_table(
        "changes",
        sa.Column("cursor", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("operation", sa.String(16), nullable=False),
        sa.Column("entity_id", sa.String(63), nullable=False),
        sa.Column("parent", sa.String(63), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("committed_us", sa.BigInteger(), nullable=False),
    )
    counter = op.create_table(
        "change_counter",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(counter, [{"id": 1, "value": 0}])


def downgrade() -> None:
    for table in ("change_counter", "changes", "devices", "fleets", "profiles"):
        op.drop_table(table)
