"""Browser login: ``/api/auth/login``, ``logout``, ``me`` and ``password``.

The four routes are public to the middleware: login and the password change
take the password itself as the credential (and count toward the lockout);
``me`` says whether there is a session at all, and logout ends one if there is
(both with nothing to refuse). With a session cookie, the unsafe ones need its
CSRF token like every other route. Login and the password change have no
session to carry a CSRF token, so they refuse a request whose ``Origin`` names
another site (a cross-site form posting the attacker's credentials would
otherwise log the victim in as the attacker), and like every JSON route they
take only ``Content-Type: application/json``, which a form cannot send.
A flood of logins is answered 503 with ``Retry-After`` before any hashing
(:class:`~csuhub.security.passwords.HashGate`).
:func:`session_principal` is the same lookup for every other route: the
middleware tries it after the bearer token.

Why not ``aiohttp-session``: it keeps session data in the cookie (encrypted) or
in Redis/Memcached, has no SQLite storage, and cannot list the sessions of a
person, end them all when a password changes or an account is disabled, or
let the audit name them. The hub's sessions are rows in its own database
(:mod:`csuhub.store.sessions`): revocable, listed, audited, and they survive a
restart; the cookie holds only a random id.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from aiohttp import web

from csuhub.security.accounts import record
from csuhub.security.lockout import LockoutPolicy
from csuhub.security.login import LoginRefused, Logins
from csuhub.security.passwords import MAX_LENGTH, Busy, WeakPassword
from csuhub.security.permissions import permissions_of
from csuhub.security.sessions import (
    COOKIE,
    CSRF_HEADER,
    SECURE_COOKIE,
    Expired,
    SessionPolicy,
    csrf_problem,
    origin_matches,
)
from csuhub.store.sessions import SessionRecord
from csuhub.web.declare import endpoint
from csuhub.web.requests import HUB_KEY, JSON, json_body, json_error, no_body, with_expect
from csuhub.web.schemas import ERROR
from csuhub.web.validation import InputError

if TYPE_CHECKING:
    from csuhub.hub import Hub
    from csuhub.security.permissions import Principal

LOGINS_KEY: web.AppKey[Logins] = web.AppKey("logins", Logins)
SESSION_KEY: web.RequestKey[SessionRecord] = web.RequestKey("session", SessionRecord)

MAX_NAME = 64
_NO_STORE = {"Cache-Control": "no-store"}

routes = web.RouteTableDef()


def install(app: web.Application, hub: Hub) -> None:
    """The login routes, and the sessions they and the middleware share."""
    hub_settings = hub.config.settings.hub
    chosen, lock = hub_settings.sessions, hub_settings.lockout
    app[LOGINS_KEY] = Logins(
        hub.store,
        SessionPolicy(idle=chosen.idle, absolute=chosen.absolute, secure=chosen.secure_cookie),
        LockoutPolicy(
            account_threshold=lock.account_after,
            address_threshold=lock.address_after,
            first_lock=lock.first_lock,
            max_lock=lock.max_lock,
        ),
    )
    app.router.add_routes(with_expect(routes))


# -- the body parsers (property-tested) ------------------------------------------


def _text(body: dict[str, Any], key: str, limit: int) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise InputError(f"{key!r} must be a non-empty string")
    if len(value) > limit:
        raise InputError(f"{key!r} has at most {limit} characters")
    return value


def _only(body: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InputError("the body must be a JSON object")
    extra = sorted(set(body) - set(keys))
    if extra:
        raise InputError(f"unknown field {extra[0][:40]!r}; this takes {', '.join(keys)}")
    return body


def parse_login(body: Any) -> tuple[str, str]:
    """``{"user": ..., "password": ...}``: a printable name of at most 64
    characters and a password of at most 1,024; anything else is an InputError."""
    fields = _only(body, ("user", "password"))
    name = _text(fields, "user", MAX_NAME)
    if not name.isprintable():
        raise InputError("'user' holds no control characters")
    return name, _text(fields, "password", MAX_LENGTH)


def parse_password_change(body: Any) -> tuple[str | None, str, str]:
    """``{"user": ..., "current": ..., "new": ...}``; ``user`` may be left out
    by a request with a session (it is the session's)."""
    fields = _only(body, ("user", "current", "new"))
    name = None
    if "user" in fields:
        name = _text(fields, "user", MAX_NAME)
        if not name.isprintable():
            raise InputError("'user' holds no control characters")
    return name, _text(fields, "current", MAX_LENGTH), _text(fields, "new", MAX_LENGTH)


# -- sessions for every route ----------------------------------------------------


def _cookie(request: web.Request, logins: Logins) -> str | None:
    """The session cookie. When the hub's cookies are Secure (TLS, or
    ``secure_cookie: always``) only the ``__Host-`` one counts: a plain one
    could have been planted by a network attacker or a sibling domain."""
    if logins.sessions.secure_cookie(request.secure):
        return request.cookies.get(SECURE_COOKIE)
    return request.cookies.get(SECURE_COOKIE) or request.cookies.get(COOKIE)


async def current_session(
    request: web.Request, *, expired_ok: bool = False
) -> SessionRecord | None:
    """The live session of the request's cookie (None without one); a 401 for
    a session a timeout has just ended, which is audited (None with
    ``expired_ok``: logging out of it is already done)."""
    logins = request.config_dict.get(LOGINS_KEY)
    if logins is None:
        return None
    cookie = _cookie(request, logins)
    if cookie is None:
        return None
    try:
        return await logins.sessions.resolve(cookie)
    except Expired as gone:  # ended and audited by resolve
        if expired_ok:
            return None
        raise json_error(
            f"the session has ended ({gone.why} timeout); log in again", web.HTTPUnauthorized
        ) from None


def wall_cameras(hub: Hub, scope: tuple[str, ...]) -> frozenset[str]:
    """The cameras of the walls a scope names (``wall:<id>``): what the running
    walls show now (declared, pushed, spotlighted), or before the walls start,
    the site file's screens: a kiosk follows its wall's screens."""
    walls = {s.partition(":")[2] for s in scope if s.startswith("wall:")}
    if not walls:
        return frozenset()
    manager = getattr(hub, "walls", None)
    if manager is not None:  # what the walls show now: pushed and spotlighted cameras too
        return manager.cameras_on(walls)
    try:
        settings = hub.config.settings.walls
    except Exception:  # no valid site: no wall, no camera (fail closed)
        return frozenset()
    return frozenset(
        camera
        for wall in settings
        if wall.id in walls
        for screen in wall.screens
        for camera in screen.cameras
    )


async def session_principal(request: web.Request, *, expired_ok: bool = False) -> Principal | None:
    """The principal of the session cookie, with the CSRF check of unsafe
    methods (403 when it fails); None when there is no cookie or it names no
    live session."""
    session = await current_session(request, expired_ok=expired_ok)
    if session is None:
        return None
    principal = session.identity.principal(
        via=session.public_id,
        source=request.remote,
        wall_cameras=wall_cameras(request.config_dict[HUB_KEY], session.identity.scope),
    )
    problem = csrf_problem(
        request.method,
        session,
        request.headers.get(CSRF_HEADER),
        request.headers.get("Origin"),
        request.host,
    )
    if problem is not None:
        logins = request.config_dict[LOGINS_KEY]
        await record(
            logins.store,
            principal,
            "access.refused",
            request.path,
            outcome="refused",
            method=request.method,
            why=f"csrf: {problem}",
        )
        raise json_error(problem, web.HTTPForbidden)
    request[SESSION_KEY] = session
    return principal


def _me(session: SessionRecord) -> dict[str, Any]:
    who = session.identity
    return {
        "authenticated": True,
        "user": who.name,
        "kind": who.kind,
        "roles": list(who.roles),
        "permissions": sorted(permissions_of(who.roles)),
        "scope": list(who.scope),
        "session": session.public_id,
        "csrf_token": session.csrf,
        "created_at": session.created_at,
    }


# -- the routes ----------------------------------------------------------------

_ME_SCHEMA = {
    "type": "object",
    "properties": {
        "authenticated": {"type": "boolean"},
        "user": {"type": "string"},
        "kind": {"type": "string"},
        "roles": {"type": "array", "items": {"type": "string"}},
        "permissions": {"type": "array", "items": {"type": "string"}},
        "scope": {"type": "array", "items": {"type": "string"}},
        "session": {"type": "string"},
        "csrf_token": {"type": "string"},
        "created_at": {"type": "number"},
    },
}


@routes.post("/api/auth/login")
@endpoint(
    public=True,
    tags=("auth",),
    body={
        "type": "object",
        "properties": {
            "user": {"type": "string", "minLength": 1, "maxLength": MAX_NAME},
            "password": {"type": "string", "minLength": 1, "maxLength": MAX_LENGTH},
        },
        "required": ["user", "password"],
        "additionalProperties": False,
    },
    body_required=True,
    responses={
        200: ("logged in; the session cookie is set", JSON, _ME_SCHEMA),
        401: ("wrong user name or password", JSON, ERROR),
        403: ("the request's Origin is another site", JSON, ERROR),
        415: ("the body is not application/json", JSON, ERROR),
        429: ("locked after repeated failures (Retry-After)", JSON, ERROR),
        503: ("too many password checks at once (Retry-After)", JSON, ERROR),
    },
    audited="login",
)
async def login(request: web.Request) -> web.Response:
    """Log in with a user name and password: a new session cookie.

    The cookie is HttpOnly, SameSite=Strict, Path=/, and Secure over TLS; its
    id is new at every login. The answer carries the CSRF token that unsafe
    requests must send in ``X-CSRF-Token``."""
    refuse_foreign_origin(request)
    name, password = parse_login(await json_body(request))
    logins = request.config_dict[LOGINS_KEY]
    try:
        done = await logins.login(
            name,
            password,
            source=request.remote,
            user_agent=request.headers.get("User-Agent"),
        )
    except (LoginRefused, Busy) as err:
        raise _refused(err) from None
    response = web.json_response(_me(done.opened.record), headers=_NO_STORE)
    secure = logins.sessions.secure_cookie(request.secure)
    response.set_cookie(
        SECURE_COOKIE if secure else COOKIE,
        done.opened.cookie,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=secure,
    )
    if secure:  # a plain cookie from before TLS must not shadow the new one
        response.del_cookie(COOKIE, path="/")
    return response


@routes.post("/api/auth/logout")
@endpoint(
    public=True,
    tags=("auth",),
    responses={
        200: ("the session has ended (or there was none)", JSON, None),
        403: ("the CSRF token is missing or wrong", JSON, ERROR),
    },
    audited="logout",
)
async def logout(request: web.Request) -> web.Response:
    """End this session (with its CSRF token, like every unsafe request); a
    session a timeout has ended is already over: 200, and the cookie goes."""
    await no_body(request)
    await session_principal(request, expired_ok=True)
    session = request.get(SESSION_KEY)
    if session is not None:
        await request.config_dict[LOGINS_KEY].logout(session, request.remote)
    response = web.json_response(
        {"ended": session.public_id if session else None}, headers=_NO_STORE
    )
    for name in (COOKIE, SECURE_COOKIE):
        if name in request.cookies:
            response.del_cookie(name, path="/")
    return response


@routes.get("/api/auth/me")
@endpoint(
    public=True,
    tags=("auth",),
    responses={200: ("who this session is (authenticated false: none)", JSON, _ME_SCHEMA)},
)
async def me(request: web.Request) -> web.Response:
    """The session's person: name, roles, permissions, camera scope, CSRF token."""
    await session_principal(request)
    session = request.get(SESSION_KEY)
    body = _me(session) if session is not None else {"authenticated": False}
    return web.json_response(body, headers=_NO_STORE)


@routes.post("/api/auth/password")
@endpoint(
    public=True,
    tags=("auth",),
    body={
        "type": "object",
        "properties": {
            "user": {"type": "string", "minLength": 1, "maxLength": MAX_NAME},
            "current": {"type": "string", "minLength": 1, "maxLength": MAX_LENGTH},
            "new": {"type": "string", "minLength": 1, "maxLength": MAX_LENGTH},
        },
        "required": ["current", "new"],
        "additionalProperties": False,
    },
    body_required=True,
    responses={
        200: ("changed; the person's other sessions have ended", JSON, None),
        400: ("the new password is refused, or no user named", JSON, ERROR),
        401: ("wrong user name or current password", JSON, ERROR),
        403: ("the CSRF token is missing or wrong, or a foreign Origin", JSON, ERROR),
        415: ("the body is not application/json", JSON, ERROR),
        429: ("locked after repeated failures (Retry-After)", JSON, ERROR),
        503: ("too many password checks at once (Retry-After)", JSON, ERROR),
    },
    audited="user.passwd",
)
async def change_password(request: web.Request) -> web.Response:
    """Change a password, proving the current one; the person's other sessions end.

    With a session, ``user`` is the session's and may be left out."""
    refuse_foreign_origin(request)
    name, current, new = parse_password_change(await json_body(request))
    await session_principal(request)
    session = request.get(SESSION_KEY)
    if session is not None:
        if name not in (None, session.identity.name):
            raise json_error("'user' is not this session's")
        name = session.identity.name
    if name is None:
        raise json_error("'user' is needed without a session")
    logins = request.config_dict[LOGINS_KEY]
    try:
        ended = await logins.change_password(
            name, current, new, source=request.remote, session=session
        )
    except (LoginRefused, Busy) as err:
        raise _refused(err) from None
    except WeakPassword as err:
        raise json_error(str(err)) from None
    return web.json_response({"sessions_ended": len(ended)}, headers=_NO_STORE)


def refuse_foreign_origin(request: web.Request) -> None:
    """A 403 for a request whose ``Origin`` (when sent) is not this host."""
    origin = request.headers.get("Origin")
    if origin is not None and not origin_matches(origin, request.host):
        raise json_error("the request's Origin is not this hub", web.HTTPForbidden)


def _refused(err: LoginRefused | Busy) -> web.HTTPException:
    if err.retry_after > 0:
        wait = max(1, math.ceil(err.retry_after))
        status = web.HTTPServiceUnavailable if isinstance(err, Busy) else web.HTTPTooManyRequests
        return status(
            text=json.dumps({"error": str(err), "retry_after": wait}),
            content_type=JSON,
            headers={"Retry-After": str(wait)},
        )
    return json_error(str(err), web.HTTPUnauthorized)
