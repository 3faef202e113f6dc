"""The OFA core: search space, elastic supernet, extraction and export (no services inside).

The public surface other packages use; the modules behind it hold one concept each.
"""

from __future__ import annotations

from ofa_fleet.core.arch import ArchConfig, BlockChoice, validate
from ofa_fleet.core.bn_calibration import recalibrate_batchnorm
from ofa_fleet.core.complexity import Complexity, complexity
from ofa_fleet.core.export import ExportedModel, ModelMetadata, export_onnx, read_metadata
from ofa_fleet.core.extract import extract
from ofa_fleet.core.space import SearchSpace, StageSpec, cpu_space, mobilenet_v3_imagenet_space
from ofa_fleet.core.supernet import OFASupernet

__all__ = [
    "ArchConfig",
    "BlockChoice",
    "Complexity",
    "ExportedModel",
    "ModelMetadata",
    "OFASupernet",
    "SearchSpace",
    "StageSpec",
    "complexity",
    "cpu_space",
    "export_onnx",
    "extract",
    "mobilenet_v3_imagenet_space",
    "read_metadata",
    "recalibrate_batchnorm",
    "validate",
]
