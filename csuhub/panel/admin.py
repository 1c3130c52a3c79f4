"""The panel's administration pages: the hub's plugins and its site file
(``config.reload``), then people, tokens and sessions (``user.manage``).

Each page renders what it lists on the server, through the same store reads
and functions as the JSON API (``csuhub.web.admin``, ``csuhub.web.users``),
and acts through that API from ``static/admin.js``: a check or reload, an
account change, a token made or revoked, a session ended, each with the API's
permission, refusal and audit. Why the landing page needs ``config.reload``
and not "either of the two": a route declares one permission, and the only
shipped role holding ``user.manage`` (admin) holds ``config.reload`` too; the
tabs show a person only the pages their permissions open.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from csuhub.panel.render import HTML, _, page
from csuhub.security.permissions import SHIPPED_ROLES
from csuhub.web.admin import plugin_list
from csuhub.web.auth import PRINCIPAL_KEY
from csuhub.web.declare import endpoint
from csuhub.web.login import SESSION_KEY
from csuhub.web.requests import hub_of

routes = web.RouteTableDef()

_PAGE = {200: ("The page", HTML, None)}
#: the administration's tabs: path, label msgid, the permission it needs
TABS: tuple[tuple[str, str, str], ...] = (
    ("/panel/admin", _("Plugins and configuration"), "config.reload"),
    ("/panel/admin/users", _("Users"), "user.manage"),
    ("/panel/admin/tokens", _("API tokens"), "user.manage"),
    ("/panel/admin/sessions", _("Sessions"), "user.manage"),
)


def _tabs(request: web.Request) -> list[tuple[str, str]]:
    principal = request[PRINCIPAL_KEY]
    return [(path, label) for path, label, need in TABS if principal.has(need)]


def _values(request: web.Request, **values: Any) -> dict[str, Any]:
    return {"tabs": _tabs(request), "roles": SHIPPED_ROLES, **values}


@routes.get("/panel/admin")
@endpoint("config.reload", tags=("panel",), responses=_PAGE)
async def overview(request: web.Request) -> web.Response:
    """The plugins (loaded, disabled, failed with the reason) and the site file:
    check it, reload it; errors shown at ``file:line``."""
    hub = hub_of(request)
    plugins = plugin_list(hub)
    source = hub.config.source
    return page(
        request,
        "admin/overview.html",
        _values(
            request,
            plugins=plugins,
            failed=sum(1 for p in plugins if p["state"] == "failed"),
            source=str(source) if source is not None else None,
        ),
    )


@routes.get("/panel/admin/users")
@endpoint("user.manage", tags=("panel",), responses=_PAGE)
async def users(request: web.Request) -> web.Response:
    """Every account: roles, camera scope, state; add, grant, revoke, disable,
    enable, set a password."""
    found = await hub_of(request).store.users.list()
    return page(
        request,
        "admin/users.html",
        _values(request, users=[u.public() for u in found], me_name=request[PRINCIPAL_KEY].name),
    )


@routes.get("/panel/admin/tokens")
@endpoint("user.manage", tags=("panel",), responses=_PAGE)
async def tokens(request: web.Request) -> web.Response:
    """Every API token (never its secret); make one (its secret shown once), revoke."""
    found = await hub_of(request).store.list_tokens()
    return page(request, "admin/tokens.html", _values(request, tokens=found))


@routes.get("/panel/admin/sessions")
@endpoint("user.manage", tags=("panel",), responses=_PAGE)
async def sessions(request: web.Request) -> web.Response:
    """The live browser sessions: who, from where, since when; end one."""
    found = await hub_of(request).store.sessions.list()
    own = request.get(SESSION_KEY)
    return page(
        request,
        "admin/sessions.html",
        _values(request, sessions=found, own=own.public_id if own is not None else None),
    )
