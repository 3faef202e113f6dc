"""Model bytes from a URL the manifest names (a cache, an object store, a CDN).

Tried before `ReadModel`; nothing fetched is trusted: the bytes go to the same partial
file and are checked against the signed manifest's sha256 and size before install. A
partial download resumes with an HTTP Range; a server that ignores it (200, the whole
file) is read from the start. Only http and https: a manifest cannot make the device read
a local file. Any failure is the URL's alone: the caller moves on to the next, and to
delivery.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable
from urllib.parse import urlsplit

from ofa_fleet.agent.backoff import TransientError

READ_BYTES = 256 * 1024
ALLOWED_SCHEMES = ("http", "https")
CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")

# (offset, data) -> the partial's size after appending; raises on a gap or a repeat.
Append = Callable[[int, bytes], int]


def fetch_url(url: str, offset: int, total: int, append: Append, timeout: float) -> int:
    """Append `url`'s bytes from `offset` (or from 0, if the server ignores the Range);
    returns the partial's size at the end, `total` when complete."""
    if urlsplit(url).scheme not in ALLOWED_SCHEMES:
        raise TransientError(f"model URL {url[:100]!r} is not http(s); not fetched")
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        start = _start(response, offset)
        size = start
        while size < total:
            data = response.read(min(READ_BYTES, total - size))
            if not data:
                break
            size = append(size, data)
        return size


def _start(response: object, offset: int) -> int:
    status = getattr(response, "status", 0)
    if status == 200:
        return 0  # the whole file, whatever was asked
    if status == 206:
        ranged = CONTENT_RANGE.match(response.headers.get("Content-Range", ""))  # type: ignore[attr-defined]
        if ranged is None or int(ranged.group(1)) != offset:
            raise TransientError("the model URL answered another range than asked for")
        return offset
    raise TransientError(f"the model URL answered HTTP {status}")
