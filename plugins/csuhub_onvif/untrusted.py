"""Reading what an ONVIF camera answers: every value is untrusted.

Text is bounded and printable, numbers that do not parse are None, stream URIs
must be rtsp/rtsps/http/https (``cv.stream_url``), and credentials are put
into a URI quoted, and taken out of one before it is shown or stored.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import voluptuous as vol

from csuhub.api import cv


def clean_text(value: Any, limit: int = 100) -> str | None:
    if value is None:
        return None
    text = "".join(ch for ch in str(value) if ch.isprintable()).strip()
    return text[:limit] or None


def clean_uri(value: Any) -> str | None:
    text = clean_text(value, 1000)
    if text is None:
        return None
    try:
        return cv.stream_url(text)
    except vol.Invalid:
        return None


def as_int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def as_float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def without_credentials(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    return urlunsplit((parts.scheme, _hostport(parts), parts.path, parts.query, ""))


def _hostport(parts: Any) -> str:
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    return f"{netloc}:{parts.port}" if parts.port else netloc


def with_credentials(uri: str, user: str, password: str) -> str:
    if not user:
        return uri
    parts = urlsplit(uri)
    host = parts.hostname or ""
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
