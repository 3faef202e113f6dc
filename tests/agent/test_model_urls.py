"""A device fetches its model from a URL the manifest names (a cache, a CDN) before
delivery, trusts nothing it got there, and falls back to delivery when the URL fails or
serves other bytes."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ofa_fleet.delivery.serve.model_urls import ModelUrls
from ofa_fleet.errors import InvalidArgumentError
from tests.agent.fleet import CHUNK, Fleet, sha256
from tests.delivery.server_thread import DeliveryServerThread


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A plain HTTP file server on loopback (no Range support: it sends whole files)."""
    folder = tmp_path / "cache"
    folder.mkdir()
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{{sha256}}.onnx", folder
    finally:
        server.shutdown()
        thread.join(timeout=10)


def served_by_delivery(delivery: DeliveryServerThread) -> float:
    value = delivery.metrics.registry.get_sample_value(
        "ofa_fleet_model_bytes_served_total", {"profile": "raspberry-pi-4"}
    )
    return value or 0.0


@pytest.mark.parametrize("what_the_cache_holds", ["the model", "nothing", "other bytes"])
def test_a_device_tries_the_manifests_url_first_and_delivery_after(
    fleet_without_delivery: Fleet,
    model_a: bytes,
    model_b: bytes,
    cache: tuple[str, Path],
    tmp_path: Path,
    what_the_cache_holds: str,
) -> None:
    fleet = fleet_without_delivery
    template, folder = cache
    sha = fleet.publish(model_a)
    if what_the_cache_holds == "the model":
        (folder / f"{sha}.onnx").write_bytes(model_a)
    elif what_the_cache_holds == "other bytes":  # a cache gone wrong, or a hostile one
        (folder / f"{sha}.onnx").write_bytes(model_b)
    with DeliveryServerThread(
        fleet.store,
        fleet.key_path,
        fleet.registry.address,
        CHUNK,
        model_urls=ModelUrls((template,)),
    ) as delivery:
        fleet.delivery_address = delivery.address
        report = fleet.boot(tmp_path / "device").boot
        assert report.model_sha256 == sha256(model_a)  # verified whatever the cache held
        from_delivery = served_by_delivery(delivery)
    if what_the_cache_holds == "the model":
        assert from_delivery == 0 and report.bytes_downloaded == len(model_a)
    else:
        assert from_delivery == len(model_a)


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("https://cdn.example/models/latest.onnx", "must hold {sha256}"),
        ("file:///etc/{sha256}", "http:// or https://"),
        ("https://cdn.example/" + "x" * 3000 + "{sha256}", "within 2048 characters"),
    ],
)
def test_model_urls_are_checked_before_delivery_starts(template: str, words: str) -> None:
    with pytest.raises(InvalidArgumentError, match=words.replace("{", r"\{").replace("}", r"\}")):
        ModelUrls((template,))


class RangeHandler(QuietHandler):
    """Serves `BODY` honouring `Range: bytes=N-`, as caches and object stores do."""

    BODY = bytes(range(256)) * 40

    def do_GET(self) -> None:
        ranged = self.headers.get("Range", "")
        start = int(ranged.removeprefix("bytes=").rstrip("-")) if ranged else 0
        body = self.BODY[start:]
        self.send_response(206 if ranged else 200)
        if ranged:
            total = len(self.BODY)
            self.send_header("Content-Range", f"bytes {start}-{total - 1}/{total}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_partial_download_resumes_from_a_url_with_a_range() -> None:
    from ofa_fleet.agent.url_download import fetch_url

    server = ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    body = RangeHandler.BODY
    half = len(body) // 2
    received = bytearray(body[:half])

    def append(offset: int, data: bytes) -> int:
        assert offset == len(received)  # contiguous, from where the partial ends
        received.extend(data)
        return len(received)

    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/model"
        assert fetch_url(url, half, len(body), append, timeout=10) == len(body)
    finally:
        server.shutdown()
        thread.join(timeout=10)
    assert bytes(received) == body
