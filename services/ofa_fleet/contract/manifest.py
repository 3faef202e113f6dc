"""The manifest: what a device is told about a model before its first byte arrives.

Delivery signs the manifest's canonical bytes, and the device checks that signature and
the model's sha256 before installing: the sha256 proves the bytes are the ones described,
the signature proves delivery described them. Canonical means one spelling for one
content (sorted keys, no spaces, UTF-8), so signer and verifier agree byte for byte.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ofa_fleet.contract.fields import check_sha256
from ofa_fleet.errors import InvalidArgumentError

FORMAT = "ofa-fleet.manifest/1"


@dataclass(frozen=True)
class ModelFigures:
    """What delivery records about a model when it stores it, typed for those who read it.

    The manifest keeps them as a plain mapping, since that mapping is what is signed: a
    manifest written by another version, with other keys or fewer, must verify byte for
    byte. Reading goes through here, so a missing or malformed figure is None rather than
    a `KeyError` or a wrong type far from where it was read.
    """

    predicted_latency_ms: float | None = None
    predicted_top1: float | None = None
    measured_top1: float | None = None
    latency_source: str = ""
    macs: int | None = None
    peak_memory_bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> ModelFigures:
        def number(name: str) -> float | None:
            value = data.get(name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            return float(value)

        def count(name: str) -> int | None:
            value = data.get(name)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        source = data.get("latency_source")
        return cls(
            predicted_latency_ms=number("predicted_latency_ms"),
            predicted_top1=number("predicted_top1"),
            measured_top1=number("measured_top1"),
            latency_source=source if isinstance(source, str) else "",
            macs=count("macs"),
            peak_memory_bytes=count("peak_memory_bytes"),
        )


@dataclass(frozen=True)
class Manifest:
    """One model file and where it came from.

    Attributes:
        sha256: hex digest of the ONNX bytes.
        size_bytes: length of the ONNX bytes.
        profile_name: the hardware profile it was specialized for.
        profile_revision: that profile's revision at the time (a newer one makes it stale).
        supernet_version: the supernet it was cut from (a newer one makes it stale).
        arch: canonical arch string.
        created_us: when delivery stored it, microseconds since the epoch.
        figures: predicted and measured figures, as signed (`model_figures` reads them).
    """

    sha256: str
    size_bytes: int
    profile_name: str
    profile_revision: int
    supernet_version: str
    arch: str
    created_us: int
    figures: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_sha256(self.sha256, "manifest sha256", required=True)
        if self.size_bytes <= 0:
            raise InvalidArgumentError("manifest size_bytes must be positive")
        if self.profile_revision < 1 or self.created_us < 0:
            raise InvalidArgumentError("manifest profile_revision must be >= 1, created_us >= 0")

    def model_figures(self) -> ModelFigures:
        return ModelFigures.from_mapping(self.figures)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}

    def canonical_bytes(self) -> bytes:
        """The exact bytes that are signed."""
        return json.dumps(
            self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InvalidArgumentError(f"not a model manifest ({FORMAT})")
        values = {k: v for k, v in data.items() if k != "format"}
        try:
            return cls(**values)
        except TypeError as exc:
            raise InvalidArgumentError(f"malformed manifest: {exc}") from exc

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        try:
            return cls.from_dict(json.loads(data))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidArgumentError(f"manifest is not JSON: {exc}") from exc
