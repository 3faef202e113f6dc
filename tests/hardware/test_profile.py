"""Hardware profiles: the stored shape round-trips, and every bad field is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ofa_fleet.errors import InvalidArgumentError, NotFoundError
from ofa_fleet.hardware import HardwareProfile, load_profile
from ofa_fleet.hardware.latency_table import LatencyTable
from ofa_fleet.hardware.units import parse_bytes

PROFILES = Path(__file__).resolve().parents[2] / "deploy" / "profiles"


def profile_dict(**overrides) -> dict:
    data = {
        "name": "board",
        "cpu": {"architecture": "aarch64", "cores": 4, "clock_ghz": 1.5},
        "ram_bytes": "256MiB",
        "storage_bytes": "64MiB",
        "runtime": {"execution_provider": "CPUExecutionProvider", "threads": 2},
        "constraints": {
            "latency_budget_ms": 5.0,
            "max_model_bytes": "4MiB",
            "max_peak_memory_bytes": 1048576,
        },
    }
    for key, value in overrides.items():
        section, _, field = key.partition("__")
        if field:
            data[section] = {**data[section], field: value}
        else:
            data[section] = value
    return data


def table_dict(fingerprint: str = "abc") -> dict:
    return {
        "format": "ofa-fleet.latency-table/1",
        "space_fingerprint": fingerprint,
        "in_channels": 3,
        "num_classes": 10,
        "threads": 2,
        "execution_provider": "CPUExecutionProvider",
        "onnxruntime_version": "1.0",
        "machine": "test",
        "layers": {"stem-x": 0.1},
    }


def test_round_trip_through_the_stored_shape():
    profile = HardwareProfile.from_dict(profile_dict(latency_table=table_dict()))
    assert profile.ram_bytes == 256 * 2**20
    assert profile.constraints.max_model_bytes == 4 * 2**20
    again = HardwareProfile.from_dict(json.loads(json.dumps(profile.to_dict())))
    assert again == profile


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"constraints__latency_budget_ms": 0}, "latency_budget_ms must be positive"),
        ({"constraints__latency_budget_ms": -3}, "latency_budget_ms must be positive"),
        ({"constraints__latency_budget_ms": "fast"}, "latency_budget_ms must be a number"),
        ({"runtime__execution_provider": "TPU"}, "not a known onnxruntime execution provider"),
        ({"runtime__engine": "tflite"}, "engine must be one of"),
        ({"runtime__threads": 8}, "threads is 8 but the CPU has 4 cores"),
        ({"runtime__graph_optimization": "fast"}, "graph_optimization must be one of"),
        ({"cpu__architecture": "mips"}, "architecture must be one of"),
        ({"cpu__cores": 0}, "cores must be positive"),
        ({"ram_bytes": "12 parsecs"}, "unknown unit"),
        ({"ram_bytes": -1}, "ram_bytes must be positive"),
        ({"constraints__max_model_bytes": "1GiB"}, "exceeds storage_bytes"),
        ({"constraints__min_top1": 1.5}, "min_top1 must be within 0..1"),
        ({"constraints__colour": "red"}, "unknown fields ['colour']"),
        ({"cpu": "fast"}, "cpu must be a mapping"),
        # Ceilings far above any device: what search would refuse later is refused here.
        ({"cpu__cores": 2**32 - 1}, "cores must be at most 1024"),
        ({"constraints__batch_size": 2**32 - 1}, "batch_size must be at most 4096"),
        ({"constraints__batch_size": 0}, "batch_size must be positive"),
        ({"constraints__resolution": 7}, "resolution must be 16-2048 pixels"),
        ({"latency_reports": [{"arch": "../../x", "measured_ms": 1.0}]}, "arch string"),
        (
            {"latency_reports": [{"arch": "r32", "measured_ms": 1.0}] * 257},
            "holds 257 reports; at most 256",
        ),
    ],
)
def test_bad_fields_are_named(override, message):
    with pytest.raises(InvalidArgumentError, match="profile 'board'") as info:
        HardwareProfile.from_dict(profile_dict(**override))
    assert message in str(info.value)


def test_missing_field_is_named():
    data = profile_dict()
    del data["constraints"]
    with pytest.raises(InvalidArgumentError, match="missing field 'constraints'"):
        HardwareProfile.from_dict(data)


def test_latency_table_must_be_complete():
    bad = table_dict()
    del bad["layers"]
    with pytest.raises(InvalidArgumentError, match="latency table is incomplete"):
        HardwareProfile.from_dict(profile_dict(latency_table=bad))
    with pytest.raises(InvalidArgumentError, match="format"):
        HardwareProfile.from_dict(profile_dict(latency_table={**table_dict(), "format": "x"}))


def test_parse_bytes_units():
    assert parse_bytes("1KiB", "f") == 1024
    assert parse_bytes("1.5 MB", "f") == 1_500_000
    assert parse_bytes(7, "f") == 7
    with pytest.raises(InvalidArgumentError, match="f must be a byte count"):
        parse_bytes(True, "f")


def test_profile_files_yaml_json_and_relative_table(tmp_path):
    (tmp_path / "lut.json").write_text(json.dumps(table_dict()))
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(profile_dict(latency_table="lut.json")))
    (tmp_path / "p.json").write_text(json.dumps(profile_dict()))
    from_yaml = load_profile(tmp_path / "p.yaml")
    assert isinstance(from_yaml.latency_table, LatencyTable)
    assert load_profile(tmp_path / "p.json").latency_table is None


def test_profile_file_errors_name_the_file(tmp_path):
    with pytest.raises(NotFoundError, match="does not exist"):
        load_profile(tmp_path / "missing.yaml")
    (tmp_path / "broken.yaml").write_text("name: board\ncpu: [unclosed\n  cores: 4\n")
    with pytest.raises(InvalidArgumentError, match=r"broken\.yaml:3:8: not valid YAML: while"):
        load_profile(tmp_path / "broken.yaml")
    (tmp_path / "broken.json").write_text('{"name": "board",\n "cpu": }')
    with pytest.raises(InvalidArgumentError, match=r"broken\.json:2:9: not valid JSON"):
        load_profile(tmp_path / "broken.json")
    (tmp_path / "zero.yaml").write_text(
        yaml.safe_dump(profile_dict(constraints__latency_budget_ms=0))
    )
    with pytest.raises(InvalidArgumentError, match=r"zero\.yaml: profile 'board'"):
        load_profile(tmp_path / "zero.yaml")


def test_every_problem_of_a_profile_is_named_at_once_in_plain_words():
    data = profile_dict()
    del data["storage_bytes"], data["constraints"]["latency_budget_ms"]
    data["cpu"]["colour"] = "red"
    data["ram_bytes"] = -1
    with pytest.raises(InvalidArgumentError) as caught:
        HardwareProfile.from_dict(data)
    message = str(caught.value)
    assert message.startswith("profile 'board': 4 problems: (1) missing field 'storage_bytes'")
    assert "(2) cpu: unknown fields ['colour']" in message
    assert "(3) constraints: missing field 'latency_budget_ms'" in message
    assert "(4) ram_bytes" in message
    assert "__init__" not in message and "positional" not in message


@pytest.mark.parametrize("path", sorted(PROFILES.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_example_profiles_are_valid_and_sourced(path):
    profile = load_profile(path)
    assert profile.name == path.stem
    text = path.read_text()
    assert "Sources" in text and "#" in text.splitlines()[0]


def test_three_example_profiles_ship():
    assert len(list(PROFILES.glob("*.yaml"))) == 3
