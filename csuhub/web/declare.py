"""One declaration per route: what it needs and what it takes and gives.

``@endpoint`` puts on a handler the ``Access`` the authentication middleware
enforces and the description the OpenAPI document is generated from, so the
two are read from the same object and cannot drift. A route without a
declaration is refused to everyone (``csuhub.web.auth``) and fails the
access-control matrix test; that is the point of making it one decorator.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from csuhub.security.permissions import ACCESS_ATTR, Access, marked

DECLARATION_ATTR = "__csuhub_endpoint__"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Schema = Mapping[str, Any]


@dataclass(frozen=True)
class Param:
    """A query (or path) parameter, as OpenAPI describes it."""

    name: str
    schema: Schema = field(default_factory=lambda: {"type": "string"})
    where: str = "query"
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class Declaration:
    access: Access
    summary: str
    description: str = ""
    tags: tuple[str, ...] = ()
    params: tuple[Param, ...] = ()
    #: JSON schema of the request body (None: the route takes no body)
    body: Schema | None = None
    body_required: bool = False
    #: status -> (description, media type, JSON schema or None)
    responses: Mapping[int, tuple[str, str, Schema | None]] = field(default_factory=dict)
    #: status -> {media type: JSON schema or None}: other forms the same answer takes
    #: (a register as JSON or, with ``?format=csv``, as CSV)
    also: Mapping[int, Mapping[str, Schema | None]] = field(default_factory=dict)
    #: the route changes state, or shows footage, and writes an audit entry
    audited: str | None = None
    #: a public route that authenticates its caller itself: the OpenAPI security
    #: scheme that says how (``openapi.SIGNED_SCHEMES``), e.g. a call line's HMAC
    signed_by: str | None = None


def endpoint(
    permission: str | None = None,
    *,
    public: bool = False,
    camera: str | None = None,
    summary: str = "",
    tags: tuple[str, ...] = (),
    params: tuple[Param, ...] = (),
    body: Schema | None = None,
    body_required: bool = False,
    responses: Mapping[int, tuple[str, str, Schema | None]] | None = None,
    audited: str | None = None,
    also: Mapping[int, Mapping[str, Schema | None]] | None = None,
    signed_by: str | None = None,
) -> Callable[[Handler], Handler]:
    """Declare a route. ``permission`` is the one permission it needs (or
    ``public=True``); ``camera`` names the path parameter holding a camera id,
    which the principal's camera scope must allow (else the route answers 404,
    as for a camera that does not exist)."""
    if signed_by is not None and not public:
        raise ValueError("signed_by names how a public route authenticates its caller")
    access = Access(permission, public=public, camera_param=camera)

    def mark(handler: Handler) -> Handler:
        doc = (handler.__doc__ or "").strip()
        first, _, rest = doc.partition("\n")
        declaration = Declaration(
            access=access,
            summary=summary or first.strip() or handler.__name__.replace("_", " "),
            description=rest.strip(),
            tags=tags,
            params=params,
            body=body,
            body_required=body_required,
            responses=dict(responses or {}),
            also=dict(also or {}),
            audited=audited,
            signed_by=signed_by,
        )
        setattr(handler, ACCESS_ATTR, access)
        setattr(handler, DECLARATION_ATTR, declaration)
        return handler

    return mark


def declaration_of(handler: Any) -> Declaration | None:
    """The declaration on a handler, looking through wrappers."""
    found = marked(handler, DECLARATION_ATTR)
    return found if isinstance(found, Declaration) else None


@dataclass(frozen=True)
class RouteInfo:
    method: str
    #: the path template as clients see it (a sub-application's prefix included)
    path: str
    handler: Any
    declaration: Declaration | None


def iter_routes(app: web.Application) -> list[RouteInfo]:
    """Every route of ``app`` and its sub-applications (plugin routes), with its
    declaration: what the access matrix and the OpenAPI document enumerate.
    aiohttp's automatic HEAD twin of a GET is left out: it shares the GET's
    handler and declaration."""
    found: list[RouteInfo] = []
    for resource in app.router.resources():
        sub = getattr(resource, "_app", None)
        if isinstance(sub, web.Application):
            found.extend(iter_routes(sub))  # its resources carry the full path already
            continue
        for route in resource:
            if route.method == "HEAD":
                continue
            handler = route.handler
            found.append(
                RouteInfo(
                    route.method,
                    str(resource.canonical),
                    handler,
                    declaration_of(handler),
                )
            )
    return found
