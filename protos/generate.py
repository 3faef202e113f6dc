"""Generate the Python modules of the contract from the .proto files in this folder.

Run `make protos` (or `python protos/generate.py`) after editing a .proto file and commit
the result; the generated modules under `services/ofa_fleet/v1/` are never edited by hand.
`--out DIR` writes under DIR instead, which is how the test that catches stale modules
compares them. The grpcio-tools version is pinned in pyproject.toml because its output,
and the runtime versions it demands, change between releases.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from grpc_tools import protoc

PROTOS = Path(__file__).resolve().parent
SERVICES = PROTOS.parent / "services"
PACKAGE = Path("ofa_fleet") / "v1"
# googleapis protos the contract imports; their Python modules come from the installed
# googleapis-common-protos, so nothing is generated for them.
THIRD_PARTY = PROTOS / "third_party"


def proto_files(root: Path | None = None) -> list[Path]:
    return sorted(((root or PROTOS) / PACKAGE).glob("*.proto"))


def generate(out: Path, root: Path | None = None) -> list[Path]:
    """Write `*_pb2.py`, `*_pb2.pyi` and `*_pb2_grpc.py` for every proto under `out`."""
    root = root or PROTOS
    out.mkdir(parents=True, exist_ok=True)
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{root}",
        f"-I{THIRD_PARTY}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *(str(p.relative_to(root)) for p in proto_files(root)),
    ]
    cwd = Path.cwd()
    os.chdir(root)
    try:
        code = protoc.main(args)
    finally:
        os.chdir(cwd)
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")
    return sorted((out / PACKAGE).glob("*_pb2*.py*"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=SERVICES, help="root to write under")
    args = parser.parse_args()
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
