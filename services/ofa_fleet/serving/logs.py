"""Structured logs: one JSON object a line on stderr, fields instead of prose.

Log collectors (Loki, Cloud Logging, `jq`) read these without parsing English. Nothing
here ever logs metadata or request bodies, which is where tokens travel.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class ClientGoneFilter(logging.Filter):
    """gRPC logs an ERROR with a traceback when a write fails because the client went away
    mid-stream (`ExecuteBatchError`). A client's disconnect is not the server's fault and
    any client can cause it at will, so it becomes one info line with no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        kind = record.exc_info[0] if record.exc_info else None
        if kind is None or kind.__name__ != "ExecuteBatchError":
            return True
        if not record.name.startswith("grpc"):
            return True
        record.msg, record.args = f"client went away mid-call ({record.getMessage()})", None
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.INFO, "INFO"
        return logging.getLogger().isEnabledFor(logging.INFO)


def configure_logging(level: str = "info") -> None:
    """Route the project's and gRPC's Python loggers to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ClientGoneFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
