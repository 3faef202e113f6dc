"""`python -m ofa_fleet.cli.core_main train|eval|export`: the OFA core alone.

For a machine that has torch, onnx and onnxruntime but none of the services'
dependencies (Ray, gRPC, a database): a GPU box or a notebook training a supernet from the
source tree with ``PYTHONPATH=services``. The commands and their flags are `ofa-fleet`'s
own; ``train --workers`` still needs Ray.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ofa_fleet.cli import core_commands
from ofa_fleet.cli.entry import OneLineParser, run


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="ofa-fleet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    core_commands.add_commands(sub)
    return run(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
