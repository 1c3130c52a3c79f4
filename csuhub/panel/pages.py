"""The panel's own pages: home, login, password change, its error pages and its
static files. The login and password pages are forms whose module posts to
``/api/auth/login`` and ``/api/auth/password`` (the same lockout, audit and
CSRF rules as every client); logout posts to ``/api/auth/logout``.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from csuhub.panel.render import HTML, STATIC_ROOT, _, nav_for, page
from csuhub.web.auth import PRINCIPAL_KEY
from csuhub.web.declare import Param, endpoint
from csuhub.web.login import session_principal
from csuhub.web.schemas import error

routes = web.RouteTableDef()

PANEL_PREFIXES = ("/panel/", "/transparence", "/transparency")
#: what the static route serves, by suffix (anything else is a 404)
MEDIA = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}
_STATIC_PATH = re.compile(r"[a-z0-9_-]+(/[a-z0-9_-]+)*(\.[a-z0-9_-]+)*\.(js|css|png|svg|json)")
#: a ``next`` after the login: a panel page of this hub, nothing else (no open redirect)
_NEXT = re.compile(r"/panel/[A-Za-z0-9_\-/]{0,120}(\?[A-Za-z0-9_=&%.\-]{0,200})?")
LANG = Param("lang", {"enum": ["fr", "en"]}, description="the page's language (kept in a cookie)")
PAGE = {200: ("The page", HTML, None)}


def check_next(value: str | None) -> str | None:
    """``value`` if it is a panel page's path (dot segments and ``//`` refused)."""
    if value is None or _NEXT.fullmatch(value) is None or ".." in value or "//" in value:
        return None
    return value


def to_login(location: str) -> web.HTTPSeeOther:
    """The redirect to the login, as a small HTML page (what OpenAPI says)."""
    link = html.escape(location, quote=True)
    return web.HTTPSeeOther(location, text=f'<a href="{link}">login</a>', content_type="text/html")


def is_panel(path: str) -> bool:
    return path == "/panel" or path.startswith(PANEL_PREFIXES)


@web.middleware
async def panel_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """On panel pages, a person gets pages, not JSON: no session sends the
    browser to the login (and back after it); any other 4xx (a refusal, a
    missing thing, a bad query) is an HTML page saying so with the same status.
    The API's answers are left as they are."""
    try:
        return await handler(request)
    except web.HTTPException as err:
        if not is_panel(request.path) or request.path.startswith("/panel/static/"):
            raise
        if request.method not in ("GET", "HEAD") or err.status < 400:
            raise
        if err.status == 401:
            target = check_next(request.path_qs) or "/panel/"
            login = f"/panel/login?{urlencode({'next': target}, safe='/')}"
            raise to_login(login) from None
        titles = {403: _("Not allowed"), 404: _("Not found")}
        return page(
            request,
            "error.html",
            {
                "status": err.status,
                "title": titles.get(err.status, _("This request cannot be answered")),
                "detail": _detail(err),
            },
            status=err.status,
        )


def _detail(err: web.HTTPException) -> str:
    """The refusal's own message (the API's JSON ``error``, or its text)."""
    text = err.text or ""
    try:
        said = json.loads(text)
    except ValueError:
        return text[:300]
    return str(said.get("error", ""))[:300] if isinstance(said, dict) else ""


@routes.get("/panel/")
@endpoint(public=True, tags=("panel",), params=(LANG,), responses={
    200: ("Home: the areas this person may open", HTML, None),
    303: ("No session: to the login page", HTML, None),
})  # fmt: skip
async def home(request: web.Request) -> web.Response:
    """The first page after the login: the areas this person may open."""
    principal = await session_principal(request)
    if principal is None:
        raise to_login("/panel/login")
    request[PRINCIPAL_KEY] = principal
    return page(request, "home.html", {"areas": nav_for(principal)})


@routes.get("/panel/login")
@endpoint(public=True, tags=("panel",), params=(
    LANG, Param("next", description="the panel page to open after the login"),
), responses=PAGE)  # fmt: skip
async def login_page(request: web.Request) -> web.Response:
    """The login form; its module posts to ``/api/auth/login``."""
    target = check_next(request.query.get("next")) or "/panel/"
    return page(request, "login.html", {"next": target})


@routes.get("/panel/password")
@endpoint(public=True, tags=("panel",), params=(LANG,), responses=PAGE)
async def password_page(request: web.Request) -> web.Response:
    """The password change form (with a session: that person's; else by name,
    e.g. a password that has expired); it posts to ``/api/auth/password``."""
    principal = await session_principal(request, expired_ok=True)
    if principal is not None:
        request[PRINCIPAL_KEY] = principal
    return page(request, "password.html", {})


@routes.get("/panel/static/{version}/{path:.+}")
@endpoint(public=True, tags=("panel-files",), params=(
    Param("version", where="path", description="the files' digest, from the page"),
    Param("path", where="path", description="a module, style sheet or image"),
), responses={
    200: ("The file, cached for ever (its URL changes with it)", "text/javascript", None),
    404: error("No such file"),
})  # fmt: skip
async def static(request: web.Request) -> web.StreamResponse:
    """The panel's ES modules, styles and images: public, they hold no secret.
    The version is not checked: a page loaded just before an upgrade still
    gets its modules; the path is checked against the static root."""
    name = request.match_info["path"]
    if len(name) > 200 or _STATIC_PATH.fullmatch(name) is None:
        raise web.HTTPNotFound(text="no such file")
    path = (STATIC_ROOT / name).resolve()
    if not path.is_relative_to(STATIC_ROOT) or not path.is_file():
        raise web.HTTPNotFound(text="no such file")
    return web.Response(
        body=path.read_bytes(),
        headers={
            "Content-Type": MEDIA[path.suffix],
            "Cache-Control": "public, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
        },
    )
