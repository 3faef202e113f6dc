"""`ofa-fleet config ...`: the named contexts client commands connect with (`contexts`)."""

from __future__ import annotations

import argparse
from typing import Any

from ofa_fleet.cli.common_flags import add_json_flag
from ofa_fleet.client.contexts import FIELDS, config_path, read_config, write_config
from ofa_fleet.errors import InvalidArgumentError, NotFoundError


def add_commands(sub: argparse._SubParsersAction) -> None:
    config = sub.add_parser("config", help="named contexts: addresses, TLS and token files")
    actions = config.add_subparsers(dest="action", required=True, parser_class=type(config))
    listing = actions.add_parser("get-contexts", help="every context, the current one marked")
    add_json_flag(listing)
    listing.set_defaults(handler=_get_contexts)
    current = actions.add_parser("current-context", help="the context commands use now")
    add_json_flag(current)
    current.set_defaults(handler=_current_context)
    use = actions.add_parser("use-context", help="make a context the current one")
    use.add_argument("name", help="the context's name")
    add_json_flag(use)
    use.set_defaults(handler=_use_context)
    set_ = actions.add_parser(
        "set-context", help="create a context, or change the fields given of one"
    )
    set_.add_argument("name", help="the context's name")
    for field in FIELDS:
        set_.add_argument(
            f"--{field.replace('_', '-')}",
            dest=field,
            help=f"{field.replace('_', ' ')} for this context",
        )
    add_json_flag(set_)
    set_.set_defaults(handler=_set_context)
    delete = actions.add_parser("delete-context", help="remove a context")
    delete.add_argument("name", help="the context's name")
    add_json_flag(delete)
    delete.set_defaults(handler=_delete_context)


def _get_contexts(args: argparse.Namespace) -> dict[str, Any]:
    config = read_config()
    return {
        "config": str(config_path()),
        "current_context": config["current_context"],
        "contexts": config["contexts"],
    }


def _current_context(args: argparse.Namespace) -> dict[str, Any]:
    config = read_config()
    if not config["current_context"]:
        raise NotFoundError(f"no current context in {config_path()} (ofa-fleet config use-context)")
    return {"current_context": config["current_context"]}


def _use_context(args: argparse.Namespace) -> dict[str, Any]:
    config = read_config()
    if args.name not in config["contexts"]:
        raise NotFoundError(
            f"context {args.name!r} is not in {config_path()}; it has "
            f"{sorted(config['contexts']) or 'none'} (ofa-fleet config set-context)"
        )
    config["current_context"] = args.name
    return {"current_context": args.name, "config": str(write_config(config))}


def _set_context(args: argparse.Namespace) -> dict[str, Any]:
    _check_name(args.name)
    config = read_config()
    given = {field: getattr(args, field) for field in FIELDS if getattr(args, field)}
    context = {**config["contexts"].get(args.name, {}), **given}
    config["contexts"][args.name] = context
    return {"context": args.name, **context, "config": str(write_config(config))}


def _delete_context(args: argparse.Namespace) -> dict[str, Any]:
    config = read_config()
    if config["contexts"].pop(args.name, None) is None:
        raise NotFoundError(f"context {args.name!r} is not in {config_path()}")
    if config["current_context"] == args.name:
        config["current_context"] = ""
    return {"deleted": args.name, "config": str(write_config(config))}


def _check_name(name: str) -> None:
    if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name):
        raise InvalidArgumentError(
            f"context name {name[:64]!r} must be 1-64 letters, digits, '-', '_' or '.'"
        )
