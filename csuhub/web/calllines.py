"""``POST /api/call-lines/{line}/calls``: where a dispatch system's calls come in.

This route is public to the authentication middleware because its caller is
a machine that holds no token and no session: the *line* authenticates each
request itself (``HttpCallLine.receive``, an HMAC over the exact body for the
bundled webhook). So the route does only what no line should have to get
right on its own:

- a line that does not exist, or does not take HTTP calls, is a 404 before a
  byte of the body is read;
- the body is read up to the line's ``max_body`` (and the API's ``MAX_BODY``)
  and no further: a larger one is a 413 without reading the rest;
- the line's refusal (``CallRefused``) becomes its status with a JSON error,
  logged and audited as ``call.refused`` (never with the secret or the
  signature), at most once per source address (IPv6: per /64) and minute, so
  that a flood of bad requests cannot fill the audit chain: the others are
  counted into the next entry;
- the report goes to the hub's desk (``hub.calls.report``), which opens or
  updates the incident and audits it; the CAD is answered the incident's id,
  status and linked cameras, and nothing more (no caller, no text).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from aiohttp import web

from csuhub.incidents.calls import (
    MAX_CALL_ID,
    MAX_CALLER,
    MAX_CATEGORY,
    MAX_TEXT,
    CallRefused,
    HttpCallLine,
)
from csuhub.incidents.desk import line_principal
from csuhub.security.lockout import address_key
from csuhub.web.auth import source_of
from csuhub.web.declare import Param, endpoint
from csuhub.web.requests import CLIENT_FAULTS, describe_fault, hub_of
from csuhub.web.schemas import ERROR, json_answer
from csuhub.web.validation import MAX_BODY

if TYPE_CHECKING:
    from csuhub.hub import Hub

_LOGGER = logging.getLogger(__name__)

routes = web.RouteTableDef()

#: the longest line id a site file accepts (``CallReport.line``)
_MAX_LINE = 63

LOCATION: dict[str, Any] = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "properties": {
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "lon": {"type": "number", "minimum": -180, "maximum": 180},
        "radius_m": {
            "type": "number",
            "minimum": 0,
            "maximum": 100_000,
            "description": "uncertainty around lat/lon, metres",
        },
        "address": {"type": "string", "minLength": 1, "maxLength": 500, "pattern": r"\S"},
    },
    "dependentRequired": {"lat": ["lon"], "lon": ["lat"], "radius_m": ["lat", "lon"]},
    "anyOf": [{"required": ["lat", "lon"]}, {"required": ["address"]}],
    "description": "WGS84 lat and lon, an address, or both",
}

#: the bundled webhook line's body (plugins/csuhub_webhook, docs/webhook.md);
#: another HTTP line type may take another
CALL_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["external_id"],
    "properties": {
        "external_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_CALL_ID,
            "pattern": r"\S",
            "description": "the dispatch system's id for the call: posting it again "
            "updates the same incident",
        },
        "caller": {"type": ["string", "null"], "minLength": 1, "maxLength": MAX_CALLER},
        "location": LOCATION,
        "category": {"type": "string", "minLength": 1, "maxLength": MAX_CATEGORY},
        "priority": {"enum": ["low", "normal", "high", "critical"], "default": "normal"},
        "text": {"type": "string", "maxLength": MAX_TEXT},
        "occurred_at": {
            "oneOf": [
                {"type": "string", "description": "ISO 8601 with an offset (Z, +01:00)"},
                {"type": "number", "description": "epoch seconds"},
                {"type": "null"},
            ],
            "description": "when the call came in (default: when the hub receives it)",
        },
    },
    "description": "Sent with Content-Type: application/json and signed: "
    "X-Csuhub-Timestamp (integer Unix seconds) and X-Csuhub-Signature: sha256=<hex "
    "HMAC-SHA256 of the timestamp, '.', and the exact body, keyed with the line's "
    "secret>. Unknown keys, a key given twice and non-finite numbers are refused.",
}

ANSWER: dict[str, Any] = {
    "type": "object",
    "required": ["incident", "status", "cameras"],
    "properties": {
        "incident": {"type": "integer"},
        "status": {"enum": ["open", "closed"]},
        "cameras": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id"],
                "properties": {
                    "id": {"type": "string"},
                    "distance_m": {"type": ["number", "null"]},
                    "reason": {"type": "string"},
                },
            },
            "description": "the cameras linked to the incident, nearest first",
        },
    },
}

_HEADERS = (
    Param(
        "X-Csuhub-Timestamp",
        {"type": "string", "pattern": "^[0-9]{1,12}$"},
        where="header",
        required=True,
        description="when the request was signed, integer Unix seconds (the line's "
        "timestamp_header may rename it)",
    ),
    Param(
        "X-Csuhub-Signature",
        {"type": "string", "pattern": "^(sha256=)?[0-9a-fA-F]{64}$"},
        where="header",
        required=True,
        description="sha256=<hex HMAC-SHA256(secret, timestamp + '.' + body)> (the "
        "line's signature_header may rename it)",
    ),
)


@routes.post("/api/call-lines/{line}/calls")
@endpoint(
    public=True,
    signed_by="callLineSignature",
    summary="A dispatch system reports a call (signed by the call line's secret)",
    tags=("incidents",),
    params=(
        Param(
            "line",
            {"type": "string", "maxLength": _MAX_LINE},
            where="path",
            description="the call line's id in the site file (call_lines[].id)",
        ),
        *_HEADERS,
    ),
    body=CALL_BODY,
    body_required=True,
    audited="call.received",
    responses={
        201: json_answer("A new incident was opened for the call", ANSWER),
        200: json_answer("The call was known: its incident was updated", ANSWER),
        400: json_answer("The body is refused (the key or value is named)", ERROR),
        401: json_answer("The signature or its timestamp is missing or does not match", ERROR),
        404: json_answer("No call line of that id takes HTTP calls", ERROR),
        409: json_answer(
            "The timestamp is stale (more than the line's max_skew from the hub's "
            "clock) or the same signed request was already received (a replay)",
            ERROR,
        ),
        413: json_answer("The body is over the line's max_body (64 KiB by default)", ERROR),
        415: json_answer("The body is not sent as application/json (or is compressed)", ERROR),
        503: json_answer("The call could not be recorded: sign it again and retry", ERROR),
    },
)
async def report_call(request: web.Request) -> web.Response:
    """Authenticated by the line's signature, not by a token: see docs/webhook.md.

    The CAD signs each attempt with the current time; posting the same
    external id again (re-signed) updates the incident, and an identical
    request within the freshness window is refused as a replay."""
    hub = hub_of(request)
    line_id = request.match_info["line"]
    line = _http_line(hub, line_id)
    if line is None:
        return _error(404, "no such call line")
    remote = source_of(request)
    limit = _limit(line)
    try:
        body = await _read(request, limit)
    except CallRefused as refused:
        return await _refuse(hub, line_id, remote, refused)
    try:
        report = await line.receive(request.headers, body, remote)
    except CallRefused as refused:
        return await _refuse(hub, line_id, remote, refused)
    try:
        async with _state(hub).call_lock((report.line, report.call_id)):
            known = await hub.store.incidents.by_call(report.line, report.call_id)
            incident = await hub.calls.report(report)
    except Exception:
        _LOGGER.exception("call line %s: the desk could not record a call", line_id)
        return _error(503, "the call could not be recorded; sign it again and retry")
    return web.json_response(
        {
            "incident": incident.id,
            "status": str(incident.status),
            "cameras": [
                {"id": c.id, "distance_m": c.distance_m, "reason": c.reason}
                for c in incident.cameras
            ],
        },
        # a new incident: the call's first, or one following its closed incident
        # (a reused external id is another call)
        status=201 if known is None or int(known["id"]) != incident.id else 200,
    )


def _http_line(hub: Hub, line_id: str) -> Any:
    lines = getattr(hub, "call_lines", None) or {}
    try:
        line = lines.get(line_id)
    except Exception:  # a mapping that cannot answer: no line (fail closed)
        return None
    return line if isinstance(line, HttpCallLine) else None


def _limit(line: Any) -> int:
    """The line's ``max_body``, within the API's: a line asking for more, or
    for something that is not a size, gets the API's limit."""
    wanted = getattr(line, "max_body", MAX_BODY)
    if isinstance(wanted, bool) or not isinstance(wanted, int) or wanted <= 0:
        return MAX_BODY
    return min(wanted, MAX_BODY)


async def _read(request: web.Request, limit: int) -> bytes:
    """At most ``limit`` bytes, whatever the request declares (413 beyond)."""
    too_large = CallRefused(413, f"the body is larger than {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    data = bytearray()
    try:
        while chunk := await request.content.read(min(64 * 1024, limit + 1 - len(data))):
            data += chunk
            if len(data) > limit:
                raise too_large
    except CLIENT_FAULTS as err:
        raise CallRefused(400, f"the body cannot be read ({describe_fault(err)})") from None
    return bytes(data)


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


async def _refuse(hub: Hub, line_id: str, remote: str | None, refused: CallRefused) -> web.Response:
    reason = _printable(refused.reason)
    await _state(hub).refusals.note(hub, line_id, remote, refused.status, reason)
    headers = {}
    if refused.status == 401:  # RFC 9110: a 401 names how to authenticate
        headers["WWW-Authenticate"] = 'CsuhubSignature realm="call-lines"'
    return _error(refused.status, reason, **headers)


def _printable(text: str) -> str:
    shown = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(text))
    return shown if len(shown) <= 300 else shown[:297] + "..."


# -- refusals: logged and audited, a bounded number per source and minute ----------

#: distinct sources remembered per minute before they are counted together
MAX_SOURCES = 1024
WINDOW = 60.0


@dataclass
class _Refusals:
    """Who was refused this minute: the first refusal of a source is logged
    and audited, the rest of its minute are counted into its next entry."""

    window: int = -1
    #: source -> refusals not yet audited
    counted: dict[str, int] = field(default_factory=dict)
    #: sources audited in the current window
    audited: set[str] = field(default_factory=set)

    async def note(
        self, hub: Hub, line_id: str, remote: str | None, status: int, reason: str
    ) -> None:
        now = time.time()
        window = int(now // WINDOW)
        if window != self.window:
            self.window = window
            self.audited.clear()
        source = address_key(remote).removeprefix("addr:")  # IPv6 counted per /64
        if len(self.audited) >= MAX_SOURCES and source not in self.audited:
            source = "*"  # a flood from many addresses: one entry a minute for all of them
        if source in self.audited:
            self.counted[source] = self.counted.get(source, 0) + 1
            if len(self.counted) > 4 * MAX_SOURCES:  # never a memory leak; the count is lost
                self.counted.clear()
            _LOGGER.debug("call line %s refused %s again (%s): %s", line_id, source, status, reason)
            return
        self.audited.add(source)
        suppressed = self.counted.pop(source, 0)
        _LOGGER.warning(
            "call line %s refused a request from %s (%s): %s%s",
            line_id,
            source,
            status,
            reason,
            f" ({suppressed} more refused since the last entry)" if suppressed else "",
        )
        principal = replace(line_principal(line_id), source=remote)
        try:
            await hub.store.audit_event(
                principal,
                "call.refused",
                f"line:{line_id}",
                outcome="refused",
                line=line_id,
                status=status,
                why=reason,
                suppressed=suppressed,
            )
        except Exception:  # the refusal stands whether or not it could be written
            _LOGGER.exception("could not audit a refused call on line %s", line_id)


@dataclass
class _State:
    """What the route keeps per hub: the refusals of the minute, and a lock per
    call being reported, so that of two requests reporting the same new call
    at once, the one that opened the incident answers 201 and the other 200
    (the desk's own lock keeps it one incident either way)."""

    refusals: _Refusals = field(default_factory=_Refusals)
    locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = field(default_factory=dict)

    @contextlib.asynccontextmanager
    async def call_lock(self, key: tuple[str, str]) -> AsyncIterator[None]:
        lock, users = self.locks.get(key, (asyncio.Lock(), 0))
        self.locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self.locks[key]
            if users <= 1:
                del self.locks[key]
            else:
                self.locks[key] = (lock, users - 1)


_BY_HUB: weakref.WeakKeyDictionary[Any, _State] = weakref.WeakKeyDictionary()


def _state(hub: Hub) -> _State:
    found = _BY_HUB.get(hub)
    if found is None:
        found = _BY_HUB[hub] = _State()
    return found


__all__ = ["ANSWER", "CALL_BODY", "routes"]
