"""Authentication and authorisation of every request.

Every route carries one ``Access`` declaration (``csuhub.web.declare.endpoint``):
public (health only), or exactly one permission, optionally with the path
parameter naming a camera. The middleware resolves the caller to a
``Principal``, from a bearer token or else the browser's session cookie
(:func:`csuhub.web.login.session_principal`, which also enforces CSRF on
unsafe methods), then checks the permission and the camera scope. Everything fails closed:

- a route with no declaration is refused to everyone (500-free, a 403 naming the
  omission, and a test fails on it);
- a lookup that raises refuses (no "allow on error");
- a camera outside the principal's scope is a 404, like a camera that does not
  exist, so scope does not leak which cameras exist.

Refusals of an authenticated principal are audited; anonymous 401s are not
(they carry no one to hold accountable, and logging them would let anyone fill
the audit). Failed logins are audited by the login route.
Token secrets are random, shown once, and stored only as SHA-256.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aiohttp import web

from csuhub.security.context import reset_principal, set_principal
from csuhub.security.permissions import Access, Principal, access_of
from csuhub.security.tokens import hash_secret
from csuhub.web.cache import ARRIVED_KEY, Kept, current_version

if TYPE_CHECKING:
    from csuhub.hub import Hub
    from csuhub.security.identity import Identity

_LOGGER = logging.getLogger(__name__)

#: Who the request acts as; set by the middleware on every non-public route.
PRINCIPAL_KEY: web.RequestKey[Principal] = web.RequestKey("principal", Principal)
#: The principal's name (kept for plugins written against the role ladder).
USER_KEY: web.RequestKey[str] = web.RequestKey("user", str)
#: The principal's roles joined with "+" (kept for the same plugins).
ROLE_KEY: web.RequestKey[str] = web.RequestKey("role", str)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: A credential's SHA-256 -> the principal it authenticates, or None.
PrincipalLookup = Callable[[str, str | None], Awaitable[Principal | None]]
#: (principal, camera id) -> may it see that camera?
ScopeCheck = Callable[[Principal, str], Awaitable[bool]]
#: (principal, request, access) -> audit a refusal
RefusalAudit = Callable[[Principal, web.Request, str], Awaitable[None]]

#: What the old role ladder's routes need, for plugins still using ``require_role``.
LEGACY_ROLE_PERMISSION = {
    "auditor": "audit.read",
    "viewer": "camera.read",
    "operator": "incident.write",
    "supervisor": "export.create",
    "admin": "user.manage",
}


def require_role(role: str) -> Callable[[Handler], Handler]:
    """Deprecated: declare a permission with ``endpoint`` instead.

    Kept so that plugins written against the role ladder keep loading; the old
    role maps to the permission of ``LEGACY_ROLE_PERMISSION``."""
    if role not in LEGACY_ROLE_PERMISSION:
        raise ValueError(f"unknown role {role!r}; roles were {', '.join(LEGACY_ROLE_PERMISSION)}")
    warnings.warn(
        "require_role is deprecated: declare the route's permission with "
        "csuhub.api.endpoint(permission) instead",
        DeprecationWarning,
        stacklevel=2,
    )
    from csuhub.web.declare import endpoint

    return endpoint(LEGACY_ROLE_PERMISSION[role])


def public(handler: Handler) -> Handler:
    """Mark a route as needing no login. Reserved for health checks."""
    from csuhub.web.declare import endpoint

    return endpoint(public=True)(handler)


def _unauthorized(message: str, error: str | None = None) -> web.HTTPUnauthorized:
    challenge = 'Bearer realm="csuhub"' + (f', error="{error}"' if error else "")
    return web.HTTPUnauthorized(
        text=f'{{"error": "{message}"}}',
        content_type="application/json",
        headers={"WWW-Authenticate": challenge},
    )


def _forbidden(message: str) -> web.HTTPForbidden:
    import json

    return web.HTTPForbidden(text=json.dumps({"error": message}), content_type="application/json")


def _not_found() -> web.HTTPNotFound:
    return web.HTTPNotFound(text='{"error": "no such camera"}', content_type="application/json")


def source_of(request: web.Request) -> str | None:
    """The client's address as the socket saw it (a reverse proxy's own address
    unless the deployment rewrites it, see docs/security.md)."""
    return request.remote


async def bearer_principal(request: web.Request, lookup: PrincipalLookup) -> Principal | None:
    """The principal of the request's bearer token; None when there is no
    Authorization header; a 401 for a malformed or unknown one."""
    headers = request.headers.getall("Authorization", [])
    if not headers:
        return None
    if len(headers) > 1:  # which one a proxy checked is anyone's guess: none counts
        raise web.HTTPBadRequest(
            text='{"error": "send one Authorization header, not several"}',
            content_type="application/json",
        )
    scheme, _, secret = headers[0].partition(" ")
    secret = secret.strip()
    # tokens are ASCII; other bytes arrive as lone surrogates, which cannot be hashed
    if scheme.lower() != "bearer" or not secret or not _token_text(secret):
        raise _unauthorized("authentication required")
    found = await lookup(hash_secret(secret), source_of(request))
    if found is None:
        raise _unauthorized("invalid or revoked token", "invalid_token")
    return found


#: Other ways to authenticate a request (browser sessions), tried after the
#: bearer token; each returns a principal, None (not this kind), or raises.
Authenticator = Callable[[web.Request], Awaitable[Principal | None]]


def auth_middleware(
    lookup: PrincipalLookup,
    scope_check: ScopeCheck,
    refused: RefusalAudit,
    authenticators: tuple[Authenticator, ...] | None = None,
) -> Any:
    """``authenticators`` default to the browser session's."""
    if authenticators is None:
        from csuhub.web.login import session_principal

        authenticators = (session_principal,)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        access = access_of(request.match_info.handler)
        if access is not None and access.public:
            return await handler(request)
        request[ARRIVED_KEY] = time.monotonic()
        principal = await bearer_principal(request, lookup)
        for authenticate in authenticators:
            if principal is not None:
                break
            principal = await authenticate(request)
        if principal is None:
            raise _unauthorized("authentication required")
        await authorize(request, principal, access, scope_check, refused)
        request[PRINCIPAL_KEY] = principal
        request[USER_KEY] = principal.name
        request[ROLE_KEY] = principal.role
        token = set_principal(principal)
        try:
            return await handler(request)
        finally:
            reset_principal(token)

    return middleware


async def authorize(
    request: web.Request,
    principal: Principal,
    access: Access | None,
    scope_check: ScopeCheck,
    refused: RefusalAudit,
) -> None:
    """Raise 403 (or 404 for a camera out of scope) unless ``principal`` may."""
    if access is None:
        await refused(principal, request, "the route declares no permission")
        raise _forbidden("this route declares no permission, so no one may use it")
    assert access.permission is not None  # not public: Access guarantees one
    if not principal.has(access.permission):
        await refused(principal, request, f"lacks {access.permission}")
        raise _forbidden(f"permission {access.permission} required")
    if access.camera_param is not None:
        camera_id = request.match_info.get(access.camera_param, "")
        try:
            allowed = await scope_check(principal, camera_id)
        except Exception:  # a check that errors refuses
            _LOGGER.exception("camera scope check failed for %s", camera_id)
            allowed = False
        if not allowed:
            await refused(principal, request, f"camera {camera_id} outside scope")
            raise _not_found()


def _token_text(secret: str) -> bool:
    return secret.isascii() and secret.isprintable()


# -- the hub's implementations of the three callables ---------------------------


#: Working tokens' accounts kept by the lookup (unknown hashes are never kept).
TOKENS_KEPT = 4096


def hub_token_lookup(hub: Hub) -> PrincipalLookup:
    """A token acts as its account, as the database says at the request's
    arrival: disabling the account, taking its role or revoking the token stops
    it from the next request on, whichever process committed the change. The
    account read is kept while nothing is committed (``csuhub.web.cache``), so
    a client polling does not cost a query per request. A token with an
    account of its own (``token:<name>``) is named by its name."""
    kept: Kept[Identity] = Kept(entries=TOKENS_KEPT)
    # (hash, address) -> the principal made from that account read, and its walls
    made: dict[tuple[str, str | None], tuple[Identity, frozenset[str], Principal]] = {}

    async def lookup(secret_hash: str, source: str | None) -> Principal | None:
        from csuhub.web.login import wall_cameras

        version = await current_version(hub.store)
        found = kept.get(secret_hash, version) if version is not None else None
        if found is None:
            found = await hub.store.token_identity(secret_hash)
            if found is None or found.token is None:
                return None
            if version is not None:
                kept.put(secret_hash, version, found)
        walls = wall_cameras(hub, found.scope)  # the site file as it is now
        key = (secret_hash, source)
        earlier = made.get(key)
        if earlier is not None and earlier[0] is found and earlier[1] == walls:
            return earlier[2]
        principal = found.principal(via=f"token:{found.token}", source=source, wall_cameras=walls)
        if found.name == f"token:{found.token}":
            principal = replace(principal, name=found.token)
        if len(made) >= TOKENS_KEPT:
            made.clear()
        made[key] = (found, walls, principal)
        return principal

    return lookup


def hub_scope_check(hub: Hub) -> ScopeCheck:
    async def check(principal: Principal, camera_id: str) -> bool:
        if principal.scope.everything:
            return True
        district, groups = await camera_placement(hub, camera_id)
        return principal.scope.allows(camera_id, district, groups)

    return check


async def camera_placement(hub: Hub, camera_id: str) -> tuple[str | None, tuple[str, ...]]:
    """A camera's district and groups: from the site file, else the register."""
    configured = hub.config.settings.camera(camera_id)
    district: str | None = None
    groups: tuple[str, ...] = ()
    if configured is not None:
        groups = tuple(configured.groups)
        if configured.location is not None:
            district = configured.location.district
    if district is None:
        row = await hub.store.get_camera(camera_id)
        if row is not None:
            found = (row.location or {}).get("district")
            district = str(found) if found else None
    return district, groups


def hub_refusal_audit(hub: Hub) -> RefusalAudit:
    async def audit(principal: Principal, request: web.Request, why: str) -> None:
        try:
            await hub.store.audit_event(
                principal,
                "access.refused",
                request.path,
                outcome="refused",
                method=request.method,
                why=why,
            )
        except Exception:  # the refusal stands whether or not it could be written
            _LOGGER.exception("could not audit a refused request to %s", request.path)

    return audit


__all__ = [
    "PRINCIPAL_KEY",
    "ROLE_KEY",
    "USER_KEY",
    "auth_middleware",
    "camera_visible",
    "public",
    "require_role",
    "require_visible",
]


async def camera_visible(request: web.Request, camera_id: str) -> bool:
    """May the request's principal see ``camera_id``? For lists and for routes
    whose camera is not a path parameter (a segment's, an export's)."""
    principal = request[PRINCIPAL_KEY]
    if principal.scope.everything:
        return True
    from csuhub.web.requests import hub_of

    try:
        district, groups = await camera_placement(hub_of(request), camera_id)
    except Exception:  # fail closed
        _LOGGER.exception("camera scope check failed for %s", camera_id)
        return False
    return principal.scope.allows(camera_id, district, groups)


async def require_visible(request: web.Request, camera_id: str) -> None:
    """404 (as for a camera that does not exist) unless the camera is in scope."""
    if not await camera_visible(request, camera_id):
        raise _not_found()


Visible = Callable[[str], Awaitable[bool]]


def scope_of(request: web.Request) -> Visible:
    """The principal's camera scope (``camera_visible``), each camera looked up
    once per request: a list asks about the same cameras row after row."""
    seen: dict[str, bool] = {}

    async def visible(camera_id: str) -> bool:
        if camera_id not in seen:
            seen[camera_id] = await camera_visible(request, camera_id)
        return seen[camera_id]

    return visible


async def sees_all(visible: Visible, cameras: Iterable[str]) -> bool:
    """Whether every one of ``cameras`` is in the scope: a record that spans
    cameras (a requisition) is shown only to whom may see all of them."""
    for camera_id in cameras:
        if not await visible(camera_id):
            return False
    return True
