"""Named contexts for client commands, as kubeconfig has: where the services are, which
TLS files and which operator token file to use, chosen once instead of on every line.

The file is ``$OFA_FLEET_CONFIG``, else ``$XDG_CONFIG_HOME/ofa-fleet/config.yaml``
(``~/.config/...``); it is written with mode 0600, since it names the token's file:

    current_context: lab
    contexts:
      lab:
        registry: 10.0.0.5:50051
        delivery: 10.0.0.5:50053
        tls_ca: /etc/ofa-fleet/ca.pem
        operator_token_file: /etc/ofa-fleet/operator-token

A value comes from the command's flag, else its environment variable
(``OFA_FLEET_REGISTRY`` ...), else the context (``$OFA_FLEET_CONTEXT``, else
``current_context``), else the built-in default. Servers ignore contexts: they are
configured by their own flags.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from ofa_fleet.errors import InvalidArgumentError, NotFoundError
from ofa_fleet.storage.durable import write_atomic

CONFIG_ENV = "OFA_FLEET_CONFIG"
CONTEXT_ENV = "OFA_FLEET_CONTEXT"
ADDRESSES = ("registry", "search", "delivery")
FILES = ("tls_ca", "tls_cert", "tls_key", "operator_token_file")
FIELDS = ADDRESSES + FILES
MAX_CONTEXTS = 256
MAX_VALUE_CHARS = 4096


def config_path() -> Path:
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ofa-fleet" / "config.yaml"


def read_config(path: Path | None = None) -> dict[str, Any]:
    """The config file's content, checked; an empty config where there is no file."""
    path = path or config_path()
    if not path.is_file():
        return {"current_context": "", "contexts": {}}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise InvalidArgumentError(f"{path} is not valid YAML: {error}") from None
    return _checked(data, path)


_read: dict[tuple[str, int, int, str], dict[str, str]] = {}  # see active_context


def active_context() -> dict[str, str]:
    """The chosen context's values ({} without a config file or a chosen context).

    Every client command's parser asks for it (each address and TLS flag takes its
    default from it), so the file is read once per version of it and choice of context,
    not once per flag."""
    path = config_path()
    try:
        stat = path.stat()
        version = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        version = (-1, -1)
    key = (str(path), *version, os.environ.get(CONTEXT_ENV, ""))
    if key not in _read:
        _read.clear()
        _read[key] = _active_context()
    return dict(_read[key])


def _active_context() -> dict[str, str]:
    config = read_config()
    name = os.environ.get(CONTEXT_ENV) or config["current_context"]
    if not name:
        return {}
    contexts: dict[str, dict[str, str]] = config["contexts"]
    if name not in contexts:
        source = CONTEXT_ENV if os.environ.get(CONTEXT_ENV) else "current_context"
        raise NotFoundError(
            f"context {name!r} ({source}) is not in {config_path()}; it has "
            f"{sorted(contexts) or 'none'} (ofa-fleet config get-contexts)"
        )
    return contexts[name]


def write_config(config: dict[str, Any], path: Path | None = None) -> Path:
    path = path or config_path()
    _checked(config, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, yaml.safe_dump(config, sort_keys=True).encode(), mode=0o600)
    return path


def _checked(data: object, path: Path) -> dict[str, Any]:
    if not isinstance(data, dict) or set(data) - {"current_context", "contexts"}:
        raise InvalidArgumentError(
            f"{path}: a config holds current_context and contexts, nothing else"
        )
    current = data.get("current_context") or ""
    contexts = data.get("contexts") or {}
    if not isinstance(current, str) or not isinstance(contexts, dict):
        raise InvalidArgumentError(f"{path}: current_context is a name, contexts a mapping of them")
    if len(contexts) > MAX_CONTEXTS:
        raise InvalidArgumentError(f"{path}: {len(contexts)} contexts; at most {MAX_CONTEXTS}")
    for name, values in contexts.items():
        if not isinstance(name, str) or not isinstance(values, dict):
            raise InvalidArgumentError(f"{path}: context {name!r} must map fields to values")
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            raise InvalidArgumentError(
                f"{path}: context {name!r} has unknown fields {unknown}; allowed: {list(FIELDS)}"
            )
        for key, value in values.items():
            if not isinstance(value, str) or not 0 < len(value) <= MAX_VALUE_CHARS:
                raise InvalidArgumentError(
                    f"{path}: context {name!r}: {key} must be a non-empty string"
                )
    return {"current_context": current, "contexts": contexts}
