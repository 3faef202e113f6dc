"""Delivery's tables. Alembic migrations create them; a test checks the two agree.

Times are integer microseconds since the Unix epoch (UTC), as in the registry. Model bytes
are named by their sha256 and immutable; a model is those bytes assigned to one profile,
keyed by (profile, sha256): two profiles whose searches chose the same subnet get the same
bytes but each its own signed manifest, with that profile's revision and predicted
figures. A row keeps the canonical manifest bytes exactly as signed (a later spelling of
the manifest format must not break old signatures) beside the manifest's fields copied
out for queries. `model_blobs` holds the bytes only when the database is the blob store
(`DatabaseBlobStore`).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAME_LENGTH = 63
SHA256_HEX_LENGTH = 64
SUPERNET_VERSION_LENGTH = 64
REASON_LENGTH = 256
OPERATION_NAME_LENGTH = 64
ID_TYPE = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


def _model_of_profile(name: str) -> ForeignKeyConstraint:
    """A reference to one profile's model: a profile points only at models made for it."""
    return ForeignKeyConstraint(
        ["profile_name", "sha256"],
        ["models.profile_name", "models.sha256"],
        name=name,
        ondelete="RESTRICT",
    )


class ModelRow(Base):
    __tablename__ = "models"
    __table_args__ = (
        Index("ix_models_created", "created_us", "sha256"),
        Index("ix_models_profile_created", "profile_name", "created_us", "sha256"),
        Index("ix_models_sha256", "sha256"),
    )

    profile_name: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(SHA256_HEX_LENGTH), primary_key=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    profile_revision: Mapped[int] = mapped_column(BigInteger)
    supernet_version: Mapped[str] = mapped_column(String(SUPERNET_VERSION_LENGTH))
    arch: Mapped[str] = mapped_column(Text)
    figures_json: Mapped[str] = mapped_column(Text)
    manifest: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    created_us: Mapped[int] = mapped_column(BigInteger)
    # What the specialization that made it cost (search's metered figures; 0 for a model
    # stored before metering, or by hand). Kept out of the signed manifest: devices verify
    # what they run, not what it cost.
    specialization_cpu_seconds: Mapped[float] = mapped_column(Float, server_default="0")
    specialization_joules: Mapped[float] = mapped_column(Float, server_default="0")
    specialization_co2e_grams: Mapped[float] = mapped_column(Float, server_default="0")


class ModelBlobRow(Base):
    """A model's bytes, when the database is the blob store; written before its `ModelRow`."""

    __tablename__ = "model_blobs"

    sha256: Mapped[str] = mapped_column(String(SHA256_HEX_LENGTH), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class CurrentModelRow(Base):
    """The model each profile's devices get now; changed only with a `ModelHistoryRow`."""

    __tablename__ = "current_models"
    __table_args__ = (_model_of_profile("fk_current_models_model"),)

    profile_name: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(SHA256_HEX_LENGTH))
    since_us: Mapped[int] = mapped_column(BigInteger)


class ModelHistoryRow(Base):
    """Every change of a profile's current model, in the order they committed."""

    __tablename__ = "model_history"
    __table_args__ = (
        Index("ix_model_history_profile", "profile_name", "id"),
        _model_of_profile("fk_model_history_model"),
    )

    # SQLite numbers rows itself only for a column declared exactly INTEGER PRIMARY KEY.
    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True, autoincrement=True)
    profile_name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    sha256: Mapped[str] = mapped_column(String(SHA256_HEX_LENGTH))
    reason: Mapped[str] = mapped_column(String(REASON_LENGTH))
    at_us: Mapped[int] = mapped_column(BigInteger)


class SpecializationRow(Base):
    """Where a profile's specialization stands, and what its current model satisfies.

    Models are named by their bytes, so a model's own manifest cannot say which profile
    revision it serves (the same bytes may serve revisions 1 and 2): this row does.
    """

    __tablename__ = "specializations"

    profile_name: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    # The profile revision and supernet the current model was specialized for (0, "": none).
    profile_revision: Mapped[int] = mapped_column(BigInteger)
    supernet_version: Mapped[str] = mapped_column(String(SUPERNET_VERSION_LENGTH))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text)
    next_attempt_us: Mapped[int] = mapped_column(BigInteger)
    updated_us: Mapped[int] = mapped_column(BigInteger)
    # The model devices measured over budget and was re-specialized for (once per model).
    over_budget_sha256: Mapped[str] = mapped_column(String(SHA256_HEX_LENGTH), server_default="")
    # Named for the median it once held; the 95th percentile now (see `over_budget`).
    over_budget_latency_ms: Mapped[float] = mapped_column(
        "over_budget_median_ms", Float, server_default="0"
    )
    over_budget_reports: Mapped[int] = mapped_column(Integer, server_default="0")
    # Field latencies ({"arch", "measured_ms"} JSON list) every later search calibrates on.
    latency_reports_json: Mapped[str] = mapped_column(Text, server_default="[]")
    # The profile revision and supernet the last failed attempt was for (0, "": unknown,
    # or none failed). INFEASIBLE: nothing is tried again until one of them changes.
    failed_revision: Mapped[int] = mapped_column(BigInteger, server_default="0")
    failed_supernet: Mapped[str] = mapped_column(String(SUPERNET_VERSION_LENGTH), server_default="")


class WatchCursorRow(Base):
    """How far the reconciler has followed a change feed, so a restart resumes there."""

    __tablename__ = "watch_cursors"

    source: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    cursor: Mapped[int] = mapped_column(BigInteger)


class RolloutRow(Base):
    """A staged fleet's rollout of its profile's newest model (see `delivery.rollout`).

    The policy's figures are copied in when the rollout starts, so an edited policy
    applies to the next rollout, not to one half done.
    """

    __tablename__ = "rollouts"

    fleet_name: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    profile_name: Mapped[str] = mapped_column(String(NAME_LENGTH), index=True)
    from_sha256: Mapped[str] = mapped_column(String(SHA256_HEX_LENGTH))
    to_sha256: Mapped[str] = mapped_column(String(SHA256_HEX_LENGTH))
    state: Mapped[str] = mapped_column(String(16))
    canary_percent: Mapped[int] = mapped_column(Integer)
    failure_threshold_percent: Mapped[int] = mapped_column(Integer)
    min_success_reports: Mapped[int] = mapped_column(Integer)
    # {device id: microseconds it became a canary}; only reports after that count.
    canaries_json: Mapped[str] = mapped_column(Text)
    successes: Mapped[int] = mapped_column(Integer)
    failures: Mapped[int] = mapped_column(Integer)
    needed_successes: Mapped[int] = mapped_column(Integer)
    started_us: Mapped[int] = mapped_column(BigInteger)
    updated_us: Mapped[int] = mapped_column(BigInteger)


class FleetPinRow(Base):
    """A fleet an operator pinned, and the rollout policy an unpin gives back."""

    __tablename__ = "fleet_pins"

    fleet_name: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(SHA256_HEX_LENGTH))
    previous_rollout_json: Mapped[str] = mapped_column(Text)
    pinned_us: Mapped[int] = mapped_column(BigInteger)


class SupernetLedgerRow(Base):
    """What each supernet search has served cost to make (its `SupernetLedger`, as JSON),
    kept so the carbon ledger can be reported while search is down."""

    __tablename__ = "supernet_ledgers"

    supernet_version: Mapped[str] = mapped_column(String(SUPERNET_VERSION_LENGTH), primary_key=True)
    # The message in protobuf's JSON form; "" when the checkpoint carried no ledger.
    ledger_json: Mapped[str] = mapped_column(Text)
    # When search last named it as the one it serves: the newest is the current supernet.
    seen_us: Mapped[int] = mapped_column(BigInteger)


class OperationRow(Base):
    """A long-running operation an operator started (a Respecialize), until it is deleted
    or its retention passes. Kept here, not in a replica's memory, so that any replica
    answers for it and the replica that leads next finishes it."""

    __tablename__ = "operations"
    __table_args__ = (Index("ix_operations_open", "ended_us", "profile_name"),)

    # "operations/" and 32 hex digits: the creation time, then random ones, so names sort
    # oldest first.
    name: Mapped[str] = mapped_column(String(OPERATION_NAME_LENGTH), primary_key=True)
    profile_name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    created_us: Mapped[int] = mapped_column(BigInteger)
    # 0 while it runs.
    ended_us: Mapped[int] = mapped_column(BigInteger)
    # How it ended: the model made current, or an error (a gRPC status code name, its
    # message and its ErrorInfo reason); all "" while it runs.
    outcome_sha256: Mapped[str] = mapped_column(String(SHA256_HEX_LENGTH))
    error_code: Mapped[str] = mapped_column(String(32))
    error_message: Mapped[str] = mapped_column(Text)
    error_reason: Mapped[str] = mapped_column(String(64))
