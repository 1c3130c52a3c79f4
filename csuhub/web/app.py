"""The aiohttp application factory.

The app is built from the hub, never from globals: shared objects travel on
typed ``web.AppKey``s. Plugin routes from ``register_web_routes`` are mounted
as sub-applications under ``/plugins/<plugin>/`` so that a plugin can neither
shadow a core route nor escape authentication.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from csuhub import __version__
from csuhub.cameras.ptz import PtzMoves
from csuhub.panel.app import install as install_panel
from csuhub.panel.pages import panel_errors
from csuhub.web.admin import routes as admin_routes
from csuhub.web.auditing import audit_failures, ended, started
from csuhub.web.auth import (
    USER_KEY,
    auth_middleware,
    hub_refusal_audit,
    hub_scope_check,
    hub_token_lookup,
    public,
)
from csuhub.web.calllines import routes as call_line_routes
from csuhub.web.cameras import PTZ_KEY
from csuhub.web.cameras import routes as camera_routes
from csuhub.web.declare import endpoint
from csuhub.web.ethics import routes as ethics_routes
from csuhub.web.events import routes as event_routes
from csuhub.web.exports import routes as export_routes
from csuhub.web.incidents import routes as incident_routes
from csuhub.web.kiosk import routes as kiosk_routes
from csuhub.web.live import routes as live_routes
from csuhub.web.logbook import routes as logbook_routes
from csuhub.web.login import install as install_login
from csuhub.web.masks import install as install_masks
from csuhub.web.openapi import install as install_openapi
from csuhub.web.recordings import routes as recording_routes
from csuhub.web.requests import (
    CLIENT_FAULTS,
    DISCONNECTS,
    HUB_KEY,
    JSON,
    describe_fault,
    dumps_lenient,
    expect_continue,
    input_error,
    json_error,
    no_body,
    refuse_declared_oversize,
    with_expect,
)
from csuhub.web.retention import routes as retention_routes
from csuhub.web.schemas import error, json_answer
from csuhub.web.users import routes as user_routes
from csuhub.web.validation import MAX_BODY, InputError
from csuhub.web.walls import routes as wall_routes

if TYPE_CHECKING:
    from csuhub.hub import Hub

_LOGGER = logging.getLogger(__name__)

STARTED_KEY: web.AppKey[float] = web.AppKey("started", float)


@web.middleware
async def _json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every error leaves as JSON with a message, never as a traceback or plain text.

    aiohttp's own answers (404 for an unknown path, 405, 413 from its body limit)
    are plain text: they are rewritten here, keeping their status and headers.
    """
    try:
        return await handler(request)
    except web.HTTPException as err:
        if err.status < 400 or err.content_type == JSON:
            raise
        return _as_json(err)
    except InputError as err:
        raise input_error(err) from None
    except DISCONNECTS as err:
        _LOGGER.debug("client left %s %s: %s", request.method, request.path, err)
        return web.Response(status=499)  # nobody reads it; aiohttp needs an answer
    except CLIENT_FAULTS as err:  # a body read elsewhere than read_body, say
        raise json_error(f"the request cannot be read ({describe_fault(err)})") from None
    except Exception:
        _LOGGER.exception("unhandled error on %s %s", request.method, request.path)
        return web.json_response({"error": "internal error; see the hub's log"}, status=500)


def _as_json(err: web.HTTPException) -> web.Response:
    message = err.text or err.reason
    if message.startswith(f"{err.status}: "):  # aiohttp's "404: Not Found"
        message = message.split(": ", 1)[1]
    headers = {k: v for k, v in err.headers.items() if k.lower() not in _ENTITY_HEADERS}
    return web.json_response(
        {"error": message.strip().lower() or err.reason.lower()},
        status=err.status,
        reason=err.reason,
        headers=headers,
    )


_ENTITY_HEADERS = {"content-type", "content-length", "content-encoding"}


@web.middleware
async def _body_limit(request: web.Request, handler: Any) -> web.StreamResponse:
    """A declared body over the limit, or a compressed one, is refused before any
    handler (or auth) runs; bodies without a length are bounded where they are
    read (``read_body``)."""
    refuse_declared_oversize(request)
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):  # the server does not decompress (web.server)
        raise json_error(
            "compressed request bodies are not accepted (send JSON as it is)",
            web.HTTPUnsupportedMediaType,
        )
    return await handler(request)


def make_app(hub: Hub) -> web.Application:
    app = web.Application(
        middlewares=[
            _json_errors,
            panel_errors,  # the panel's pages answer a person with pages (login, 403, 404)
            _body_limit,
            auth_middleware(hub_token_lookup(hub), hub_scope_check(hub), hub_refusal_audit(hub)),
            audit_failures,  # behind auth: refused and failed attempts of audited routes
        ],
        client_max_size=MAX_BODY,
    )
    app[HUB_KEY] = hub
    app[STARTED_KEY] = time.time()
    app[PTZ_KEY] = PtzMoves()
    app.on_shutdown.append(_stop_ptz)
    app.router.add_get("/api/health", health, expect_handler=expect_continue)
    app.router.add_post("/api/config/reload", reload_config, expect_handler=expect_continue)
    app.router.add_routes(with_expect(camera_routes))
    app.router.add_routes(with_expect(recording_routes))
    app.router.add_routes(with_expect(retention_routes))
    app.router.add_routes(with_expect(export_routes))  # /api/exports: a range, with a reason
    install_openapi(app)  # /api/openapi.json and /api/docs
    app.router.add_routes(with_expect(ethics_routes))
    install_login(app, hub)  # /api/auth/*, and the sessions the middleware reads
    app.router.add_routes(with_expect(user_routes))
    app.router.add_routes(with_expect(admin_routes))  # /api/plugins, /api/config/check
    install_masks(app)  # /api/cameras/{id}/masks, /api/mask-lifts
    app.router.add_routes(with_expect(incident_routes))
    app.router.add_routes(with_expect(logbook_routes))
    app.router.add_routes(with_expect(call_line_routes))  # signed by the line, not a session
    app.router.add_routes(with_expect(wall_routes))
    app.router.add_routes(with_expect(event_routes))  # the /api/events WebSocket
    app.router.add_routes(with_expect(live_routes))  # live video WebSockets
    app.router.add_routes(with_expect(kiosk_routes))  # /wall/{wall}/{screen} pages
    install_panel(app)  # /panel/... and the public /transparence
    for plugin, routes in hub.registry.web_routes.items():
        sub = web.Application()
        sub[HUB_KEY] = hub
        try:
            sub.add_routes(with_expect(routes))
        except Exception as err:
            hub.plugin_failed(plugin, f"register_web_routes returned unusable routes: {err}")
            continue
        app.add_subapp(f"/plugins/{plugin}/", sub)
    # last: a path no route claims still answers in JSON, Expect header included
    # (aiohttp evaluates Expect for its own 404 route outside every middleware)
    # [\s\S]: a path with a newline would slip past ".*" to aiohttp's text-plain 404/417
    app.router.add_route("*", r"/{tail:[\s\S]*}", no_route, expect_handler=expect_continue)
    return app


@public
async def no_route(request: web.Request) -> web.Response:
    """The router's 404 and 405, as JSON; 405 when another route has the path."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource.canonical == "/{tail}":
            continue
        _, methods = await resource.resolve(request)
        allowed |= methods
    if allowed:
        raise web.HTTPMethodNotAllowed(
            request.method,
            allowed,
            text=json.dumps({"error": "method not allowed"}),
            content_type=JSON,
        )
    raise json_error("not found", web.HTTPNotFound)


async def _stop_ptz(app: web.Application) -> None:
    """No camera keeps turning after the API that moved it is gone."""
    await app[PTZ_KEY].stop_all()


@endpoint(
    public=True,
    tags=("meta",),
    responses={
        200: json_answer("The hub runs", {"type": "object", "required": ["status", "version"]}),
        503: json_answer("The hub is stopping", {"type": "object", "required": ["status"]}),
    },
)
async def health(request: web.Request) -> web.Response:
    """Liveness and a summary for monitoring; the one unauthenticated endpoint."""
    hub = request.app[HUB_KEY]
    report = hub.health()
    report["uptime_s"] = round(time.time() - request.app[STARTED_KEY], 3)
    report["version"] = __version__
    status = 200 if report["status"] != "stopping" else 503
    return web.json_response(report, status=status)


_RELOAD_REPORT = {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}


@endpoint(
    "config.reload",
    tags=("admin",),
    audited="config.reload",
    body={"type": "object", "maxProperties": 0, "description": "nothing, or {}"},
    responses={
        200: json_answer("The site file was applied: what changed", _RELOAD_REPORT),
        400: error("A body other than nothing or {}"),
        422: json_answer("The site file is refused; the old config stays", _RELOAD_REPORT),
    },
)
async def reload_config(request: web.Request) -> web.Response:
    """Validate the site file again and apply what changed; 422 keeps the old config."""
    await no_body(request)
    hub = request.app[HUB_KEY]
    await started(request, "config.reload", None)
    report = await hub.reload(f"api:{request[USER_KEY]}")
    outcome = "ok" if report["ok"] else "failed"
    await ended(request, "config.reload", None, outcome, errors=len(report.get("errors") or ()))
    return web.json_response(report, status=200 if report["ok"] else 422, dumps=dumps_lenient)
