"""``GET /api/live/{camera_id}?stream=sub|main``: a camera's live picture
over a WebSocket, as fragmented MP4 for Media Source Extensions.

The protocol (docs/live.md): a text ``init`` message (mime, codec, size,
masked), a binary frame with the init segment, then binary frames of whole
fragments, the first at a keyframe; ``offline`` / ``online`` text messages
when the camera drops and returns (``init`` and the init segment follow
``online``). A client that cannot play the codec (H.265 in most browsers)
sends ``{"type": "unsupported"}`` and is answered with the fallback to use.

Why the checks here: the route is declared like any other (permission
``live.view``, the camera in the caller's scope, a 404 otherwise), and a
WebSocket opened with a session cookie must come from the hub's own pages:
browsers send cookies on cross-site WebSocket handshakes and no CSRF token
travels with them, so a foreign (or missing) ``Origin`` is refused. Each view
is audited: ``live.start`` when the picture starts and ``live.stop`` (its
duration and bytes, and why it ended) when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from csuhub.events import WallChanged
from csuhub.live.manager import STREAMS
from csuhub.live.viewer import Viewer
from csuhub.security.permissions import Principal
from csuhub.security.sessions import origin_matches
from csuhub.walls.parse import named_walls
from csuhub.web.auditing import ENDED_KEY, STARTED_KEY, entry
from csuhub.web.auth import PRINCIPAL_KEY, camera_placement
from csuhub.web.declare import Param, endpoint
from csuhub.web.events import Listener, credential_of
from csuhub.web.login import SESSION_KEY
from csuhub.web.requests import hub_of, json_error, path_slug
from csuhub.web.schemas import CAMERA_ID, binary, error, json_answer

routes = web.RouteTableDef()

#: close codes (4000-4999 are the application's)
GOING_AWAY = 1001
TOO_SLOW = 4001
UNSUPPORTED = 4002
#: the camera may not film (no valid prefectoral authorisation), or the viewer
#: may no longer see it (credential revoked or ended, permission or scope lost)
UNAUTHORISED = 4003
#: too many live sockets (the principal's or the hub's): try again later
TRY_AGAIN_LATER = 1013
#: seconds a close may take before the connection is cut
CLOSE_TIMEOUT = 2.0

STREAM = Param(
    "stream",
    {"type": "string", "enum": list(STREAMS)},
    description="sub (the default: tiles) or main",
)

STATUS = {
    "type": "object",
    "required": ["camera", "stream", "state", "viewers"],
    "properties": {
        "camera": {"type": "string"},
        "stream": {"type": "string"},
        "state": {"type": "string", "enum": ["idle", "starting", "online", "offline"]},
        "reason": {"type": "string"},
        "codec": {"type": ["string", "null"]},
        "masked": {"type": "boolean"},
        "viewers": {"type": "integer"},
    },
}


class LiveSocket(web.WebSocketResponse):
    """A live view's WebSocket: its viewer hears of the close before the close
    frame goes out, whoever closes it (this module, or aiohttp itself on a
    protocol error or the client's close): the viewer writes fragments
    straight to the transport, and nothing may follow a close frame."""

    viewer: Viewer | None = None

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True
    ) -> bool:
        if self.viewer is not None:
            self.viewer.socket_closing()
        return await super().close(code=code, message=message, drain=drain)


def _stream(request: web.Request) -> str:
    unknown = sorted(set(request.query) - {"stream"})
    if unknown:
        raise json_error(f"unknown query parameter {unknown[0]!r}")
    values = request.query.getall("stream", ["sub"])
    if len(values) != 1 or values[0] not in STREAMS:
        raise json_error("stream must be sub or main, once")
    return values[0]


def _status(hub: Any, camera_id: str, stream: str) -> dict[str, Any]:
    upstream = hub.live.upstreams.get((camera_id, stream))
    if upstream is None:
        return {"camera": camera_id, "stream": stream, "state": "idle", "viewers": 0}
    return {
        "camera": camera_id,
        "stream": stream,
        "state": upstream.state,
        "reason": upstream.reason,
        "codec": upstream.info.codec if upstream.info else None,
        "masked": upstream.masked,
        "viewers": len(upstream.viewers),
    }


@routes.get("/api/live/{camera_id}")
@endpoint(
    "live.view",
    camera="camera_id",
    tags=("live",),
    audited="live.start",
    summary="Live video of a camera (WebSocket)",
    params=(CAMERA_ID, STREAM),
    responses={
        101: binary(
            "The WebSocket: fragmented MP4 and control messages (docs/live.md)", "video/mp4"
        ),
        200: json_answer("Without a WebSocket upgrade: the stream's state", STATUS),
        403: error(
            "A session's WebSocket from a page of another site; a camera without a valid"
            " prefectoral authorisation (a WebSocket is closed with 4003 and the reason)"
        ),
    },
)
async def live_view(request: web.Request) -> web.StreamResponse:
    """Opens the camera's live picture; a plain GET tells the stream's state.

    See docs/live.md for the messages. Audited: ``live.start`` and ``live.stop``."""
    hub = hub_of(request)
    camera_id = path_slug(request, "camera_id", "camera")
    stream = _stream(request)
    if camera_id not in hub.cameras.drivers:
        raise json_error("no such camera, or it is not adopted", web.HTTPNotFound)
    # no permessage-deflate (browsers offer it): video does not compress, and the
    # fragments' frames are built once for every viewer (csuhub.live.wsframe)
    ws = LiveSocket(heartbeat=20.0, max_msg_size=4096, timeout=CLOSE_TIMEOUT, compress=False)
    upgrade = ws.can_prepare(request).ok
    refused = hub.live.refusal(camera_id)
    if refused is not None and not upgrade:
        raise json_error(refused, web.HTTPForbidden)
    if not upgrade:
        return web.json_response(_status(hub, camera_id, stream))
    if SESSION_KEY in request:  # a browser's cookie: its page must be ours
        origin = request.headers.get("Origin")
        if origin is None or not origin_matches(origin, request.host):
            raise json_error("the WebSocket's Origin is not this hub", web.HTTPForbidden)
    await ws.prepare(request)
    # a browser never sees a refused handshake's status: the reason goes in
    # the close frame, where the page can read it
    if refused is not None:
        return await _refuse(request, ws, camera_id, stream, refused)
    principal = request[PRINCIPAL_KEY]
    crowded = hub.live.gate.enter(hub, principal)
    if crowded is not None:
        return await _refuse(request, ws, camera_id, stream, crowded, TRY_AGAIN_LATER, 429)
    try:
        _bound_send_buffer(request, hub.live.settings.send_buffer)
        return await _serve(request, ws, hub, camera_id, stream)
    finally:
        hub.live.gate.leave(principal)


async def _refuse(
    request: web.Request,
    ws: web.WebSocketResponse,
    camera_id: str,
    stream: str,
    why: str,
    code: int = UNAUTHORISED,
    status: int = 403,
) -> web.WebSocketResponse:
    request[ENDED_KEY] = True
    await entry(
        request, "live.start", camera_id, outcome="refused", stream=stream, error=why, status=status
    )
    with contextlib.suppress(Exception, asyncio.TimeoutError):
        await asyncio.wait_for(ws.close(code=code, message=_reason(why)), CLOSE_TIMEOUT)
    return ws


def _reason(why: str) -> bytes:
    """A close frame's reason: 123 bytes at most, valid UTF-8."""
    return why.encode()[:120].decode(errors="ignore").encode()


def _bound_send_buffer(request: web.Request, size: int) -> None:
    """Fix the socket's send buffer (``LiveSettings.send_buffer``): what a
    stuck viewer's kernel holds is then bounded, and the hub sees it fall behind."""
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None and size > 0:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


async def _serve(
    request: web.Request, ws: LiveSocket, hub: Any, camera_id: str, stream: str
) -> web.WebSocketResponse:
    principal = request[PRINCIPAL_KEY]
    viewer = Viewer(
        ws.send_str,
        ws.send_bytes,
        hub.live.settings.limits,
        name=principal.name,
        transport=request.transport,
    )
    ws.viewer = viewer
    if ws.closed:  # closed before the viewer was known: it never writes directly
        viewer.socket_closing()
    began = time.monotonic()
    request[STARTED_KEY] = await entry(request, "live.start", camera_id, stream=stream)
    why = "closed by the viewer"
    code, message = 1000, b""
    upstream = None
    tasks: list[asyncio.Future[Any]] = []
    try:  # from here on, live.stop is written whatever happens
        upstream = hub.live.attach(camera_id, stream, viewer)
        pump = asyncio.ensure_future(viewer.pump())
        reader = asyncio.ensure_future(_read(ws, viewer, upstream, stream))
        kicked = asyncio.ensure_future(viewer.kicked.wait())
        guard = asyncio.ensure_future(_guard(request, hub, camera_id))
        tasks = [pump, reader, kicked, guard]
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if guard in done and not guard.cancelled() and guard.exception() is None:
            why = guard.result()
            code, message = UNAUTHORISED, _reason(why)
        elif viewer.too_slow:
            why, code, message = "too slow", TOO_SLOW, b"too slow: fell behind for too long"
        elif viewer.closing:
            why, code, message = "hub stopping", GOING_AWAY, b"the hub is stopping"
        elif reader in done and reader.result():
            why, code, message = "codec unsupported", UNSUPPORTED, b"codec unsupported"
        elif pump in done and pump.exception() is not None:
            why = "connection lost"
    except RuntimeError as err:
        if upstream is not None:
            raise
        # the hub is stopping (attach refuses): live.stop is still written
        why, code, message = "hub stopping", GOING_AWAY, _reason(str(err))
    finally:
        if upstream is not None:
            hub.live.detach(upstream, viewer)
        else:
            viewer.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # closing a stuck socket cuts the connection, and aiohttp then cancels this
        # handler: the close and the live.stop entry run shielded, to the end
        ending = asyncio.ensure_future(
            _finish(request, ws, code, message, camera_id, stream, began, viewer, why)
        )
        _ENDING.add(ending)
        ending.add_done_callback(_ENDING.discard)
        await asyncio.shield(ending)
    return ws


#: the endings under way (the loop keeps only weak references to tasks)
_ENDING: set[asyncio.Future[None]] = set()


async def _finish(
    request: web.Request,
    ws: web.WebSocketResponse,
    code: int,
    message: bytes,
    camera_id: str,
    stream: str,
    began: float,
    viewer: Viewer,
    why: str,
) -> None:
    # a close stuck behind a full socket ends in a cancellation from within aiohttp
    # (it cuts the connection): the audit entry is written all the same
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await asyncio.wait_for(ws.close(code=code, message=message), CLOSE_TIMEOUT)
    if not ws.closed and request.transport is not None:
        request.transport.close()  # a close stuck behind a full socket
    request[ENDED_KEY] = True
    await entry(
        request,
        "live.stop",
        camera_id,
        ref=request[STARTED_KEY],
        stream=stream,
        duration=round(time.monotonic() - began, 3),
        bytes=viewer.sent_bytes,
        skips=viewer.skips,
        ended=why,
    )


async def _guard(request: web.Request, hub: Any, camera_id: str) -> str:
    """Why the socket must close, when it must: its credential is resolved
    again every ``LiveSettings.recheck`` seconds (at the same instants for
    every socket: ``LiveManager.rechecks``) and at each ``wall.changed``
    (csuhub.web.events.Listener, as the events socket does), and the camera
    checked against the scope computed afresh. A live socket stays open for
    days on a wall: a revoked token, a disabled account, an ended session, a
    withdrawn ``live.view`` or a camera taken off the kiosk's wall stops it."""
    listener = Listener(request, frozenset(), time.monotonic, credential_of(request))
    wake = asyncio.Event()
    # only a scope naming walls (a kiosk's) changes with them
    walls = named_walls(listener.principal)
    undo = hub.bus.listen(WallChanged, lambda event: wake.set() if event.wall in walls else None)
    # every socket checks at the same instants: one store probe for them all
    leave = hub.live.rechecks.join(wake)
    try:
        while True:
            await wake.wait()
            wake.clear()
            why = await _not_allowed(listener, hub, camera_id)
            if why is not None:
                return why
    finally:
        leave()
        undo()


async def _recheck(hub: Any, listener: Listener) -> Principal | None:
    """The socket's credential resolved again. The sockets of one credential
    and address woken together (a kiosk's tiles, at the same tick) share one
    resolution: what it answers depends on nothing else, and it started in
    this turn of the loop, after whatever woke them."""
    credential = listener.credential
    if credential is None:
        return None
    key = (credential.kind, credential.key, listener.request.remote)
    underway = hub.live.rechecking
    shared = underway.get(key)
    if shared is None or shared.done():
        shared = underway[key] = asyncio.ensure_future(listener.recheck())

        def forget(done: asyncio.Future[Any]) -> None:
            if underway.get(key) is done:
                del underway[key]

        shared.add_done_callback(forget)
    return await asyncio.shield(shared)


async def _not_allowed(listener: Listener, hub: Any, camera_id: str) -> str | None:
    try:
        principal = await _recheck(hub, listener)
    except Exception:  # a store that cannot answer: fail closed
        principal = None
    if principal is None:
        return "the credential no longer authenticates"
    if not principal.has("live.view"):
        return "live.view was withdrawn"
    listener.become(principal)
    listener.refresh_scope()  # a kiosk's: the cameras its wall shows now
    scope = listener.principal.scope
    if scope.everything:
        return None
    try:
        district, groups = await camera_placement(hub, camera_id)
        allowed = scope.allows(camera_id, district, groups)
    except Exception:  # fail closed
        allowed = False
    return None if allowed else "the camera is no longer in the viewer's scope"


async def _read(ws: web.WebSocketResponse, viewer: Viewer, upstream: Any, stream: str) -> bool:
    """The viewer's messages until it closes; True when it said it cannot
    play the codec (answered with the fallback first)."""
    async for msg in ws:
        if msg.type != WSMsgType.TEXT:
            continue
        try:
            said = json.loads(msg.data)
        except ValueError:
            continue
        if isinstance(said, dict) and said.get("type") == "unsupported":
            codec = upstream.info.codec if upstream.info else None
            fallback = "sub" if stream == "main" else "snapshot"
            viewer.control({"type": "unsupported", "codec": codec, "fallback": fallback})
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(viewer.flushed(), CLOSE_TIMEOUT)
            return True
    return False
