"""Request ids that make a device's enrolment and status reports safe to retry.

Existing devices have none: their earlier calls cannot be retried any more.

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


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("enrol_request_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("report_request_id", sa.String(36), nullable=True))
        batch.create_index("ix_devices_enrol_request_id", ["enrol_request_id"])


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_index("ix_devices_enrol_request_id")
        batch.drop_column("report_request_id")
        batch.drop_column("enrol_request_id")
