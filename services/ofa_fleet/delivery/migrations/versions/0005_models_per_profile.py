"""A model per (profile, sha256): two profiles given the same bytes each get their own
signed manifest, figures and ledger row.

Before, ``models`` was keyed by sha256 alone, and the first profile to get some bytes
owned their record: a second profile whose search chose the same subnet was served the
first one's manifest and predicted figures. Each existing row stays its manifest's
profile's; every other profile that points at the same bytes (as its current model or in
its history) gets a copy of that row, so that its references stay valid. Such a copy
still carries the other profile's signed manifest and no cost: the reconciler sees that
and specializes the profile again, which signs its own manifest over the same row.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

REFERRING = {"current_models": "fk_current_models_model", "model_history": "fk_model_history_model"}
# What SQLite's unnamed constraints are called while a batch rebuilds their table.
NAMING = {
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
COPIED = (
    "size_bytes",
    "profile_revision",
    "supernet_version",
    "arch",
    "figures_json",
    "manifest",
    "signature",
    "created_us",
)


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table in REFERRING:
        name = _foreign_key_to_models(inspector, table, ["sha256"])
        with op.batch_alter_table(table, naming_convention=NAMING) as batch:
            batch.drop_constraint(name, type_="foreignkey")
    primary = inspector.get_pk_constraint("models").get("name") or "pk_models"
    with op.batch_alter_table("models", naming_convention=NAMING) as batch:
        batch.drop_constraint(primary, type_="primary")
        batch.create_primary_key("models_pkey", ["profile_name", "sha256"])
    op.create_index("ix_models_sha256", "models", ["sha256"])
    columns = ", ".join(COPIED)
    chosen = ", ".join(f"m.{c}" for c in COPIED)
    referenced = " UNION ".join(f"SELECT profile_name, sha256 FROM {t}" for t in REFERRING)
    # Until now one row per sha256 exists, so each reference finds exactly one to copy.
    op.execute(
        f"INSERT INTO models (profile_name, sha256, {columns}) "
        f"SELECT r.profile_name, r.sha256, {chosen} FROM ({referenced}) r "
        "JOIN models m ON m.sha256 = r.sha256 AND m.profile_name <> r.profile_name"
    )
    for table, name in REFERRING.items():
        with op.batch_alter_table(table, naming_convention=NAMING) as batch:
            batch.create_foreign_key(
                name,
                "models",
                ["profile_name", "sha256"],
                ["profile_name", "sha256"],
                ondelete="RESTRICT",
            )


def downgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, name in REFERRING.items():
        with op.batch_alter_table(table, naming_convention=NAMING) as batch:
            batch.drop_constraint(name, type_="foreignkey")
    # Back to one row per sha256: the oldest record of the bytes is kept.
    op.execute(
        "DELETE FROM models WHERE EXISTS (SELECT 1 FROM models o WHERE o.sha256 = "
        "models.sha256 AND (o.created_us < models.created_us OR (o.created_us = "
        "models.created_us AND o.profile_name < models.profile_name)))"
    )
    op.drop_index("ix_models_sha256", "models")
    primary = inspector.get_pk_constraint("models").get("name") or "pk_models"
    with op.batch_alter_table("models", naming_convention=NAMING) as batch:
        batch.drop_constraint(primary, type_="primary")
        batch.create_primary_key("models_pkey", ["sha256"])
    for table in REFERRING:
        with op.batch_alter_table(table, naming_convention=NAMING) as batch:
            batch.create_foreign_key(
                f"fk_{table}_sha256_models", "models", ["sha256"], ["sha256"], ondelete="RESTRICT"
            )


def _foreign_key_to_models(inspector: sa.Inspector, table: str, columns: list[str]) -> str:
    """The name of ``table``'s foreign key on ``columns`` into ``models``.

    PostgreSQL named it when 0001 created it; SQLite's has no name, and a batch that
    rebuilds the table knows it by the naming convention.
    """
    for key in inspector.get_foreign_keys(table):
        if key["referred_table"] == "models" and key["constrained_columns"] == columns:
            return key["name"] or NAMING["fk"] % {
                "table_name": table,
                "column_0_name": columns[0],
                "referred_table_name": "models",
            }
    raise RuntimeError(f"{table} has no foreign key on {columns} into models")
