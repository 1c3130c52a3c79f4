"""The kiosk pages: a wall's screen in a browser, full-window, live (docs/kiosk.md).

A screen machine holds no password: it opens ``/wall/login?token=...`` once
(or posts the token from the form that page shows), the token is exchanged for
an ordinary session cookie (HttpOnly, SameSite=Strict) and the browser is sent
on, by a 303, to the screen's page, so the token stays in neither the address
bar nor the page. Only a token whose role may view walls is taken, and only if
its account holds no more than the token does: the session acts as the account,
so an operator's personal account would give the screen more than the token.

A kiosk watches 24/7 while sessions have an idle and an absolute timeout (a
shift): the page pings ``POST /wall/session`` (which, like any request, keeps
the session from going idle), and past half the absolute timeout the ping
swaps the session for a new one, as long as the account still holds a working
wall token (revoking the screen's token ends it at the next renewal; disabling
the account ends it at once).

The page itself is a template with escaped values and a strict
Content-Security-Policy (scripts and connections to this hub only, nothing
inline); its ES modules are served from ``csuhub/web/static/kiosk/``.

This module is longer than 450 lines because its three small doors (the token
exchange, the page and its keep-alive, the static modules) share one route
table, the page headers and the exchange's checks; the app mounts that one
table.
"""

from __future__ import annotations

import functools
import hashlib
import re
import string
from collections.abc import Mapping
from dataclasses import replace
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from aiohttp import web

from csuhub.security.identity import Identity
from csuhub.security.permissions import permissions_of
from csuhub.security.sessions import COOKIE, SECURE_COOKIE
from csuhub.security.tokens import hash_secret
from csuhub.store.audited import Entry
from csuhub.walls.parse import may_see_wall
from csuhub.web.auth import PRINCIPAL_KEY
from csuhub.web.declare import Param, endpoint
from csuhub.web.login import LOGINS_KEY, SESSION_KEY, refuse_foreign_origin
from csuhub.web.requests import hub_of, json_error, path_slug, read_body
from csuhub.web.schemas import error, json_answer
from csuhub.web.validation import InputError

if TYPE_CHECKING:
    from csuhub.security.login import Logins
    from csuhub.store.sessions import SessionRecord

routes = web.RouteTableDef()

STATIC_ROOT = Path(__file__).resolve().parent / "static"
KIOSK_ROOT = STATIC_ROOT / "kiosk"
TEMPLATES = STATIC_ROOT / "templates"
#: what the static route serves, by suffix (anything else is a 404)
MEDIA = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
LANGS = ("fr", "en")
WALL_PERMISSION = "wall.view"
#: where the login may send the browser: a kiosk page of this hub, nothing else
_NEXT = re.compile(r"/wall/[a-z0-9][a-z0-9_-]{0,62}/[a-z0-9][a-z0-9_-]{0,62}(\?lang=(fr|en))?")
_STATIC_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}\.(js|css)")
MAX_TOKEN = 256
#: the page's keep-alive: often enough for the shortest idle timeout (60 s)
MAX_PING = 60.0

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "media-src 'self' blob:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
_HTML = "text/html"
LABELS = {
    "fr": {
        "lang": "fr",
        "title": "Connexion de l'écran mural",
        "token": "Jeton",
        "go": "Ouvrir",
        "confirm": "Un lien veut connecter ce navigateur à un écran mural : ouvrir pour confirmer.",
    },
    "en": {
        "lang": "en",
        "title": "Wall screen log-in",
        "token": "Screen token",
        "go": "Open",
        "confirm": "A link wants to log this browser into a wall screen: open to confirm.",
    },
}

WALL_ID = Param("wall", {"type": "string"}, where="path", description="a wall's id")
SCREEN_ID = Param("screen", {"type": "string"}, where="path", description="a screen's id")
LANG = Param("lang", {"enum": list(LANGS)}, description="the labels' language (default fr)")
#: the keep-alive's answer: the (new) session's CSRF token, seconds to the next ping
_SESSION_ANSWER = {
    "type": "object",
    "required": ["csrf_token", "renewed", "ping"],
    "properties": {"csrf_token": {"type": "string"}, "renewed": {"type": "boolean"}},
}


def _template(name: str) -> string.Template:
    return string.Template((TEMPLATES / name).read_text(encoding="utf-8"))


def _html(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type=_HTML, headers=PAGE_HEADERS)


def check_next(value: str | None) -> str | None:
    """The page to go to after the login: a kiosk page's path (and its
    ``?lang=``) on this hub, else None. Absolute URLs, ``//host``, backslashes,
    dot segments and anything under another path are refused: no open redirect."""
    if value is None or len(value) > 200 or _NEXT.fullmatch(value) is None:
        return None
    return value


def _lang(request: web.Request) -> str:
    unknown = sorted(set(request.query) - {"lang"})
    if unknown:
        raise json_error(f"unknown query parameter {unknown[0][:40]!r}")
    values = request.query.getall("lang", ["fr"])
    if len(values) != 1 or values[0] not in LANGS:
        raise json_error("lang is fr or en, once")
    return values[0]


# -- the token exchange -----------------------------------------------------------


def kiosk_fit(token: Identity, account_roles: tuple[str, ...]) -> str | None:
    """Why a token may not open a kiosk session, or None: its role must grant
    ``wall.view``, and its account hold nothing more (the session acts as the
    account, with the account's roles)."""
    granted = permissions_of(token.roles)
    if WALL_PERMISSION not in granted:
        return f"the token's role does not grant {WALL_PERMISSION}"
    if not permissions_of(account_roles) <= granted:
        return "the token's account holds more than the token; use a wall account's token"
    return None


async def _exchange(request: web.Request, secret: str, target: str) -> web.Response:
    hub = hub_of(request)
    logins: Logins | None = request.config_dict.get(LOGINS_KEY)
    if logins is None:
        raise json_error("sessions are not available", web.HTTPServiceUnavailable)
    token = await hub.store.token_identity(hash_secret(secret))
    if token is None:  # anonymous: not audited, like a bad bearer token
        raise json_error("invalid or revoked token", web.HTTPUnauthorized)
    source = request.remote
    who = token.principal(via=f"token:{token.token}", source=source)
    account = await hub.store.users.get(token.name)
    why = "the account is gone" if account is None else kiosk_fit(token, account.roles)
    if why is not None or account is None:
        await hub.store.audit_event(
            who, "login.failed", token.name, outcome="refused", why=why, token=token.token
        )
        raise json_error(why or "refused", web.HTTPForbidden)

    def entry(public_id: str) -> Entry:
        params = {"roles": list(account.roles), "token": token.token, "kiosk": True}
        return Entry(replace(who, via=public_id), "login", token.name, params)

    opened = await logins.sessions.start(
        token.user_id, source=source, user_agent=request.headers.get("User-Agent"), audit=entry
    )
    response = web.HTTPSeeOther(target, headers={**PAGE_HEADERS})
    _set_cookie(response, logins, request.secure, opened.cookie)
    raise response


def _set_cookie(response: web.StreamResponse, logins: Logins, tls: bool, value: str) -> None:
    """As ``/api/auth/login`` sets it: HttpOnly, SameSite=Strict, Path=/."""
    secure = logins.sessions.secure_cookie(tls)
    name = SECURE_COOKIE if secure else COOKIE
    response.set_cookie(name, value, path="/", httponly=True, samesite="Strict", secure=secure)
    if secure:
        response.del_cookie(COOKIE, path="/")


def _default_next(request: web.Request, scope: tuple[str, ...]) -> str | None:
    """Without ``next``: the first screen of the one wall a kiosk's scope names."""
    walls = {s.partition(":")[2] for s in scope if s.startswith("wall:")}
    manager = getattr(hub_of(request), "walls", None)
    if len(walls) != 1 or manager is None:
        return None
    wall = manager.walls.get(next(iter(walls)))
    if wall is None or not wall.screens:
        return None
    return f"/wall/{wall.id}/{next(iter(wall.screens))}"


def parse_login(fields: Mapping[str, list[str]]) -> tuple[str, str | None]:
    """The login's ``token`` and ``next`` (query or form), each once; ``next``
    checked by :func:`check_next`. A malformed token is an InputError like a
    missing one: no token is looked up unless it could be one."""
    unknown = sorted(set(fields) - {"token", "next"})
    if unknown:
        raise InputError(f"unknown field {unknown[0][:40]!r}; this takes token and next")
    if any(len(v) != 1 for v in fields.values()):
        raise InputError("give token and next once each")
    nxt = fields.get("next", [None])[0]
    target = check_next(nxt)
    if nxt is not None and target is None:
        raise InputError("next must be a kiosk page of this hub: /wall/<wall>/<screen>")
    secret = fields.get("token", [""])[0].strip()
    if not secret:
        raise InputError("token is required")
    if len(secret) > MAX_TOKEN or not (secret.isascii() and secret.isprintable()):
        raise InputError("this is not a token")
    return secret, target


async def _login(request: web.Request, fields: Mapping[str, list[str]]) -> web.Response:
    secret, target = parse_login(fields)
    if target is None:
        found = await hub_of(request).store.token_identity(hash_secret(secret))
        target = _default_next(request, found.scope if found else ())
        if target is None and found is not None:
            raise json_error("say which screen: next=/wall/<wall>/<screen>")
    return await _exchange(request, secret, target or "/")


@routes.get("/wall/login")
@endpoint(
    public=True,
    tags=("kiosk",),
    params=(
        Param("token", description="a wall token (exchanged for a session cookie)"),
        Param("next", description="the kiosk page to go to: /wall/<wall>/<screen>"),
        LANG,
    ),
    responses={
        200: (
            "Without a token, or from a link of another site (Sec-Fetch-Site), or over"
            " a session: the form that asks for one (pre-filled; the user confirms)",
            _HTML,
            None,
        ),
        303: ("Logged in: the session cookie is set, on to next", _HTML, None),
        400: error("A bad next, or a field given twice"),
        401: error("An invalid or revoked token"),
        403: error("A token that may not open a kiosk (no wall.view, or a broader account)"),
    },
    audited="login",
)
async def kiosk_login(request: web.Request) -> web.Response:
    """Exchange a wall token for a session cookie, once, and go on to the page.

    Without ``token``, a form to paste it into (posted, so it is not kept in
    the browser's history). With one, the exchange happens only for an address
    typed into this browser (:func:`typed_here`); else the form, pre-filled."""
    fields = {k: request.query.getall(k) for k in request.query}
    lang = fields.pop("lang", ["fr"])[0]
    token = ""
    if "token" in fields:
        if typed_here(request):
            return await _login(request, fields)
        secret, _ = parse_login(fields)  # a bad one is a 400 here too
        token = secret
    labels = LABELS[lang if lang in LANGS else "fr"]
    nxt = check_next(fields.get("next", [None])[0]) or ""
    values = {k: escape(v) for k, v in labels.items()}
    page = _template("login.html").substitute(
        values,
        lang=labels["lang"],
        next=escape(nxt),
        value=escape(token, quote=True),
        confirm_hidden="" if token else " hidden",
    )
    return _html(page)


def typed_here(request: web.Request) -> bool:
    """Whether a ``GET /wall/login?token=`` may log the browser in at once:
    the address was typed or bookmarked (``Sec-Fetch-Site: none``), or the
    browser holds no session yet and the request did not come from another
    site (no ``Sec-Fetch-Site``, or ``same-origin``). Otherwise a link on
    another page could swap the browser's session for one of its choosing
    (login CSRF): the pre-filled form is shown and a person confirms it."""
    site = request.headers.get("Sec-Fetch-Site")
    if site == "none":
        return True
    has_session = COOKIE in request.cookies or SECURE_COOKIE in request.cookies
    return not has_session and site in (None, "same-origin")


@routes.post("/wall/login")
@endpoint(
    public=True,
    tags=("kiosk",),
    body={
        "type": "object",
        "properties": {"token": {"type": "string"}, "next": {"type": "string"}},
        "required": ["token"],
        "description": "application/x-www-form-urlencoded",
    },
    body_required=True,
    responses={
        303: ("Logged in: the session cookie is set, on to next", _HTML, None),
        400: error("A bad next, a missing token"),
        401: error("An invalid or revoked token"),
        403: error("A token that may not open a kiosk, or a foreign Origin"),
        415: error("Not a form"),
    },
    audited="login",
)
async def kiosk_login_form(request: web.Request) -> web.Response:
    """The same exchange from the login form (application/x-www-form-urlencoded)."""
    refuse_foreign_origin(request)
    if request.content_type != "application/x-www-form-urlencoded":
        raise json_error(
            "send the form (application/x-www-form-urlencoded)", web.HTTPUnsupportedMediaType
        )
    raw = await read_body(request)
    try:
        fields = parse_qs(raw.decode("ascii"), keep_blank_values=True, strict_parsing=bool(raw))
    except (UnicodeDecodeError, ValueError):
        raise json_error("the form cannot be read") from None
    return await _login(request, fields)


# -- the page and its keep-alive ----------------------------------------------------


@routes.get("/wall/{wall}/{screen}")
@endpoint(
    WALL_PERMISSION,
    tags=("kiosk",),
    params=(WALL_ID, SCREEN_ID, LANG),
    responses={
        200: ("The screen's page (its ES modules do the rest)", _HTML, None),
        404: error("No such wall or screen, or not one the caller may see"),
    },
)
async def kiosk_page(request: web.Request) -> web.Response:
    """A wall's screen, full-window, following the hub's changes live."""
    wall_id = path_slug(request, "wall", "wall")
    screen_id = path_slug(request, "screen", "screen")
    lang = _lang(request)
    manager = getattr(hub_of(request), "walls", None)
    wall = None if manager is None else manager.walls.get(wall_id)
    if wall is None or not may_see_wall(request[PRINCIPAL_KEY], wall_id):
        raise json_error("no such wall", web.HTTPNotFound)
    screen = wall.screens.get(screen_id)
    if screen is None:
        raise json_error("no such screen", web.HTTPNotFound)
    session: SessionRecord | None = request.get(SESSION_KEY)
    page = _template("kiosk.html").substitute(
        lang=lang,
        title=escape(f"{wall.name} — {screen.name}"),
        wall=escape(wall_id, quote=True),
        screen=escape(screen_id, quote=True),
        csrf=escape(session.csrf if session else "", quote=True),
        ping=_ping(request),
        version=assets_version(),
    )
    return _html(page)


def _ping(request: web.Request) -> str:
    logins = request.config_dict.get(LOGINS_KEY)
    idle = logins.sessions.policy.idle if logins is not None else MAX_PING * 3
    return f"{min(MAX_PING, idle / 3):g}"


@routes.post("/wall/session")
@endpoint(
    WALL_PERMISSION,
    tags=("kiosk",),
    responses={
        200: json_answer(
            "The session lives on (renewed past half its absolute timeout)", _SESSION_ANSWER
        ),
        400: error("Not a session (a bearer token needs no keep-alive)"),
        403: error("The CSRF token is wrong, or the screen's token was revoked"),
    },
    audited="session.renewed",
)
async def kiosk_session(request: web.Request) -> web.Response:
    """The kiosk page's keep-alive; renews a session past half its absolute timeout."""
    session: SessionRecord | None = request.get(SESSION_KEY)
    logins: Logins | None = request.config_dict.get(LOGINS_KEY)
    if session is None or logins is None:
        raise json_error("this keeps a kiosk's session alive; a bearer token needs none")
    answer: dict[str, Any] = {"csrf_token": session.csrf, "renewed": False}
    answer["ping"] = float(_ping(request))
    if logins.sessions.clock() - session.created_at < logins.sessions.policy.absolute / 2:
        return web.json_response(answer, headers={"Cache-Control": "no-store"})
    return await _renew(request, logins, session, answer)


async def _renew(
    request: web.Request, logins: Logins, session: SessionRecord, answer: dict[str, Any]
) -> web.Response:
    hub = hub_of(request)
    who = request[PRINCIPAL_KEY]
    identity = session.identity
    working = any(
        kiosk_fit(replace(identity, roles=(str(t["role"]),)), identity.roles) is None
        for t in await hub.store.list_tokens()
        if t.get("user") == identity.name and t.get("revoked_at") is None
    )
    if not working:  # audited as refused by the failure middleware
        raise json_error("the screen's token was revoked; log in again", web.HTTPForbidden)

    def entry(public_id: str) -> Entry:
        previous = {"previous": session.public_id}
        return Entry(replace(who, via=public_id), "session.renewed", identity.name, previous)

    opened = await logins.sessions.start(
        identity.user_id,
        source=request.remote,
        user_agent=request.headers.get("User-Agent"),
        audit=entry,
    )
    await logins.sessions.end(session.public_id, "renewed")
    response = web.json_response(
        {**answer, "csrf_token": opened.record.csrf, "renewed": True},
        headers={"Cache-Control": "no-store"},
    )
    _set_cookie(response, logins, request.secure, opened.cookie)
    return response


# -- the ES modules --------------------------------------------------------------


@functools.cache
def assets_version() -> str:
    """A digest of the kiosk's files: it is in their URLs, so a browser may keep
    them for ever and still loads new ones after an upgrade."""
    digest = hashlib.sha256()
    for path in sorted(KIOSK_ROOT.iterdir()):
        if path.suffix in MEDIA:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@routes.get("/static/kiosk/{version}/{name}")
@endpoint(
    public=True,
    tags=("kiosk",),
    params=(
        Param("version", where="path", description="the files' digest, from the page"),
        Param("name", where="path", description="a module or style sheet"),
    ),
    responses={
        200: ("The file, cached for ever (its URL changes with it)", "text/javascript", None),
        404: error("No such file, or not this version of it"),
    },
)
async def kiosk_static(request: web.Request) -> web.StreamResponse:
    """The kiosk's ES modules and style sheet: public, they hold no secret."""
    name = request.match_info["name"]
    if request.match_info["version"] != assets_version() or not _STATIC_NAME.fullmatch(name):
        raise json_error("no such file", web.HTTPNotFound)
    path = (KIOSK_ROOT / name).resolve()
    if path.parent != KIOSK_ROOT or not path.is_file():
        raise json_error("no such file", web.HTTPNotFound)
    return web.Response(
        body=path.read_bytes(),
        headers={
            "Content-Type": MEDIA[path.suffix],
            "Cache-Control": "public, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
        },
    )
