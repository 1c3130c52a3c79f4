"""The aiohttp application factory.

The app is built from the hub, never from globals: shared objects travel on
typed ``web.AppKey``s. Plugin routes from ``register_web_routes`` are mounted
as sub-applications under ``/plugins/<plugin>/`` so that a plugin can neither
shadow a core route nor escape authentication.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from csuhub import __version__
from csuhub.web.auth import USER_KEY, auth_middleware, public, require_role
from csuhub.web.cameras import routes as camera_routes
from csuhub.web.recordings import routes as recording_routes
from csuhub.web.requests import HUB_KEY
from csuhub.web.retention import routes as retention_routes

if TYPE_CHECKING:
    from csuhub.hub import Hub

_LOGGER = logging.getLogger(__name__)

STARTED_KEY: web.AppKey[float] = web.AppKey("started", float)


@web.middleware
async def _json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Errors leave as JSON with a message, never as a traceback page."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        _LOGGER.exception("unhandled error on %s %s", request.method, request.path)
        return web.json_response({"error": "internal error; see the hub's log"}, status=500)


def make_app(hub: Hub) -> web.Application:
    app = web.Application(
        middlewares=[_json_errors, auth_middleware(hub.store.token_by_hash)],
        client_max_size=1024 * 1024,
    )
    app[HUB_KEY] = hub
    app[STARTED_KEY] = time.time()
    app.router.add_get("/api/health", health)
    app.router.add_post("/api/config/reload", reload_config)
    app.router.add_routes(camera_routes)
    app.router.add_routes(recording_routes)
    app.router.add_routes(retention_routes)
    for plugin, routes in hub.registry.web_routes.items():
        sub = web.Application()
        sub[HUB_KEY] = hub
        try:
            sub.add_routes(routes)  # type: ignore[arg-type]
        except Exception as err:
            hub.plugin_failed(plugin, f"register_web_routes returned unusable routes: {err}")
            continue
        app.add_subapp(f"/plugins/{plugin}/", sub)
    return app


@public
async def health(request: web.Request) -> web.Response:
    """Liveness and a summary for monitoring; the one unauthenticated endpoint."""
    hub = request.app[HUB_KEY]
    report = hub.health()
    report["uptime_s"] = round(time.time() - request.app[STARTED_KEY], 3)
    report["version"] = __version__
    status = 200 if report["status"] != "stopping" else 503
    return web.json_response(report, status=status)


@require_role("admin")
async def reload_config(request: web.Request) -> web.Response:
    """Validate the site file again and apply what changed; 422 keeps the old config."""
    hub = request.app[HUB_KEY]
    report = await hub.reload(f"api:{request[USER_KEY]}")
    return web.json_response(report, status=200 if report["ok"] else 422, dumps=_dumps)


def _dumps(data: Any) -> str:
    import json

    return json.dumps(data, default=str)
