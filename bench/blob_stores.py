"""Blob stores for delivery's models: put and get MB/s, and what the memory cache saves.

For each pairing a deployment may choose (SQLite or PostgreSQL for the records; files or
the database for the blobs), ``--count`` random blobs of ``--size-mb`` each are:

- ``put``: written through the `BlobStore` (files: temp file, fsync, rename, folder fsync;
  database: one transaction per blob), one after another;
- ``get``: read back cold through the `BlobStore`, sha256 verified, one after another;
- ``get x T``: the same with ``--threads`` threads at once (replica serving many devices
  whose cache is cold);
- ``add``: `ModelStore.add` (checks, blob, record, one transaction), models per second;
- ``cached``: `ModelStore.read_range` in 64 KiB chunks from the warm memory cache.

``sha256`` alone is printed as the cost of verifying on read. PostgreSQL is this machine's
server (127.0.0.1:5432, a schema of its own); files go to ``--dir`` (default: a temporary
folder under the system's temp dir, on whatever disk that is).

Run (under a minute)::

    .venv/bin/python bench/blob_stores.py [--count 30] [--size-mb 2] [--threads 8] [--json]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import hashlib
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ofa_fleet.delivery.migrations import DELIVERY_MIGRATIONS  # noqa: E402
from ofa_fleet.delivery.store.blobs import BlobStore, DatabaseBlobStore, FileBlobStore  # noqa: E402
from ofa_fleet.delivery.store.model_store import ModelStore  # noqa: E402
from ofa_fleet.storage.database import Database, DatabaseUrl  # noqa: E402
from tests.databases import postgres_schema  # noqa: E402
from tests.delivery.conftest import SIGNATURE, manifest_for  # noqa: E402

MB = 1_000_000
CHUNK = 64 * 1024
BACKENDS = [
    ("sqlite", "files"),
    ("sqlite", "database"),
    ("postgresql", "files"),
    ("postgresql", "database"),
]


@contextlib.contextmanager
def database_url(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'delivery.db'}"
    else:
        with postgres_schema() as url:
            yield url


def rate(total_bytes: int, seconds: float) -> float:
    return total_bytes / MB / seconds


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def measure(
    kind: str, blob_kind: str, blobs_data: list[bytes], threads: int, folder: Path
) -> dict[str, float]:
    total = sum(len(b) for b in blobs_data)
    with database_url(kind, folder) as url:
        database = Database(DatabaseUrl.parse(url), DELIVERY_MIGRATIONS)
        database.migrate()
        try:
            blobs: BlobStore = (
                FileBlobStore(folder / "blobs")
                if blob_kind == "files"
                else DatabaseBlobStore(database)
            )
            names: list[str] = []
            put_s = timed(lambda: names.extend(blobs.put(b) for b in blobs_data))
            get_s = timed(lambda: [blobs.get(n) for n in names])
            with concurrent.futures.ThreadPoolExecutor(threads) as pool:
                many_s = timed(lambda: list(pool.map(blobs.get, names * threads)))
            models = [random.Random(i).randbytes(len(blobs_data[0])) for i in range(len(names))]
            store = ModelStore(database, blobs)
            add_s = timed(lambda: [store.add(manifest_for(m), SIGNATURE, m) for m in models])
            sha = hashlib.sha256(models[0]).hexdigest()
            size = len(models[0])
            rounds = 20
            cached_s = timed(
                lambda: [
                    store.read_range(sha, offset, CHUNK)
                    for _ in range(rounds)
                    for offset in range(0, size, CHUNK)
                ]
            )
        finally:
            database.close()
    return {
        "put_mb_s": rate(total, put_s),
        "get_mb_s": rate(total, get_s),
        "get_threads_mb_s": rate(total * threads, many_s),
        "add_models_s": len(models) / add_s,
        "add_mb_s": rate(total, add_s),
        "cached_mb_s": rate(size * rounds, cached_s),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--size-mb", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    size = int(args.size_mb * MB)
    data = [random.Random(1000 + i).randbytes(size) for i in range(args.count)]
    sha_s = timed(lambda: [hashlib.sha256(d).digest() for d in data])
    rows: dict[str, dict[str, float]] = {}
    for kind, blob_kind in BACKENDS:
        if kind == "postgresql" and args.no_postgres:
            continue
        with tempfile.TemporaryDirectory(dir=args.dir) as folder:
            rows[f"{kind}+{blob_kind}"] = measure(kind, blob_kind, data, args.threads, Path(folder))
    result = {
        "blob_bytes": size,
        "count": args.count,
        "threads": args.threads,
        "sha256_mb_s": rate(size * args.count, sha_s),
        "backends": rows,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    table = Table(title=f"{args.count} blobs of {size / MB:.1f} MB (MB/s unless stated)")
    for column in ("backend", "put", "get", f"get x{args.threads}", "add models/s", "cached"):
        table.add_column(column, justify="right")
    for name, row in rows.items():
        table.add_row(
            name,
            f"{row['put_mb_s']:.0f}",
            f"{row['get_mb_s']:.0f}",
            f"{row['get_threads_mb_s']:.0f}",
            f"{row['add_models_s']:.1f}",
            f"{row['cached_mb_s']:.0f}",
        )
    console = Console()
    console.print(table)
    console.print(f"sha256 alone: {result['sha256_mb_s']:.0f} MB/s (the cost of verifying a read)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
