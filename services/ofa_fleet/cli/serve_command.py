"""`ofa-fleet serve registry`: run a service until SIGTERM.

Flags beat environment variables (OFA_FLEET_REGISTRY_DB, OFA_FLEET_OPERATOR_TOKEN), which
beat the built-in defaults. Logs are JSON lines on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ofa_fleet.cli.common_flags import add_log_level_flag
from ofa_fleet.cli.migrate_command import MIGRATE
from ofa_fleet.cli.search_commands import add_search_flags
from ofa_fleet.contract.heartbeat import (
    DEFAULT_HEARTBEAT_SECONDS,
    MAX_HEARTBEAT_SECONDS,
    MIN_HEARTBEAT_SECONDS,
    check_heartbeat_seconds,
)
from ofa_fleet.delivery.serve.chunking import CHUNK_BYTES
from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.registry.retention import DEFAULT_RETENTION_SECONDS, check_retention_seconds
from ofa_fleet.serving.access import OperatorAuthenticator
from ofa_fleet.serving.credentials import load_operator_token
from ofa_fleet.serving.logs import configure_logging
from ofa_fleet.serving.metrics_endpoint import MetricsEndpoint
from ofa_fleet.serving.ports import DELIVERY_PORT, REGISTRY_PORT, SEARCH_PORT
from ofa_fleet.serving.server import (
    DEFAULT_MAX_CONNECTION_AGE_GRACE_SECONDS,
    DEFAULT_MAX_CONNECTION_AGE_SECONDS,
    Server,
    ServerConfig,
)
from ofa_fleet.serving.tls import TlsFiles

if TYPE_CHECKING:
    from ofa_fleet.search.specializer import Specializer
    from ofa_fleet.storage.database import Database, DatabaseUrl

DEFAULT_DELIVERY_DB = "sqlite:///ofa-fleet-delivery.db"
DEFAULT_BLOBS = "ofa-fleet-models"
DEFAULT_SIGNING_KEY = "ofa-fleet-signing.key"
DEFAULT_REGISTRY_DB = "sqlite:///ofa-fleet-registry.db"


def add_command(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="run an OFA Fleet service")
    services = serve.add_subparsers(dest="service", required=True, parser_class=type(serve))
    registry = services.add_parser("registry", help="profiles, fleets and devices")
    registry.add_argument(
        "--db",
        default=os.environ.get("OFA_FLEET_REGISTRY_DB", DEFAULT_REGISTRY_DB),
        help="sqlite:///PATH or postgresql://USER@HOST:PORT/DB (env OFA_FLEET_REGISTRY_DB)",
    )
    add_migrations_flag(registry, "registry")
    registry.add_argument(
        "--heartbeat-seconds",
        type=float,
        default=DEFAULT_HEARTBEAT_SECONDS,
        help="how often devices are told to heartbeat "
        f"({MIN_HEARTBEAT_SECONDS:g} to {MAX_HEARTBEAT_SECONDS:g}; default "
        f"{DEFAULT_HEARTBEAT_SECONDS:g})",
    )
    registry.add_argument(
        "--change-retention-hours",
        type=float,
        default=DEFAULT_RETENTION_SECONDS / 3600,
        help="how long WatchChanges' feed holds a change; a watcher further behind is told "
        f"CURSOR_EXPIRED (default {DEFAULT_RETENTION_SECONDS / 3600:g})",
    )
    add_server_flags(registry, REGISTRY_PORT)
    registry.set_defaults(handler=run_registry)

    search = services.add_parser("search", help="specialize subnets for hardware profiles")
    search.add_argument(
        "--checkpoint",
        type=Path,
        default=os.environ.get("OFA_FLEET_CHECKPOINT"),
        required="OFA_FLEET_CHECKPOINT" not in os.environ,
        help="supernet checkpoint (env OFA_FLEET_CHECKPOINT)",
    )
    search.add_argument(
        "--predictor", type=Path, help="accuracy predictor (default: CKPT.predictor, fitted once)"
    )
    search.add_argument("--data", help="data for re-ranking (default: the checkpoint's)")
    add_search_flags(search)
    search.add_argument(
        "--registry",
        default=os.environ.get("OFA_FLEET_REGISTRY"),
        help="registry to look profile_name up in (env OFA_FLEET_REGISTRY); else inline only",
    )
    search.add_argument("--registry-tls-ca", type=Path, help="PEM CA of the registry's cert")
    search.add_argument("--concurrency", type=int, default=8, help="specializations run at once")
    search.add_argument(
        "--detached-grace-seconds",
        type=float,
        default=60.0,
        help="how long a search runs on after its last caller went, for a caller that "
        "lost its stream (a delivery replica that failed over) to ask again and join it; "
        "0 stops it at once (0-3600)",
    )
    # A Specialize stream may run delivery's whole 600 s deadline: never cut it short.
    add_server_flags(search, SEARCH_PORT, age_grace_seconds=SPECIALIZE_STREAM_GRACE_SECONDS)
    search.set_defaults(handler=run_search)

    delivery = services.add_parser("delivery", help="models to devices, and the reconciler")
    delivery.add_argument(
        "--db",
        default=os.environ.get("OFA_FLEET_DELIVERY_DB", DEFAULT_DELIVERY_DB),
        help="sqlite:///PATH or postgresql://... (env OFA_FLEET_DELIVERY_DB)",
    )
    add_migrations_flag(delivery, "delivery")
    delivery.add_argument(
        "--blobs",
        default=os.environ.get("OFA_FLEET_DELIVERY_BLOBS", DEFAULT_BLOBS),
        help="folder for model files (one replica, or a shared volume), or 'database' to "
        "keep them in --db (several replicas without a shared volume)",
    )
    delivery.add_argument(
        "--signing-key",
        type=Path,
        default=Path(os.environ.get("OFA_FLEET_SIGNING_KEY", DEFAULT_SIGNING_KEY)),
        help="Ed25519 key that signs manifests; created (mode 0600) when missing",
    )
    delivery.add_argument(
        "--retired-signing-key",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="a key that signed before a rotation (repeat, at most 8): it endorses "
        "--signing-key for devices that trust it, and stored models it signed are signed "
        "again with --signing-key at start (deploy/README.md, 'Rotating the signing key')",
    )
    delivery.add_argument(
        "--registry",
        default=os.environ.get("OFA_FLEET_REGISTRY", "127.0.0.1:50051"),
        help="registry address (env OFA_FLEET_REGISTRY)",
    )
    delivery.add_argument(
        "--search",
        default=os.environ.get("OFA_FLEET_SEARCH"),
        help="search address (env OFA_FLEET_SEARCH); runs the reconciler. Without it this "
        "replica only serves what the store holds",
    )
    delivery.add_argument("--upstream-tls-ca", type=Path, help="PEM CA of registry and search")
    delivery.add_argument(
        "--chunk-bytes",
        type=int,
        default=CHUNK_BYTES,
        help=f"bytes per ReadModel message (default {CHUNK_BYTES}; see delivery/chunking.py)",
    )
    delivery.add_argument(
        "--reconcile-concurrency",
        type=int,
        default=2,
        help="profiles specialized at once (default 2)",
    )
    delivery.add_argument(
        "--model-url",
        action="append",
        default=[],
        metavar="URL",
        help="an http(s) URL with {sha256} where the same model bytes are served (a cache, "
        "an object store, a CDN); named in every manifest, tried by devices first; up to 4",
    )
    add_server_flags(delivery, DELIVERY_PORT)
    delivery.set_defaults(handler=run_delivery)


SPECIALIZE_STREAM_GRACE_SECONDS = 660.0


def add_server_flags(
    parser: argparse.ArgumentParser,
    port: int,
    age_grace_seconds: float = DEFAULT_MAX_CONNECTION_AGE_GRACE_SECONDS,
) -> None:
    """The flags every server takes; ``age_grace_seconds``: how long the service's own
    streams may run on a connection past its age (search's last a whole specialization)."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=port, help="0 picks a free port")
    parser.add_argument("--tls-cert", type=Path, help="PEM certificate (enables TLS)")
    parser.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    parser.add_argument(
        "--tls-client-ca", type=Path, help="PEM CA; clients must present a cert it signed"
    )
    parser.add_argument(
        "--allow-plaintext",
        action="store_true",
        help="listen without TLS on a non-loopback address (a mesh or proxy encrypts)",
    )
    parser.add_argument(
        "--plaintext-port",
        type=int,
        help="beside a TLS --port, also listen in plaintext here (callers inside the "
        "cluster, gRPC probes; needs --allow-plaintext off loopback); 0 picks a free port",
    )
    parser.add_argument(
        "--operator-token-file", type=Path, help="file holding the operator token (else env)"
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=os.environ.get("OFA_FLEET_METRICS_PORT") or None,  # argparse applies type
        help="serve Prometheus /metrics on this port of --host (0: a free one; env "
        "OFA_FLEET_METRICS_PORT); none when absent",
    )
    parser.add_argument(
        "--grace-seconds",
        type=float,
        default=10.0,
        help="on SIGTERM, how long calls in flight may finish (default 10)",
    )
    parser.add_argument(
        "--max-connection-age-seconds",
        type=float,
        default=DEFAULT_MAX_CONNECTION_AGE_SECONDS,
        help="close each client connection after about this long, so long-lived streams "
        "spread over replicas started since (0: never; default "
        f"{DEFAULT_MAX_CONNECTION_AGE_SECONDS:g})",
    )
    parser.add_argument(
        "--max-connection-age-grace-seconds",
        type=float,
        default=age_grace_seconds,
        help="then how long its open streams may go on before they are ended (clients "
        f"reconnect; default {age_grace_seconds:g})",
    )
    add_log_level_flag(parser, "info", "debug", "info", "warning")


def server_config(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(
        host=args.host,
        port=args.port,
        tls=TlsFiles(cert=args.tls_cert, key=args.tls_key, ca=args.tls_client_ca),
        allow_plaintext=args.allow_plaintext,
        grace_seconds=args.grace_seconds,
        max_connection_age_seconds=args.max_connection_age_seconds,
        max_connection_age_grace_seconds=args.max_connection_age_grace_seconds,
        metrics_port=args.metrics_port,
        plaintext_port=args.plaintext_port,
    )


def add_migrations_flag(parser: argparse.ArgumentParser, service: str) -> None:
    parser.add_argument(
        "--migrations",
        choices=("apply", "check"),
        default="apply",
        help="apply: bring the schema to this build at start (the user needs DDL rights); "
        f"check: refuse to start unless `ofa-fleet migrate {service}` has (the Helm chart's "
        "way: its migration Job has the rights, the servers need none)",
    )


def prepare_schema(database: Database, how: str, service: str) -> None:
    """Migrate, or check that the schema is this build's (see `--migrations`)."""
    if how == "apply":
        database.migrate()
    else:
        database.check_migrated(MIGRATE.format(service=service))


def run_registry(args: argparse.Namespace) -> None:
    from ofa_fleet.storage.database import DatabaseUrl

    heartbeat_seconds = check_heartbeat_seconds(args.heartbeat_seconds)
    retention_seconds = check_retention_seconds(args.change_retention_hours * 3600)
    config = server_config(args)
    token = load_operator_token(args.operator_token_file)
    url = DatabaseUrl.parse(args.db)
    configure_logging(args.log_level)
    asyncio.run(
        _serve_registry(config, url, token, heartbeat_seconds, retention_seconds, args.migrations)
    )


async def _serve_registry(
    config: ServerConfig,
    url: DatabaseUrl,
    token: str,
    heartbeat_seconds: float,
    retention_seconds: float,
    migrations: str = "apply",
) -> None:
    from ofa_fleet.registry.migrations import REGISTRY_MIGRATIONS
    from ofa_fleet.registry.service import registry_authenticator, registry_service
    from ofa_fleet.storage.database import Database

    database = Database(url, REGISTRY_MIGRATIONS)
    try:
        await asyncio.to_thread(prepare_schema, database, migrations, "registry")
        metrics = MetricsEndpoint.create()
        registry = registry_service(
            database,
            metrics=metrics.registry,
            heartbeat_seconds=heartbeat_seconds,
            change_retention_seconds=retention_seconds,
        )
        authenticator = registry_authenticator(token, registry)
        server = Server(config, [registry.service], authenticator, metrics)
        await server.start()
        await server.wait()
    finally:
        database.close()


def run_search(args: argparse.Namespace) -> None:
    if args.concurrency <= 0:
        raise InvalidArgumentError("--concurrency must be positive")
    if not 0 <= args.detached_grace_seconds <= 3600:
        raise InvalidArgumentError(
            f"--detached-grace-seconds must be 0-3600, got {args.detached_grace_seconds:g}"
        )
    if args.workers is not None and args.workers <= 0:
        raise InvalidArgumentError("--workers must be positive")
    config = server_config(args)
    token = load_operator_token(args.operator_token_file)
    configure_logging(args.log_level)
    from ofa_fleet.search.ray_runtime import start_ray, stop_ray
    from ofa_fleet.search.service import load_specializer

    start_ray(args.ray_address)
    try:
        specializer = load_specializer(args.checkpoint, args.predictor, args.data, args.workers)
        asyncio.run(_serve_search(args, config, token, specializer))
    finally:
        stop_ray()


async def _serve_search(
    args: argparse.Namespace, config: ServerConfig, token: str, specializer: Specializer
) -> None:
    from ofa_fleet.search.service import registry_lookup, search_service

    lookup = None
    if args.registry:
        lookup = registry_lookup(args.registry, token, TlsFiles(ca=args.registry_tls_ca))
    metrics = MetricsEndpoint.create()
    search = search_service(
        specializer, lookup, args.concurrency, metrics.registry, args.detached_grace_seconds
    )
    server = Server(
        config, [search.service, search.operations], OperatorAuthenticator(token), metrics
    )
    await server.start()
    await server.wait()


def run_delivery(args: argparse.Namespace) -> None:
    if not 1024 <= args.chunk_bytes <= 4 * 1024 * 1024:
        raise InvalidArgumentError("--chunk-bytes must be 1024 to 4194304")
    if args.reconcile_concurrency <= 0:
        raise InvalidArgumentError("--reconcile-concurrency must be positive")
    from ofa_fleet.delivery.serve.model_urls import ModelUrls
    from ofa_fleet.storage.database import DatabaseUrl

    args.model_urls = ModelUrls(tuple(args.model_url))  # checked before anything starts

    config = server_config(args)
    token = load_operator_token(args.operator_token_file)
    url = DatabaseUrl.parse(args.db)
    configure_logging(args.log_level)
    asyncio.run(_serve_delivery(args, config, url, token))


async def _serve_delivery(
    args: argparse.Namespace, config: ServerConfig, url: DatabaseUrl, token: str
) -> None:
    from ofa_fleet.delivery.key_rotation import sign_with_current_key
    from ofa_fleet.delivery.migrations import DELIVERY_MIGRATIONS
    from ofa_fleet.delivery.reconcile.leader import RECONCILER_LOCK_KEY, reconcile_as_leader
    from ofa_fleet.delivery.reconcile.reconciler import ReconcilerSettings
    from ofa_fleet.delivery.service import delivery_service
    from ofa_fleet.delivery.signing import ModelSigner
    from ofa_fleet.delivery.store.blobs import BlobStore, DatabaseBlobStore, FileBlobStore
    from ofa_fleet.delivery.store.model_store import ModelStore
    from ofa_fleet.storage.database import Database
    from ofa_fleet.storage.leadership import leader_lock

    signer = ModelSigner.load_or_create(args.signing_key, args.retired_signing_key)
    database = Database(url, DELIVERY_MIGRATIONS)
    try:
        await asyncio.to_thread(prepare_schema, database, args.migrations, "delivery")
        blobs: BlobStore
        if args.blobs == "database":
            blobs = DatabaseBlobStore(database)
        else:
            files = FileBlobStore(Path(args.blobs))
            files.remove_stale_temporaries()
            blobs = files
        store = ModelStore(database, blobs)
        await asyncio.to_thread(sign_with_current_key, store, signer)
        upstream = TlsFiles(ca=args.upstream_tls_ca)
        metrics = MetricsEndpoint.create()
        delivery = delivery_service(
            store,
            signer,
            args.registry,
            token,
            registry_tls=upstream,
            chunk_bytes=args.chunk_bytes,
            search_address=args.search,
            search_tls=upstream,
            settings=ReconcilerSettings(concurrency=args.reconcile_concurrency),
            metrics=metrics.registry,
            model_urls=args.model_urls,
        )
        server = Server(
            config, [delivery.service, delivery.operations], delivery.authenticator, metrics
        )
        await server.start()
        reconciling = None
        if delivery.reconciler is not None:
            lock = leader_lock(database, RECONCILER_LOCK_KEY)
            reconciling = asyncio.create_task(reconcile_as_leader(lock, delivery.reconciler))
            # A lost lock ends the server, and `reconciling`'s error ends the command.
            reconciling.add_done_callback(lambda _: asyncio.create_task(server.stop()))
        await server.wait()
        if reconciling is not None:
            reconciling.cancel()  # standing by, or already stopped by `server.stop`
            with contextlib.suppress(asyncio.CancelledError):
                await reconciling
    finally:
        database.close()
