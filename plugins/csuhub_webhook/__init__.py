"""The webhook call line: a dispatch (CAD/CTI) system posts signed calls.

Each ``call_lines:`` entry of ``type: webhook`` receives its calls at
``POST /api/call-lines/<id>/calls`` (the hub's own HTTP server; the route is
core, this plugin checks what reaches it). Requests are signed with a shared
secret: see :mod:`csuhub_webhook.signing` for the construction and
docs/webhook.md for the CAD's side.

Options (``call_lines[].options``)::

    secret: !secret webhook_secret   # required, at least 16 characters; never logged
    signature_header: X-Csuhub-Signature
    timestamp_header: X-Csuhub-Timestamp
    max_skew: 5m                     # 10s..1h: older or newer timestamps are refused
    max_body: 64KiB                  # bytes (or KiB/MiB), 256 B..1 MiB
    path: /hooks/calls               # accepted for older blueprints, unused

The ``secret`` usually comes from ``secrets.yaml`` (``!secret``); it reaches
the options as a ``str`` whose repr shows only its name, and this plugin never
formats it into a message.
"""

from __future__ import annotations

import re
from typing import Any

import voluptuous as vol

from csuhub.api import CallLineSpec, cv, hookimpl
from csuhub_webhook.line import WebhookLine

__all__ = ["OPTIONS", "SCHEMA", "WebhookLine", "register_call_lines"]

MIN_SECRET = 16
MAX_BODY = 1024 * 1024
#: an HTTP header name (RFC 9110 token)
_HEADER = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}")
_SIZE = re.compile(r"\s*([0-9]{1,7})\s*(B|KiB|MiB)?\s*")
_UNITS = {None: 1, "B": 1, "KiB": 1024, "MiB": 1024 * 1024}


def _secret(value: Any) -> str:
    # the messages never quote the value: this error may be printed by `csuhub check`
    if not isinstance(value, str):
        raise vol.Invalid("the secret must be text (use !secret NAME)")
    if len(value) < MIN_SECRET:
        raise vol.Invalid(f"the secret must have at least {MIN_SECRET} characters")
    if value != value.strip() or any(not ch.isprintable() for ch in value):
        raise vol.Invalid("the secret must be printable, without surrounding blanks")
    return value  # as given: a Secret keeps its redacting repr


def _header(value: Any) -> str:
    if not isinstance(value, str) or not _HEADER.fullmatch(value):
        raise vol.Invalid("expected an HTTP header name such as X-Csuhub-Signature")
    return value


def _skew(value: Any) -> float:
    seconds = cv.duration(value)
    if not 10 <= seconds <= 3600:
        raise vol.Invalid("max_skew must be between 10s and 1h")
    return seconds


def _size(value: Any) -> int:
    if isinstance(value, bool):
        raise vol.Invalid("expected a size in bytes, such as 65536 or 64KiB")
    if isinstance(value, int):
        size = value
    else:
        found = _SIZE.fullmatch(str(value))
        if not found:
            raise vol.Invalid("expected a size in bytes, such as 65536 or 64KiB")
        size = int(found.group(1)) * _UNITS[found.group(2)]
    if not 256 <= size <= MAX_BODY:
        raise vol.Invalid("max_body must be between 256 bytes and 1 MiB")
    return size


def _path(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise vol.Invalid(
            "expected a URL path (unused: calls arrive at /api/call-lines/<id>/calls)"
        )
    return value


OPTIONS = vol.Schema(
    {
        vol.Required("secret"): _secret,
        vol.Optional("signature_header", default="X-Csuhub-Signature"): _header,
        vol.Optional("timestamp_header", default="X-Csuhub-Timestamp"): _header,
        vol.Optional("max_skew", default=300.0): _skew,
        vol.Optional("max_body", default=64 * 1024): _size,
        vol.Optional("path"): _path,
    }
)


def _distinct(options: dict[str, Any]) -> dict[str, Any]:
    if options["signature_header"].lower() == options["timestamp_header"].lower():
        raise vol.Invalid("signature_header and timestamp_header must differ")
    return options


#: the spec's config_schema: the keys, then what relates them
SCHEMA = vol.Schema(vol.All(OPTIONS, _distinct))


@hookimpl
def register_call_lines(hub: Any) -> list[CallLineSpec]:
    return [
        CallLineSpec(
            name="webhook",
            factory=WebhookLine,
            config_schema=SCHEMA,
            description="Signed HTTP calls from a dispatch system (CAD/CTI): HMAC-SHA256 "
            "over the timestamp and the body, at POST /api/call-lines/<id>/calls",
        )
    ]
