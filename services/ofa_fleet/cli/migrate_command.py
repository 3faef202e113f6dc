"""`ofa-fleet migrate registry|delivery --db URL`: bring a service's schema to this build.

Servers migrate their own schema at start by default (`--migrations apply`), which needs
a database user with DDL rights at run time. Where that is not wanted (the Helm chart),
this command runs once with the migration credentials before the servers start, and the
servers run with `--migrations check`: they refuse a schema they do not know, and never
change one. Replicas and this command may run together: each service's migrations take
a PostgreSQL advisory lock.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from ofa_fleet.cli.common_flags import add_json_flag

ENVIRONMENT = {"registry": "OFA_FLEET_REGISTRY_DB", "delivery": "OFA_FLEET_DELIVERY_DB"}
# What a server that finds its schema behind tells its operator to run.
MIGRATE = "ofa-fleet migrate {service} --db URL"


def add_command(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("migrate", help="bring a service's database schema to this build")
    parser.add_argument("service", choices=sorted(ENVIRONMENT), help="whose schema")
    parser.add_argument(
        "--db",
        default=None,
        help="sqlite:///PATH or postgresql://... (env OFA_FLEET_REGISTRY_DB or "
        "OFA_FLEET_DELIVERY_DB); a user allowed to create and alter tables",
    )
    add_json_flag(parser)
    parser.set_defaults(handler=_migrate)


def migrations_for(service: str) -> Any:
    """The service's Alembic history (imported only when a command needs it)."""
    if service == "registry":
        from ofa_fleet.registry.migrations import REGISTRY_MIGRATIONS

        return REGISTRY_MIGRATIONS
    from ofa_fleet.delivery.migrations import DELIVERY_MIGRATIONS

    return DELIVERY_MIGRATIONS


def _migrate(args: argparse.Namespace) -> dict[str, Any]:
    from ofa_fleet.errors import InvalidArgumentError
    from ofa_fleet.storage.database import Database, DatabaseUrl

    text = args.db or os.environ.get(ENVIRONMENT[args.service], "")
    if not text:
        raise InvalidArgumentError(
            f"--db is required (or {ENVIRONMENT[args.service]}): the {args.service}'s database"
        )
    database = Database(DatabaseUrl.parse(text), migrations_for(args.service))
    try:
        before, head = database.revisions()
        database.migrate()
        after, _ = database.revisions()
    finally:
        database.close()
    return {
        "service": args.service,
        "database": database.url.redacted(),
        "from_revision": before or "",
        "to_revision": after or "",
        "head_revision": head,
    }
