"""Accounts, sessions and tokens over the API, for holders of ``user.manage``.

The same rules and audit as ``csuhub users`` and ``csuhub tokens``
(:mod:`csuhub.security.accounts`); passwords and token secrets the hub
generates are in the answer once and nowhere else. An administrator cannot
disable their own account from here (the CLI can), so that the last one does
not lock everyone out by a slip.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from csuhub.security.accounts import AccountError, Accounts, check_roles, normalize_name
from csuhub.security.passwords import MAX_LENGTH, Busy
from csuhub.security.tokens import SERVICE_PREFIX, hash_secret, new_secret, service_scope
from csuhub.store import StoreError
from csuhub.store.audited import Entry
from csuhub.web.auth import PRINCIPAL_KEY
from csuhub.web.declare import endpoint
from csuhub.web.login import LOGINS_KEY, MAX_NAME
from csuhub.web.requests import JSON, hub_of, json_body, json_error, no_body
from csuhub.web.schemas import ERROR
from csuhub.web.validation import InputError

routes = web.RouteTableDef()

_LIST = {"type": "array", "items": {"type": "string", "maxLength": MAX_NAME}, "maxItems": 64}
_USER = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "kind": {"type": "string", "enum": ["person", "service"]},
        "roles": {"type": "array", "items": {"type": "string"}},
        "scope": {"type": "array", "items": {"type": "string"}},
        "has_password": {"type": "boolean"},
        "disabled_at": {"type": ["number", "null"]},
    },
}
_TAGS = ("users",)


def parse_fields(body: Any, allowed: dict[str, type]) -> dict[str, Any]:
    """The fields of ``allowed`` (name -> str, bool or list of str), typed and bounded."""
    if not isinstance(body, dict):
        raise InputError("the body must be a JSON object")
    out: dict[str, Any] = {}
    for key, value in body.items():
        kind = allowed.get(key)
        if kind is None:
            raise InputError(f"unknown field {str(key)[:40]!r}")
        if kind is list:
            if not isinstance(value, list) or len(value) > 64:
                raise InputError(f"{key!r} must be a list of at most 64 strings")
            if not all(isinstance(v, str) and 0 < len(v) <= MAX_NAME for v in value):
                raise InputError(f"{key!r} holds strings of 1 to {MAX_NAME} characters")
        elif kind is bool:
            if not isinstance(value, bool):
                raise InputError(f"{key!r} must be true or false")
        elif not isinstance(value, str) or not value or len(value) > MAX_LENGTH:
            raise InputError(f"{key!r} must be a string of 1 to {MAX_LENGTH} characters")
        out[key] = value
    return out


def _accounts(request: web.Request) -> Accounts:
    """Accounts hashing through the logins' gate: one bound for the whole app."""
    return Accounts(hub_of(request).store, gate=request.config_dict[LOGINS_KEY].gate)


def _refusal(err: Exception) -> web.HTTPException:
    if isinstance(err, Busy):
        return web.HTTPServiceUnavailable(
            text=json.dumps({"error": str(err), "retry_after": 1}),
            content_type=JSON,
            headers={"Retry-After": "1"},
        )
    if isinstance(err, StoreError) and "already exists" in str(err):
        return json_error(str(err), web.HTTPConflict)
    if isinstance(err, AccountError) and str(err).startswith("no user"):
        return json_error(str(err), web.HTTPNotFound)
    return json_error(str(err))


@routes.get("/api/users")
@endpoint(
    "user.manage",
    tags=_TAGS,
    responses={200: ("every account (never a hash)", JSON, {"type": "object"})},
)
async def list_users(request: web.Request) -> web.Response:
    """Every account with its kind, roles, scope and state."""
    users = await hub_of(request).store.users.list()
    return web.json_response({"users": [u.public() for u in users]})


@routes.post("/api/users")
@endpoint(
    "user.manage",
    tags=_TAGS,
    body={
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME},
            "roles": _LIST,
            "scope": _LIST,
            "service": {"type": "boolean"},
            "password": {"type": "string", "minLength": 12, "maxLength": MAX_LENGTH},
        },
        "required": ["name", "roles"],
        "additionalProperties": False,
    },
    body_required=True,
    responses={
        201: ("created; a generated password is in the answer, once", JSON, _USER),
        400: ("refused (unknown role, bad scope, weak password)", JSON, ERROR),
        409: ("the name is taken", JSON, ERROR),
    },
    audited="user.add",
)
async def add_user(request: web.Request) -> web.Response:
    """Add a person (with a password, generated when none is given) or a service account."""
    fields = parse_fields(
        await json_body(request),
        {"name": str, "roles": list, "scope": list, "service": bool, "password": str},
    )
    if "name" not in fields or "roles" not in fields:
        raise json_error("'name' and 'roles' are needed")
    try:
        added = await _accounts(request).add(
            request[PRINCIPAL_KEY],
            fields["name"],
            roles=fields["roles"],
            scope=fields.get("scope", []),
            service=fields.get("service", False),
            password=fields.get("password"),
        )
    except (AccountError, StoreError, Busy) as err:
        raise _refusal(err) from None
    body = added.user.public()
    if added.generated is not None:
        body["password"] = added.generated
    return web.json_response(body, status=201, headers={"Cache-Control": "no-store"})


_GRANTS = {
    "type": "object",
    "properties": {"roles": _LIST, "scope": _LIST},
    "additionalProperties": False,
}


async def _change(request: web.Request, grant: bool) -> web.Response:
    fields = parse_fields(await json_body(request), {"roles": list, "scope": list})
    if not fields.get("roles") and not fields.get("scope"):
        raise json_error("give 'roles' or 'scope'")
    try:
        user = await _accounts(request).change(
            request[PRINCIPAL_KEY],
            request.match_info["user"],
            grant=grant,
            roles=fields.get("roles", []),
            scope=fields.get("scope", []),
        )
    except (AccountError, StoreError) as err:
        raise _refusal(err) from None
    return web.json_response(user.public())


@routes.post("/api/users/{user}/grant")
@endpoint(
    "user.manage",
    tags=_TAGS,
    body=_GRANTS,
    body_required=True,
    responses={200: ("the account now", JSON, _USER), 404: ("no such user", JSON, ERROR)},
    audited="user.grant",
)
async def grant(request: web.Request) -> web.Response:
    """Grant roles or camera scope selectors."""
    return await _change(request, True)


@routes.post("/api/users/{user}/revoke")
@endpoint(
    "user.manage",
    tags=_TAGS,
    body=_GRANTS,
    body_required=True,
    responses={200: ("the account now", JSON, _USER), 404: ("no such user", JSON, ERROR)},
    audited="user.revoke",
)
async def revoke(request: web.Request) -> web.Response:
    """Revoke roles or camera scope selectors (its tokens lose a revoked role at once)."""
    return await _change(request, False)


@routes.post("/api/users/{user}/disable")
@endpoint(
    "user.manage",
    tags=_TAGS,
    responses={
        200: ("disabled: its sessions and tokens stop", JSON, None),
        400: ("already disabled, or one's own account", JSON, ERROR),
        404: ("no such user", JSON, ERROR),
    },
    audited="user.disable",
)
async def disable(request: web.Request) -> web.Response:
    """Disable an account: its sessions end and its tokens stop at once."""
    await no_body(request)
    name, who = request.match_info["user"], request[PRINCIPAL_KEY]
    if normalize_name(name) == who.name:
        raise json_error("an administrator cannot disable their own account here")
    try:
        await _accounts(request).disable(who, name)
    except AccountError as err:
        raise _refusal(err) from None
    return web.json_response({"disabled": name})


@routes.post("/api/users/{user}/enable")
@endpoint(
    "user.manage",
    tags=_TAGS,
    responses={200: ("enabled", JSON, None), 404: ("no such user", JSON, ERROR)},
    audited="user.enable",
)
async def enable(request: web.Request) -> web.Response:
    """Enable a disabled account again."""
    await no_body(request)
    try:
        await _accounts(request).enable(request[PRINCIPAL_KEY], request.match_info["user"])
    except AccountError as err:
        raise _refusal(err) from None
    return web.json_response({"enabled": request.match_info["user"]})


@routes.post("/api/users/{user}/password")
@endpoint(
    "user.manage",
    tags=_TAGS,
    body={
        "type": "object",
        "properties": {"password": {"type": "string", "minLength": 12, "maxLength": MAX_LENGTH}},
        "additionalProperties": False,
    },
    responses={
        200: ("set; a generated password is in the answer, once", JSON, None),
        400: ("refused", JSON, ERROR),
        404: ("no such user", JSON, ERROR),
    },
    audited="user.passwd",
)
async def reset_password(request: web.Request) -> web.Response:
    """Set a person's password (generated when none is given); their sessions end."""
    fields = parse_fields(await json_body(request, empty_ok=True), {"password": str})
    name = request.match_info["user"]
    try:
        generated = await _accounts(request).set_password(
            request[PRINCIPAL_KEY], name, fields.get("password")
        )
    except (AccountError, Busy) as err:
        raise _refusal(err) from None
    body = {"name": name, **({"password": generated} if generated else {})}
    return web.json_response(body, headers={"Cache-Control": "no-store"})


@routes.get("/api/sessions")
@endpoint(
    "user.manage",
    tags=_TAGS,
    responses={200: ("live sessions (never their secrets)", JSON, {"type": "object"})},
)
async def list_sessions(request: web.Request) -> web.Response:
    """The live browser sessions: who, from where, since when, last seen."""
    sessions = await hub_of(request).store.sessions.list()
    return web.json_response({"sessions": sessions})


@routes.post("/api/sessions/{session}/end")
@endpoint(
    "user.manage",
    tags=_TAGS,
    responses={200: ("ended", JSON, None), 404: ("no live session", JSON, ERROR)},
    audited="session.end",
)
async def end_session(request: web.Request) -> web.Response:
    """End someone's session now."""
    await no_body(request)
    public_id = request.match_info["session"]
    sessions = request.config_dict[LOGINS_KEY].sessions
    entry = Entry(request[PRINCIPAL_KEY], "session.end", public_id)
    if not public_id.startswith("s-") or not await sessions.end(public_id, "ended", entry):
        raise json_error("no live session of that id", web.HTTPNotFound)
    return web.json_response({"ended": public_id})


@routes.get("/api/tokens")
@endpoint(
    "user.manage",
    tags=_TAGS,
    responses={200: ("every token (never its secret)", JSON, {"type": "object"})},
)
async def list_tokens(request: web.Request) -> web.Response:
    """Every API token: its role, its account, whether it is revoked."""
    return web.json_response({"tokens": await hub_of(request).store.list_tokens()})


@routes.post("/api/tokens")
@endpoint(
    "user.manage",
    tags=_TAGS,
    body={
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME},
            "role": {"type": "string", "maxLength": MAX_NAME},
            "user": {"type": "string", "maxLength": MAX_NAME},
        },
        "required": ["name", "role"],
        "additionalProperties": False,
    },
    body_required=True,
    responses={
        201: ("created; the secret is in the answer, once", JSON, None),
        400: ("refused", JSON, ERROR),
        409: ("the name is taken", JSON, ERROR),
    },
    audited="token.create",
)
async def create_token(request: web.Request) -> web.Response:
    """Create a token of an account's role. Without ``user`` it gets a service
    account of its own, ``token:<name>``, which sees no camera until granted
    one (``scope`` in the answer), but for the legacy ``viewer`` role."""
    fields = parse_fields(await json_body(request), {"name": str, "role": str, "user": str})
    if "name" not in fields or "role" not in fields:
        raise json_error("'name' and 'role' are needed")
    user = normalize_name(fields["user"]) if "user" in fields else None
    scope = None if user else service_scope(fields["role"])
    owner = user or SERVICE_PREFIX + fields["name"]
    params: dict[str, Any] = {"role": fields["role"], "user": owner}
    if scope is not None:
        params["scope"] = scope
    try:
        check_roles([fields["role"]])
        if len(fields["name"]) > MAX_NAME or not fields["name"].isprintable():
            raise AccountError(f"a token name is 1-{MAX_NAME} printable characters")
        secret = new_secret()
        entry = Entry(request[PRINCIPAL_KEY], "token.create", fields["name"], params)
        # TokenStore (store/protocols.py) does not declare scope yet
        await hub_of(request).store.tokens.create(  # type: ignore[call-arg]
            fields["name"], fields["role"], hash_secret(secret), user, entry, scope=scope
        )
    except (AccountError, StoreError) as err:
        raise _refusal(err) from None
    body = {**params, "name": fields["name"], "token": secret}
    return web.json_response(body, status=201, headers={"Cache-Control": "no-store"})


@routes.post("/api/tokens/{token}/revoke")
@endpoint(
    "user.manage",
    tags=_TAGS,
    responses={200: ("revoked", JSON, None), 404: ("no active token", JSON, ERROR)},
    audited="token.revoke",
)
async def revoke_token(request: web.Request) -> web.Response:
    """Revoke a token at once."""
    await no_body(request)
    name = request.match_info["token"]
    entry = Entry(request[PRINCIPAL_KEY], "token.revoke", name)
    if not await hub_of(request).store.tokens.revoke(name, entry):
        raise json_error("no active token of that name", web.HTTPNotFound)
    return web.json_response({"revoked": name})
