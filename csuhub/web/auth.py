"""Bearer-token authentication and least-privilege roles.

Every route requires a token unless it is explicitly public (only health is).
A route declares the lowest role allowed with ``@require_role``; a route that
declares nothing requires ``admin``, so forgetting is safe, not open.
Secrets are random, shown once, and stored only as SHA-256.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

ROLES = ("auditor", "viewer", "operator", "supervisor", "admin")
"""Ordered from least to most privileged."""

TOKEN_PREFIX = "csu_"  # noqa: S105 - a public prefix, not a secret

#: Who made the request (token name) and with which role; set by the middleware.
USER_KEY: web.RequestKey[str] = web.RequestKey("user", str)
ROLE_KEY: web.RequestKey[str] = web.RequestKey("role", str)
_ROLE_ATTR = "__csuhub_role__"
_PUBLIC_ATTR = "__csuhub_public__"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def require_role(role: str) -> Callable[[Handler], Handler]:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")

    def mark(handler: Handler) -> Handler:
        setattr(handler, _ROLE_ATTR, role)
        return handler

    return mark


def public(handler: Handler) -> Handler:
    """Mark a route as needing no token. Reserved for health checks."""
    setattr(handler, _PUBLIC_ATTR, True)
    return handler


def role_allows(have: str, need: str) -> bool:
    return ROLES.index(have) >= ROLES.index(need)


TokenLookup = Callable[[str], Awaitable[tuple[str, str] | None]]


def auth_middleware(lookup: TokenLookup) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        target = _unwrap(request.match_info.handler)
        if getattr(target, _PUBLIC_ATTR, False):
            return await handler(request)
        headers = request.headers.getall("Authorization", [])
        if len(headers) > 1:  # which one a proxy checked is anyone's guess: none counts
            raise web.HTTPBadRequest(
                text='{"error": "send one Authorization header, not several"}',
                content_type="application/json",
            )
        scheme, _, secret = (headers[0] if headers else "").partition(" ")
        secret = secret.strip()
        # tokens are ASCII; other bytes arrive as lone surrogates, which cannot be hashed
        if scheme.lower() != "bearer" or not secret or not _token_text(secret):
            raise web.HTTPUnauthorized(
                text='{"error": "authentication required"}',
                content_type="application/json",
                headers={"WWW-Authenticate": 'Bearer realm="csuhub"'},
            )
        found = await lookup(hash_secret(secret))
        if found is None:
            raise web.HTTPUnauthorized(
                text='{"error": "invalid or revoked token"}',
                content_type="application/json",
                headers={"WWW-Authenticate": 'Bearer realm="csuhub", error="invalid_token"'},
            )
        name, role = found
        need = getattr(target, _ROLE_ATTR, "admin")
        if not role_allows(role, need):
            raise web.HTTPForbidden(
                text=f'{{"error": "role {role} may not do this; {need} required"}}',
                content_type="application/json",
            )
        request[USER_KEY] = name
        request[ROLE_KEY] = role
        return await handler(request)

    return middleware


def _token_text(secret: str) -> bool:
    return secret.isascii() and secret.isprintable()


def _unwrap(handler: Any) -> Any:
    # aiohttp wraps handlers of sub-apps and class-based views; find the function
    seen = 0
    while seen < 5 and not hasattr(handler, _ROLE_ATTR) and not hasattr(handler, _PUBLIC_ATTR):
        inner = getattr(handler, "__wrapped__", None) or getattr(handler, "func", None)
        if inner is None:
            break
        handler = inner
        seen += 1
    return handler
