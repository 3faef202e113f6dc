"""`ofa-fleet supernet import`: start from a supernet someone else trained.

MIT's once-for-all supernets cost about 1,200 GPU-hours of ImageNet training; importing
one gives every subnet of the `mobilenet-v3-imagenet` space (at its published width)
without that. Nothing is downloaded: the user brings the file.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ofa_fleet.cli.common_flags import add_json_flag
from ofa_fleet.errors import CheckpointError, InvalidArgumentError, NotFoundError

MAX_CLASS_NAME = 200


def add_commands(sub: argparse._SubParsersAction) -> None:
    supernet = sub.add_parser("supernet", help="supernets trained elsewhere")
    actions = supernet.add_subparsers(dest="action", required=True)
    imported = actions.add_parser(
        "import", help="MIT's once-for-all OFAMobileNetV3 (.pth) as our checkpoint"
    )
    imported.add_argument(
        "--from-ofa",
        required=True,
        type=Path,
        metavar="FILE.pth",
        help="OFAMobileNetV3's state dict as the `ofa` package saves it (plain or under "
        "'state_dict'), e.g. ofa_mbv3_d234_e346_k357_w1.0",
    )
    imported.add_argument("--out", required=True, type=Path, help="checkpoint to write")
    imported.add_argument(
        "--width",
        type=float,
        choices=(1.0, 1.2),
        help="the width the file must have (default: whichever it has)",
    )
    imported.add_argument(
        "--classes",
        type=Path,
        help="the classifier's class names, one per line in its order (default: class-0000 ...)",
    )
    imported.add_argument("--force", action="store_true", help="replace an existing --out")
    add_json_flag(imported)
    imported.set_defaults(handler=run_import)


def run_import(args: argparse.Namespace) -> dict[str, Any]:
    from ofa_fleet.core.ofa_import import import_ofa_mobilenet_v3, read_ofa_file, save_imported

    if args.out.exists() and not args.force:
        raise CheckpointError(f"{args.out} exists; pass --force to replace it")
    classes = _class_names(args.classes) if args.classes else None
    state, sha256 = read_ofa_file(args.from_ofa)
    imported = import_ofa_mobilenet_v3(state, args.width)
    version = save_imported(imported, args.out, args.from_ofa, sha256, classes)
    space = imported.supernet.space
    return {
        "out": str(args.out),
        "supernet_version": version,
        "source_sha256": sha256,
        "width": imported.width_mult,
        "classes": imported.num_classes,
        "resolutions": list(space.resolutions),
        "space_fingerprint": space.fingerprint,
    }


def _class_names(path: Path) -> list[str]:
    if not path.is_file():
        raise NotFoundError(f"--classes {path} does not exist")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    for number, name in enumerate(names, 1):
        if len(name) > MAX_CLASS_NAME:
            raise InvalidArgumentError(
                f"--classes {path} line {number} is {len(name)} characters; at most "
                f"{MAX_CLASS_NAME}"
            )
    return names
