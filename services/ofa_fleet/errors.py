"""One hierarchy of domain errors for the whole project.

Every layer raises these; the CLI prints their message as one line and the gRPC layer
(later) maps each class to one status code in one place. A message must say what was
wrong and what would be accepted, so that a person can act on it without a traceback.
"""

from __future__ import annotations


class OfaFleetError(Exception):
    """Base of every error a user can cause and fix."""


class InvalidArgumentError(OfaFleetError, ValueError):
    """A value given by the caller is malformed or outside what is allowed."""


class InvalidArchError(InvalidArgumentError):
    """An architecture config does not belong to the search space."""


class NotFoundError(OfaFleetError):
    """A named file, record or object does not exist."""


class DataError(OfaFleetError):
    """A dataset is missing, empty or holds a file that cannot be read."""


class CheckpointError(OfaFleetError):
    """A checkpoint is missing, corrupt or belongs to another search space."""


class ExportError(OfaFleetError):
    """An exported model failed its checks (ONNX checker or runtime parity)."""
