"""The registry's tables. Alembic migrations create them; a test checks the two agree.

Times are integer microseconds since the Unix epoch (UTC): exact, ordered and identical in
SQLite and PostgreSQL, where timezone-aware datetimes are not. Tokens are stored only as
sha256 hex digests. Profile specs and rollout policies are JSON documents in the shape of
the profile files, validated before they are written.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAME_LENGTH = 63
DEVICE_ID_LENGTH = 32
SHA256_HEX_LENGTH = 64
REQUEST_ID_LENGTH = 36


class Base(DeclarativeBase):
    pass


class ProfileRow(Base):
    __tablename__ = "profiles"

    name: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    spec_json: Mapped[str] = mapped_column(Text)
    revision: Mapped[int] = mapped_column(BigInteger)
    created_us: Mapped[int] = mapped_column(BigInteger)
    updated_us: Mapped[int] = mapped_column(BigInteger)


class FleetRow(Base):
    __tablename__ = "fleets"

    name: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    profile_name: Mapped[str] = mapped_column(
        String(NAME_LENGTH), ForeignKey("profiles.name", ondelete="RESTRICT"), index=True
    )
    rollout_json: Mapped[str] = mapped_column(Text)
    token_hash: Mapped[str] = mapped_column(String(SHA256_HEX_LENGTH), unique=True)
    revision: Mapped[int] = mapped_column(BigInteger)
    created_us: Mapped[int] = mapped_column(BigInteger)
    updated_us: Mapped[int] = mapped_column(BigInteger)


class DeviceRow(Base):
    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(DEVICE_ID_LENGTH), primary_key=True)
    fleet_name: Mapped[str] = mapped_column(
        String(NAME_LENGTH), ForeignKey("fleets.name", ondelete="RESTRICT"), index=True
    )
    hardware_id: Mapped[str] = mapped_column(String(128))
    token_hash: Mapped[str] = mapped_column(String(SHA256_HEX_LENGTH), unique=True)
    revision: Mapped[int] = mapped_column(BigInteger)
    created_us: Mapped[int] = mapped_column(BigInteger)
    last_seen_us: Mapped[int | None] = mapped_column(BigInteger)
    model_sha256: Mapped[str | None] = mapped_column(String(SHA256_HEX_LENGTH))
    measured_latency_ms: Mapped[float | None] = mapped_column(Float)
    onnxruntime_version: Mapped[str | None] = mapped_column(String(64))
    errors_json: Mapped[str | None] = mapped_column(Text)
    reported_us: Mapped[int | None] = mapped_column(BigInteger)
    # Running totals of the profiling cost every status report carried (carbon ledger).
    profiling_cpu_seconds: Mapped[float] = mapped_column(Float, server_default=text("0"))
    profiling_joules: Mapped[float] = mapped_column(Float, server_default=text("0"))
    profiling_co2e_grams: Mapped[float] = mapped_column(Float, server_default=text("0"))
    # The request ids of the enrolment that made the device and of its last status report
    # applied: a retry carrying either is answered without writing again.
    enrol_request_id: Mapped[str | None] = mapped_column(String(REQUEST_ID_LENGTH), index=True)
    report_request_id: Mapped[str | None] = mapped_column(String(REQUEST_ID_LENGTH))


class DeviceLatencyTableRow(Base):
    """The latency table a device last measured on itself; its profile's table is the
    median of these (`RegistryStore.submit_latency_table`). Goes with its device."""

    __tablename__ = "device_latency_tables"

    device_id: Mapped[str] = mapped_column(
        String(DEVICE_ID_LENGTH), ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    space_fingerprint: Mapped[str] = mapped_column(String(SHA256_HEX_LENGTH), index=True)
    table_json: Mapped[str] = mapped_column(Text)
    submitted_us: Mapped[int] = mapped_column(BigInteger)


class ChangeRow(Base):
    """The change feed behind WatchChanges, written in the same transaction as the change."""

    __tablename__ = "changes"

    cursor: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(16))
    operation: Mapped[str] = mapped_column(String(16))
    entity_id: Mapped[str] = mapped_column(String(NAME_LENGTH))
    parent: Mapped[str] = mapped_column(String(NAME_LENGTH))
    revision: Mapped[int] = mapped_column(BigInteger)
    committed_us: Mapped[int] = mapped_column(BigInteger)


class ChangeCounterRow(Base):
    """One row holding the last change cursor.

    Every writer increments it inside its transaction, so the row lock orders writers: a
    cursor is handed out only after every smaller one has committed or rolled back. A
    plain sequence would not do: PostgreSQL can commit cursor 7 before cursor 6, and a
    watcher that has seen 7 would skip 6 forever.
    """

    __tablename__ = "change_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger)
