"""The typed view of a manifest's figures, and the signed mapping it leaves untouched."""

from __future__ import annotations

from ofa_fleet.contract.manifest import Manifest, ModelFigures

FIGURES = {
    "predicted_latency_ms": 1.25,
    "predicted_top1": 0.91,
    "measured_top1": 0.9,
    "latency_source": "table",
    "macs": 4_450_000,
    "peak_memory_bytes": 65_536,
}


def manifest(figures: dict) -> Manifest:
    return Manifest("ab" * 32, 10, "pi", 1, "v1", "r32-...", 0, figures)


def test_the_figures_written_are_the_figures_read() -> None:
    figures = ModelFigures.from_mapping(FIGURES)
    assert figures.to_dict() == FIGURES
    assert manifest(figures.to_dict()).model_figures() == figures


def test_missing_or_malformed_figures_read_as_absent() -> None:
    figures = ModelFigures.from_mapping(
        {"predicted_latency_ms": "fast", "macs": 1.5, "measured_top1": True, "other": 1}
    )
    assert figures == ModelFigures()
    assert ModelFigures.from_mapping({"predicted_latency_ms": 2}).predicted_latency_ms == 2.0


def test_a_manifest_of_another_version_keeps_its_signed_bytes() -> None:
    """Reading the typed view never changes what was signed (other keys, ints for floats)."""
    other = {"predicted_latency_ms": 2, "energy_mj": 7}
    signed = manifest(other)
    again = Manifest.from_bytes(signed.canonical_bytes())
    assert again.canonical_bytes() == signed.canonical_bytes()
    assert again.model_figures().predicted_latency_ms == 2.0
    assert b'"predicted_latency_ms":2}' in again.canonical_bytes()
