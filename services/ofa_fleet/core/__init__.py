"""The OFA core: search space, elastic supernet, its checkpoint file, extraction and export.

The public surface other packages use; the modules behind it hold one concept each. Names
are loaded on first use: the space and arch modules are pure Python, and importing them
(as the registry and the command line do) must not pay for torch. The `complexity`
function is not re-exported: its name is also its module's.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ofa_fleet.core.arch import ArchConfig, BlockChoice, validate
    from ofa_fleet.core.bn_calibration import recalibrate_batchnorm
    from ofa_fleet.core.complexity import Complexity
    from ofa_fleet.core.export import ExportedModel, ModelMetadata, export_onnx, read_metadata
    from ofa_fleet.core.extract import extract
    from ofa_fleet.core.space import (
        SearchSpace,
        StageSpec,
        cpu_space,
        mobilenet_v3_imagenet_space,
    )
    from ofa_fleet.core.supernet import OFASupernet

_MODULES = {
    "ArchConfig": "arch",
    "BlockChoice": "arch",
    "validate": "arch",
    "recalibrate_batchnorm": "bn_calibration",
    "Complexity": "complexity",
    "ExportedModel": "export",
    "ModelMetadata": "export",
    "export_onnx": "export",
    "read_metadata": "export",
    "extract": "extract",
    "SearchSpace": "space",
    "StageSpec": "space",
    "cpu_space": "space",
    "mobilenet_v3_imagenet_space": "space",
    "OFASupernet": "supernet",
}

__all__ = [
    "ArchConfig",
    "BlockChoice",
    "Complexity",
    "ExportedModel",
    "ModelMetadata",
    "OFASupernet",
    "SearchSpace",
    "StageSpec",
    "cpu_space",
    "export_onnx",
    "extract",
    "mobilenet_v3_imagenet_space",
    "read_metadata",
    "recalibrate_batchnorm",
    "validate",
]


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'ofa_fleet.core' has no attribute {name!r}")
    return getattr(importlib.import_module(f"ofa_fleet.core.{module}"), name)
