"""What devices' on-boot profiling drew: refused when malformed, added up per device, and
kept from before this column existed. Against an SQLite file and PostgreSQL."""

from __future__ import annotations

import math

import grpc
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from ofa_fleet.registry.migrations import REGISTRY_MIGRATIONS
from ofa_fleet.registry.store import RegistryStore
from ofa_fleet.storage.database import Database, DatabaseUrl
from ofa_fleet.storage.migrations import CONNECTION, VERSION_TABLE
from ofa_fleet.v1 import common_pb2
from ofa_fleet.v1 import registry_pb2 as pb
from ofa_fleet.v1.registry_pb2_grpc import RegistryServiceStub
from tests.registry.server_thread import bearer
from tests.registry.test_service import OPERATOR, SHA, Fleet, rpc_error


def cost(cpu: float, joules: float, grams: float) -> common_pb2.EnergyCost:
    return common_pb2.EnergyCost(cpu_seconds=cpu, energy_joules=joules, co2e_grams=grams)


def report(
    stub: RegistryServiceStub,
    device: pb.RegisterDeviceResponse,
    spent: common_pb2.EnergyCost | None,
) -> pb.Device:
    status = pb.StatusReport(model_sha256=SHA, measured_latency_ms=2.0, profiling_cost=spent)
    return stub.ReportStatus(
        pb.ReportStatusRequest(name=device.device.name, report=status),
        metadata=bearer(device.device_token),
        timeout=10,
    ).device


def totals(device: pb.Device) -> tuple[float, float, float]:
    total = device.profiling_cost_total
    return (total.cpu_seconds, total.energy_joules, total.co2e_grams)


def test_each_devices_profiling_cost_adds_up_over_its_reports(channel: grpc.Channel) -> None:
    stub = RegistryServiceStub(channel)
    fleet = Fleet(stub)
    first, second = fleet.devices
    assert totals(first.device) == (0.0, 0.0, 0.0)
    report(stub, first, cost(1.25, 20.0, 0.5))
    report(stub, first, None)  # a boot that measured nothing adds nothing
    reported = report(stub, first, cost(0.75, 12.0, 0.25))
    assert totals(reported) == pytest.approx((2.0, 32.0, 0.75))
    # The total is the device's: the stored status has no place for a report's cost.
    assert "profiling_cost" not in pb.DeviceStatus.DESCRIPTOR.fields_by_name
    got = stub.GetDevice(pb.GetDeviceRequest(name=first.device.name), metadata=OPERATOR)
    assert totals(got.device) == pytest.approx((2.0, 32.0, 0.75))
    listed = stub.ListDevices(
        pb.ListDevicesRequest(parent="fleets/pis"), metadata=OPERATOR, timeout=10
    )
    by_id = {d.id: totals(d) for d in listed.devices}
    assert by_id[first.device.id] == pytest.approx((2.0, 32.0, 0.75))
    assert by_id[second.device.id] == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("spent", "field"),
    [
        (cost(-0.5, 1.0, 1.0), "report.profiling_cost.cpu_seconds"),
        (cost(1.0, math.nan, 1.0), "report.profiling_cost.energy_joules"),
        (cost(1.0, 1.0, math.inf), "report.profiling_cost.co2e_grams"),
        (cost(1.0, 1e12, 1.0), "report.profiling_cost.energy_joules"),
    ],
)
def test_a_negative_or_non_finite_cost_is_refused_and_changes_nothing(
    channel: grpc.Channel, spent: common_pb2.EnergyCost, field: str
) -> None:
    stub = RegistryServiceStub(channel)
    device = Fleet(stub).devices[0]
    report(stub, device, cost(1.0, 2.0, 3.0))
    status = pb.StatusReport(model_sha256=SHA, profiling_cost=spent)
    error = rpc_error(
        stub.ReportStatus,
        pb.ReportStatusRequest(name=device.device.name, report=status),
        bearer(device.device_token),
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field in error.details(), error.details()
    got = stub.GetDevice(pb.GetDeviceRequest(name=device.device.name), metadata=OPERATOR)
    assert totals(got.device) == (1.0, 2.0, 3.0)
    assert got.device.status.measured_latency_ms == 2.0  # the earlier report still stands


def test_devices_enrolled_before_the_totals_existed_start_at_zero(db_url: str) -> None:
    database = Database(DatabaseUrl.parse(db_url), REGISTRY_MIGRATIONS)
    try:
        with database.writer.connect() as connection:
            config = Config()
            config.set_main_option("script_location", str(REGISTRY_MIGRATIONS.location))
            config.attributes[CONNECTION] = connection
            config.attributes[VERSION_TABLE] = REGISTRY_MIGRATIONS.version_table
            command.upgrade(config, "0001")
            for statement in (
                "INSERT INTO profiles VALUES ('p', '{}', 1, 0, 0)",
                "INSERT INTO fleets VALUES ('f', 'p', '{}', 'ft', 1, 0, 0)",
                "INSERT INTO devices (id, fleet_name, hardware_id, token_hash, revision, "
                "created_us) VALUES ('d-00000000000000000000', 'f', '', 'dt', 1, 0)",
            ):
                connection.execute(text(statement))
            connection.commit()
        database.migrate()
        device = RegistryStore(database).get_device("d-00000000000000000000")
        assert device.profiling_cost_total.cpu_seconds == 0.0
        assert device.profiling_cost_total.joules == 0.0
    finally:
        database.close()
