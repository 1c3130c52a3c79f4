"""One webhook call line: authenticates a CAD's request, then reads its body.

The hub routes ``POST /api/call-lines/{id}/calls`` here with the raw body
(``HttpCallLine``), so the signature is checked over the exact bytes before
anything parses them. The checks run in an order that tells an outsider
nothing: without a valid signature the answer is always 401, whatever else
is wrong; freshness (409 stale), replay (409), the media type (415) and the
body (400) are only judged for requests that hold the secret.

``receive`` does not await: from the replay check to the signature being
remembered nothing else runs, so two copies of one request arriving together
cannot both pass.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from csuhub.api import CallRefused, CallReport
from csuhub_webhook.body import parse_call
from csuhub_webhook.signing import ReplayCache, parse_signature, parse_timestamp, verify

_LOGGER = logging.getLogger(__name__)

JSON = "application/json"


class WebhookLine:
    """A ``CallLine`` and ``HttpCallLine`` for one ``call_lines:`` entry of type webhook."""

    def __init__(
        self,
        hub: Any,
        line_id: str,
        options: Mapping[str, Any],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.hub = hub
        self.line_id = line_id
        self._secret: str = options["secret"]
        self.signature_header: str = options["signature_header"]
        self.timestamp_header: str = options["timestamp_header"]
        self.max_skew: float = options["max_skew"]
        self.max_body: int = options["max_body"]
        self.legacy_path: str | None = options.get("path")
        self.clock = clock
        self.replays = ReplayCache()
        self.running = False

    def __repr__(self) -> str:  # never the secret
        return f"<WebhookLine {self.line_id}>"

    @property
    def route(self) -> str:
        return f"/api/call-lines/{self.line_id}/calls"

    async def start(self) -> None:
        self.replays.clear()
        self.running = True
        if self.legacy_path and self.legacy_path != self.route:
            _LOGGER.info(
                "call line %s receives calls at %s (its option path %s is no longer used)",
                self.line_id,
                self.route,
                self.legacy_path,
            )

    async def stop(self) -> None:
        self.running = False
        self.replays.clear()

    async def receive(
        self, headers: Mapping[str, str], body: bytes, remote: str | None
    ) -> CallReport:
        """The report of an authentic, fresh, first-seen request; CallRefused otherwise."""
        if not self.running:  # stopped (or never started): its replay memory is gone
            raise CallRefused(403, "this call line is not running")
        if len(body) > self.max_body:  # the hub reads at most max_body; be sure anyway
            raise CallRefused(413, f"the body is larger than {self.max_body} bytes")
        stamp = self._one(headers, self.timestamp_header)
        sent = self._one(headers, self.signature_header)
        timestamp = parse_timestamp(stamp) if stamp is not None else None
        digest = parse_signature(sent) if sent is not None else None
        if timestamp is None or digest is None or stamp is None:
            raise CallRefused(
                401,
                f"a signed request needs {self.timestamp_header} (Unix seconds) and "
                f"{self.signature_header} (sha256=<hex HMAC>)",
            )
        if not verify(self._secret, stamp.strip(), body, digest):
            raise CallRefused(401, "the signature does not match")
        now = self.clock()
        if abs(now - timestamp) > self.max_skew:
            raise CallRefused(
                409,
                f"stale timestamp: more than {self.max_skew:g} s from the hub's clock "
                "(sign each attempt with the current time)",
            )
        if self.replays.seen(digest, now):
            raise CallRefused(409, "replay: this signed request was already received")
        if not _is_json(headers):
            raise CallRefused(
                415, "the body must be sent as Content-Type: application/json (UTF-8)"
            )
        report = parse_call(body, line=self.line_id, now=now, max_future=self.max_skew)
        if not self.replays.add(digest, now, 2 * self.max_skew):
            raise CallRefused(409, "too many calls in the replay window; retry later")
        return report

    @staticmethod
    def _one(headers: Mapping[str, str], name: str) -> str | None:
        """The header's value; None when absent or repeated (which copy a proxy
        checked is unknown, so neither counts)."""
        getall = getattr(headers, "getall", None)
        if getall is not None:
            values = getall(name, [])
            return values[0] if len(values) == 1 else None
        found = [v for k, v in headers.items() if k.lower() == name.lower()]
        return found[0] if len(found) == 1 else None


def _is_json(headers: Mapping[str, str]) -> bool:
    """One ``Content-Type: application/json``, with no charset but UTF-8's."""
    value = WebhookLine._one(headers, "Content-Type")
    if value is None:
        return False
    kind, *params = (part.strip().lower() for part in value.split(";"))
    for param in params:
        name, _, arg = param.partition("=")
        if name.strip() == "charset" and arg.strip().strip('"') not in ("utf-8", "utf8"):
            return False
    return kind == JSON
