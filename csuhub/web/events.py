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
does not answer.

Why the socket checks who it serves again: a kiosk's socket stays open for
days. A browser session must come from the hub's own page (``Origin``, as
for live video: a page of another site on the same host, another port,
would otherwise ride the cookie). The credential (a token's hash or a
session's) is kept with the socket and resolved again every ``RECHECK``
seconds, so a revoked token, a disabled account or an ended session stops
the stream (close ``4003``); the principal's wall scope is computed again
at each ``wall.changed``, so a kiosk hears of the cameras its wall shows now
and no longer of those that left it. Sockets are counted per principal and
in all (``429`` before the upgrade beyond them): each holds a queue and a
task.

The module is longer than 450 lines because one socket's life is one story
here: who may connect (Origin, caps), what it hears (the rules) and when it
must stop hearing (the checks); split, each part would need the others'
state.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
import weakref
from collections import Counter, deque
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
from csuhub.security.permissions import CameraScope, Principal
from csuhub.security.sessions import hash_session_id, origin_matches
from csuhub.security.tokens import hash_secret
from csuhub.walls.parse import may_see_wall, named_walls
from csuhub.web.auth import (
    PRINCIPAL_KEY,
    PrincipalLookup,
    camera_placement,
    hub_token_lookup,
    source_of,
)
from csuhub.web.declare import Param, endpoint
from csuhub.web.login import LOGINS_KEY, SESSION_KEY, wall_cameras
from csuhub.web.login import _cookie as session_cookie
from csuhub.web.requests import hub_of, json_error

routes = web.RouteTableDef()

#: seconds between pings (a client that misses its pong is dropped)
HEARTBEAT = 30.0
#: events waiting for one slow client before the oldest are dropped
QUEUE = 256
#: how long a camera's scope answer is kept for one connection
SCOPE_TTL = 60.0
MAX_QUERY = 400
#: seconds between two checks of an open socket's credential
RECHECK = 12.0
#: open sockets per principal (a wall account: twice its walls' screens, if more)
PER_PRINCIPAL = 8
#: open sockets in all
MAX_SOCKETS = 512
#: the close code of a socket whose credential no longer authenticates
UNAUTHORISED = 4003


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


@dataclass(frozen=True, slots=True)
class Credential:
    """What authenticated the socket, to resolve it again: ``token`` (the
    secret's hash) or ``session`` (the cookie's hash)."""

    kind: str
    key: str


def credential_of(request: web.Request) -> Credential | None:
    """The request's credential as the middleware took it: the bearer token
    first, else the session cookie; None if neither can be named again."""
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() == "bearer" and secret.strip():
        return Credential("token", hash_secret(secret.strip()))
    logins = request.config_dict.get(LOGINS_KEY)
    cookie = None if logins is None else session_cookie(request, logins)
    if SESSION_KEY in request and cookie:
        return Credential("session", hash_session_id(cookie))
    return None


class Listener:
    """One connection: its principal (checked again as it lives), its queue, and the filter."""

    def __init__(
        self,
        request: web.Request,
        wanted: frozenset[str],
        clock: Callable[[], float],
        credential: Credential | None = None,
    ) -> None:
        self.request = request
        self.hub = hub_of(request)
        self.principal: Principal = request[PRINCIPAL_KEY]
        self.wanted = wanted
        self.names = allowed_events(self.principal, wanted)
        self.credential = credential
        self.queue: deque[Event] = deque()
        self.dropped = 0
        self.wake = asyncio.Event()
        #: a wall changed: the wall scope is computed again before the next event goes out
        self.rescope = False
        self.clock = clock
        self._seen: dict[str, tuple[float, bool]] = {}
        self._lookup: PrincipalLookup | None = None

    def offer(self, event: Event) -> None:
        """The bus's listener: cheap (a name test), never blocks."""
        if isinstance(event, WallChanged) and named_walls(self.principal):
            self.rescope = True
            self.wake.set()
        if event.name not in self.names:
            return
        if len(self.queue) >= QUEUE:
            self.queue.popleft()
            self.dropped += 1
        self.queue.append(event)
        self.wake.set()

    def become(self, principal: Principal) -> None:
        """Serve ``principal`` from now on (its permissions and scope as they are now)."""
        if principal != self.principal:
            self.principal = principal
            self.names = allowed_events(principal, self.wanted)
            self._seen.clear()

    def refresh_scope(self) -> None:
        """The wall cameras of the principal's scope, as the walls show them now."""
        self.rescope = False
        selectors = self.principal.scope.selectors
        cameras = wall_cameras(self.hub, tuple(selectors))
        if cameras != self.principal.scope.wall_cameras:
            scope = CameraScope(selectors, cameras)
            self.become(dataclasses.replace(self.principal, scope=scope))

    async def recheck(self) -> Principal | None:
        """The principal the credential authenticates now, or None (revoked,
        disabled, ended, timed out): the socket must close."""
        credential = self.credential
        if credential is None:
            return None
        if credential.kind == "token":
            if self._lookup is None:
                self._lookup = hub_token_lookup(self.hub)
            return await self._lookup(credential.key, source_of(self.request))
        logins = self.request.config_dict.get(LOGINS_KEY)
        if logins is None:
            return None
        sessions = logins.sessions
        record = await sessions.store.sessions.lookup(credential.key)
        if record is None:  # ended, or its account disabled
            return None
        policy, now = sessions.policy, sessions.clock()
        # last_seen is written at most every touch_every: idle is judged with that slack
        if now - record.created_at > policy.absolute:
            return None
        if now - record.last_seen > policy.idle + policy.touch_every:
            return None
        return record.identity.principal(
            via=record.public_id,
            source=self.request.remote,
            wall_cameras=wall_cameras(self.hub, record.identity.scope),
        )

    async def visible(self, camera: str) -> bool:
        now = self.clock()
        kept = self._seen.get(camera)
        if kept is not None and now - kept[0] < SCOPE_TTL:
            return kept[1]
        scope = self.principal.scope
        try:
            if scope.everything:
                allowed = True
            else:
                district, groups = await camera_placement(self.hub, camera)
                allowed = scope.allows(camera, district, groups)
        except Exception:  # fail closed
            allowed = False
        if len(self._seen) > 4096:
            self._seen.clear()
        self._seen[camera] = (now, allowed)
        return allowed

    async def shown(self, event: Event) -> dict[str, Any] | None:
        """The event as this principal may see it, or None."""
        if event.name not in self.names:  # the principal lost the permission meanwhile
            return None
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


class Gate:
    """The open sockets of one hub, per principal and in all."""

    def __init__(self) -> None:
        self.total = 0
        self.per: Counter[tuple[str, str]] = Counter()

    @staticmethod
    def key(principal: Principal) -> tuple[str, str]:
        return principal.kind, principal.name

    def cap(self, hub: Any, principal: Principal) -> int:
        """``PER_PRINCIPAL``, or for a wall account twice its walls' screens if
        more (each screen is a kiosk page with its own socket)."""
        walls = named_walls(principal)
        manager = getattr(hub, "walls", None)
        if not walls or manager is None:
            return PER_PRINCIPAL
        screens = sum(len(w.screens) for i, w in manager.walls.items() if i in walls)
        return max(PER_PRINCIPAL, 2 * screens)

    def enter(self, hub: Any, principal: Principal) -> None:
        """Count a socket in, or raise 429."""
        key = self.key(principal)
        if self.total >= MAX_SOCKETS or self.per[key] >= self.cap(hub, principal):
            raise web.HTTPTooManyRequests(
                text=json.dumps({"error": "too many open event streams; close one first"}),
                content_type="application/json",
                headers={"Retry-After": "10"},
            )
        self.total += 1
        self.per[key] += 1

    def leave(self, principal: Principal) -> None:
        key = self.key(principal)
        self.total -= 1
        self.per[key] -= 1
        if self.per[key] <= 0:
            del self.per[key]


_GATES: weakref.WeakKeyDictionary[Any, Gate] = weakref.WeakKeyDictionary()


def gate_of(hub: Any) -> Gate:
    gate = _GATES.get(hub)
    if gate is None:
        gate = _GATES[hub] = Gate()
    return gate


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
        429: ("Too many open event streams, for the caller or in all", "application/json", None),
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
    hub = hub_of(request)
    listener = Listener(request, names, time.monotonic, credential_of(request))
    gate = gate_of(hub)
    gate.enter(hub, listener.principal)
    counted = listener.principal
    unsubscribe: list[Callable[[], None]] = []
    tasks: list[asyncio.Future[None]] = []
    try:
        await ws.prepare(request)
        unsubscribe = [
            hub.bus.listen(MATCH_ALL, listener.offer),
            hub.bus.listen(HubStopping, lambda _event: asyncio.ensure_future(ws.close())),
        ]
        listener.refresh_scope()
        hello = {
            "event": "hello",
            "principal": listener.principal.name,
            "events": sorted(listener.names),
            "heartbeat": HEARTBEAT,
            "queue": QUEUE,
        }
        await ws.send_str(json.dumps(hello))
        tasks = [
            asyncio.ensure_future(_write(ws, listener)),
            asyncio.ensure_future(_watch(ws, listener)),
        ]
        async for msg in ws:  # clients have nothing to say; a close ends the stream
            if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                break
    finally:
        gate.leave(counted)
        for undo in unsubscribe:
            undo()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await ws.close()
    return ws


async def _watch(ws: web.WebSocketResponse, listener: Listener) -> None:
    """Resolve the socket's credential again every ``RECHECK`` seconds; close
    the socket (``4003``) when it no longer authenticates for this route."""
    while not ws.closed:
        await asyncio.sleep(RECHECK)
        try:
            principal = await listener.recheck()
        except Exception:  # a store that cannot answer: fail closed
            principal = None
        if principal is None or not principal.has("camera.read"):
            listener.queue.clear()
            await ws.close(code=UNAUTHORISED, message=b"the credential no longer authenticates")
            return
        listener.become(principal)


async def _write(ws: web.WebSocketResponse, listener: Listener) -> None:
    while not ws.closed:
        await listener.wake.wait()
        listener.wake.clear()
        if listener.rescope:
            listener.refresh_scope()
        while listener.queue and not ws.closed:
            if listener.dropped:
                dropped, listener.dropped = listener.dropped, 0
                await ws.send_str(json.dumps({"event": "lag", "dropped": dropped}))
            event = listener.queue.popleft()
            if isinstance(event, WallChanged) and listener.rescope:
                listener.refresh_scope()
            shown = await listener.shown(event)
            if shown is not None:
                await ws.send_str(json.dumps(shown, default=str))
