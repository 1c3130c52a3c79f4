"""``GET /api/events``: the bus as a WebSocket, filtered by who is listening
(issue 14 §1; contract §2; docs/walls.md#the-events-websocket).

Any authenticated principal may connect (the route declares ``camera.read``,
which every role holds); each event then goes out only if the principal may
see it, by a fixed table (:data:`RULES`): nothing that is not in it is sent.

* ``wall.changed`` needs ``wall.view``, and a scope naming walls (a kiosk's
  ``wall:<id>``) hears of those walls only;
* ``incident.*`` needs ``incident.read``; the cameras outside the principal's
  scope are left out of the incident, and a caller's number is masked unless
  it holds ``incident.caller.view`` (the incident reference carries none today;
  the mask is the guard for when an event does);
* ``camera_state_changed`` needs ``camera.read`` and ``live.view`` (the feed is
  for the people who watch the wall; the auditor, who sees no video, hears of
  no camera) and the camera in scope.

One JSON text frame per event (``event.as_dict()``, filtered), after a
``{"event": "hello", ...}``. ``?events=a,b`` narrows the stream to those
names. A client that reads slower than events come has a bounded queue: the
oldest are dropped and a ``{"event": "lag", "dropped": n}`` frame says how
many. The server pings every ``HEARTBEAT`` seconds and drops a client that
does not answer. A browser session's socket must come from the hub's own
page (``Origin``, as for live video): a page of another site on the same
host (another port) would otherwise ride the cookie. The principal is the
one that connected: a session or token ended later is not noticed by an
open socket (reconnecting is refused).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from aiohttp import WSMsgType, web

from csuhub.events import (
    MATCH_ALL,
    CameraStateChanged,
    Event,
    HubStopping,
    IncidentCameraLinked,
    IncidentClosed,
    IncidentOpened,
    IncidentUpdated,
    WallChanged,
)
from csuhub.incidents.model import mask_caller
from csuhub.security.permissions import Principal
from csuhub.security.sessions import origin_matches
from csuhub.walls.parse import may_see_wall
from csuhub.web.auth import PRINCIPAL_KEY, camera_visible
from csuhub.web.declare import Param, endpoint
from csuhub.web.login import SESSION_KEY
from csuhub.web.requests import hub_of, json_error

routes = web.RouteTableDef()

#: seconds between pings (a client that misses its pong is dropped)
HEARTBEAT = 30.0
#: events waiting for one slow client before the oldest are dropped
QUEUE = 256
#: how long a camera's scope answer is kept for one connection
SCOPE_TTL = 60.0
MAX_QUERY = 400


@dataclass(frozen=True, slots=True)
class Rule:
    """Who hears an event: the permissions needed, and how it is cut to scope."""

    permissions: frozenset[str]
    #: "wall" (wall scope), "incident" (cameras cut, caller masked), "camera"
    kind: str


_INCIDENT = Rule(frozenset({"incident.read"}), "incident")
RULES: Mapping[str, Rule] = {
    WallChanged.name: Rule(frozenset({"wall.view"}), "wall"),
    IncidentOpened.name: _INCIDENT,
    IncidentUpdated.name: _INCIDENT,
    IncidentCameraLinked.name: _INCIDENT,
    IncidentClosed.name: _INCIDENT,
    CameraStateChanged.name: Rule(frozenset({"camera.read", "live.view"}), "camera"),
}


def parse_events(raw: str | None) -> frozenset[str]:
    """``?events=`` as a set of names (empty: every one of :data:`RULES`);
    ``ValueError`` for a name the stream does not carry."""
    if raw is None or not raw.strip():
        return frozenset(RULES)
    if len(raw) > MAX_QUERY:
        raise ValueError(f"events is at most {MAX_QUERY} characters")
    names = frozenset(n.strip() for n in raw.split(",") if n.strip())
    unknown = sorted(names - set(RULES))
    if unknown:
        shown = unknown[0][:64].encode("ascii", "backslashreplace").decode()
        raise ValueError(f"no event {shown!r} on this stream; one of {', '.join(sorted(RULES))}")
    return names or frozenset(RULES)


def allowed_events(principal: Principal, wanted: frozenset[str]) -> frozenset[str]:
    """The names ``principal`` may hear, of those wanted."""
    return frozenset(n for n in wanted if RULES[n].permissions <= principal.permissions)


def _plain(value: Any) -> Any:
    """JSON-ready: enums as their names (``high``, not 3), tuples as lists."""
    if isinstance(value, Enum):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def message(event: Event) -> dict[str, Any]:
    data = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    data = {k: _as_data(v) for k, v in data.items()}
    data["event"] = event.name
    return _plain(data)  # type: ignore[no-any-return]


def _as_data(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _as_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_as_data(v) for v in value]
    return value


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: (mask_caller(v) if k == "caller" and isinstance(v, str) else _masked(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


class Listener:
    """One connection: its principal, its queue, and the filter."""

    def __init__(
        self, request: web.Request, names: frozenset[str], clock: Callable[[], float]
    ) -> None:
        self.request = request
        self.principal: Principal = request[PRINCIPAL_KEY]
        self.names = names
        self.queue: deque[Event] = deque()
        self.dropped = 0
        self.wake = asyncio.Event()
        self.clock = clock
        self._seen: dict[str, tuple[float, bool]] = {}

    def offer(self, event: Event) -> None:
        """The bus's listener: cheap (a name test), never blocks."""
        if event.name not in self.names:
            return
        if len(self.queue) >= QUEUE:
            self.queue.popleft()
            self.dropped += 1
        self.queue.append(event)
        self.wake.set()

    async def visible(self, camera: str) -> bool:
        now = self.clock()
        kept = self._seen.get(camera)
        if kept is not None and now - kept[0] < SCOPE_TTL:
            return kept[1]
        allowed = await camera_visible(self.request, camera)
        if len(self._seen) > 4096:
            self._seen.clear()
        self._seen[camera] = (now, allowed)
        return allowed

    async def shown(self, event: Event) -> dict[str, Any] | None:
        """The event as this principal may see it, or None."""
        rule = RULES[event.name]
        if rule.kind == "wall":
            wall = str(getattr(event, "wall", ""))
            return message(event) if may_see_wall(self.principal, wall) else None
        data = message(event)
        if rule.kind == "camera":
            return data if await self.visible(data["camera_id"]) else None
        incident = data["incident"]
        incident["cameras"] = [c for c in incident["cameras"] if await self.visible(c["id"])]
        if "cameras" in data:
            data["cameras"] = [c for c in data["cameras"] if await self.visible(c["id"])]
        if not self.principal.has("incident.caller.view"):
            data = _masked(data)
        return data


@routes.get("/api/events")
@endpoint(
    "camera.read",
    tags=("events",),
    params=(
        Param(
            "events",
            {"type": "string", "maxLength": MAX_QUERY, "pattern": "^[a-z_.,]*$"},
            description="comma-separated event names to receive (default: all the caller "
            f"may see): {', '.join(sorted(RULES))}",
        ),
    ),
    responses={
        101: (
            "Switching Protocols: a WebSocket of JSON text frames, one per event, after "
            'a {"event": "hello"}; {"event": "lag", "dropped": n} when a slow reader lost n',
            "application/json",
            None,
        ),
        400: ("Not a WebSocket request, or an unknown event name", "application/json", None),
        403: (
            "A browser session's WebSocket from a page that is not the hub's (Origin)",
            "application/json",
            None,
        ),
    },
)
async def events(request: web.Request) -> web.StreamResponse:
    """The hub's events as they happen, filtered by the caller's permissions and scope."""
    try:
        names = parse_events(request.query.get("events"))
    except ValueError as err:
        raise json_error(str(err)) from None
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT, max_msg_size=4096)
    if not ws.can_prepare(request).ok:
        raise json_error("this is a WebSocket: connect with Upgrade: websocket")
    if SESSION_KEY in request:  # a browser's cookie: its page must be ours
        origin = request.headers.get("Origin")
        if origin is None or not origin_matches(origin, request.host):
            raise json_error("the WebSocket's Origin is not this hub", web.HTTPForbidden)
    listener = Listener(request, allowed_events(request[PRINCIPAL_KEY], names), time.monotonic)
    hub = hub_of(request)
    await ws.prepare(request)
    unsubscribe = [
        hub.bus.listen(MATCH_ALL, listener.offer),
        hub.bus.listen(HubStopping, lambda _event: asyncio.ensure_future(ws.close())),
    ]
    writer: asyncio.Future[None] | None = None
    try:
        hello = {
            "event": "hello",
            "principal": listener.principal.name,
            "events": sorted(listener.names),
            "heartbeat": HEARTBEAT,
            "queue": QUEUE,
        }
        await ws.send_str(json.dumps(hello))
        writer = asyncio.ensure_future(_write(ws, listener))
        async for msg in ws:  # clients have nothing to say; a close ends the stream
            if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                break
    finally:
        for undo in unsubscribe:
            undo()
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
        await ws.close()
    return ws


async def _write(ws: web.WebSocketResponse, listener: Listener) -> None:
    while not ws.closed:
        await listener.wake.wait()
        listener.wake.clear()
        while listener.queue and not ws.closed:
            if listener.dropped:
                dropped, listener.dropped = listener.dropped, 0
                await ws.send_str(json.dumps({"event": "lag", "dropped": dropped}))
            event = listener.queue.popleft()
            shown = await listener.shown(event)
            if shown is not None:
                await ws.send_str(json.dumps(shown, default=str))
