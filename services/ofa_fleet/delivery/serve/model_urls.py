"""Where else a model's bytes can be fetched: a cache, an object store, a CDN.

Models are content-addressed, so their bytes can sit anywhere that serves a file by its
sha256. Delivery names such places in each manifest (`ModelManifest.download_urls`, from
`serve delivery --model-url`), and the agent tries them before `ReadModel`: what it
fetches is checked against the signed manifest's sha256 and size like any download, so
an untrusted cache can slow a device down but never change what it runs. The URLs are not
part of the signed manifest: where the bytes live may change without re-signing.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from ofa_fleet.errors import InvalidArgumentError

PLACEHOLDER = "{sha256}"
MAX_URLS = 4
MAX_URL_CHARS = 2048


@dataclass(frozen=True)
class ModelUrls:
    """URL templates with a `{sha256}` placeholder, tried in this order."""

    templates: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.templates) > MAX_URLS:
            raise InvalidArgumentError(
                f"--model-url is given {len(self.templates)} times; at most {MAX_URLS}"
            )
        for template in self.templates:
            if len(template) > MAX_URL_CHARS or PLACEHOLDER not in template:
                raise InvalidArgumentError(
                    f"--model-url {template[:100]!r} must hold {PLACEHOLDER} (where the "
                    f"model's sha256 goes) within {MAX_URL_CHARS} characters"
                )
            if urlsplit(template).scheme not in ("http", "https") or not urlsplit(template).netloc:
                raise InvalidArgumentError(
                    f"--model-url {template[:100]!r} must be an http:// or https:// URL"
                )

    def for_model(self, sha256: str) -> list[str]:
        return [template.replace(PLACEHOLDER, sha256) for template in self.templates]
