"""The operator token: from a file (a mounted Kubernetes Secret) or the environment.

A flag beats the environment, as everywhere in the project. The token itself is never
printed; errors say where it was looked for.
"""

from __future__ import annotations

import os
from pathlib import Path

from ofa_fleet.errors import InvalidArgumentError, NotFoundError

OPERATOR_TOKEN_ENV = "OFA_FLEET_OPERATOR_TOKEN"
MIN_TOKEN_LENGTH = 16


def load_operator_token(file: Path | None) -> str:
    if file is not None:
        if not file.is_file():
            raise NotFoundError(f"--operator-token-file {file} does not exist")
        token = file.read_text().strip()
        source = f"--operator-token-file {file}"
    else:
        token = os.environ.get(OPERATOR_TOKEN_ENV, "").strip()
        source = OPERATOR_TOKEN_ENV
        if not token:
            raise InvalidArgumentError(
                f"no operator token: set {OPERATOR_TOKEN_ENV} or pass --operator-token-file"
            )
    if len(token) < MIN_TOKEN_LENGTH or any(not c.isprintable() or c.isspace() for c in token):
        raise InvalidArgumentError(
            f"the operator token in {source} must be at least {MIN_TOKEN_LENGTH} printable "
            "characters without spaces (e.g. `openssl rand -hex 32`)"
        )
    return token
