"""What every API handler needs from a request: the hub, its path parameters
and JSON body checked by ``csuhub.web.validation``, and errors that are JSON
too. Route modules import this, not ``web.app`` (which imports them)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import ClientConnectionResetError, web

from csuhub.web.validation import MAX_BODY, InputError, check_name, is_slug, loads, parse_id

if TYPE_CHECKING:
    from csuhub.hub import Hub

HUB_KEY: web.AppKey[Hub] = web.AppKey("hub")
JSON = "application/json"
#: A client that goes away mid-answer (a player closed, a dropped link) is
#: normal life for a video server, not an error.
DISCONNECTS = (ConnectionResetError, BrokenPipeError, ClientConnectionResetError)


def hub_of(request: web.Request) -> Hub:
    return request.app[HUB_KEY]


def json_error(
    message: str, status: type[web.HTTPException] = web.HTTPBadRequest, **extra: Any
) -> web.HTTPException:
    return status(text=json.dumps({"error": message, **extra}), content_type=JSON)


def input_error(err: InputError) -> web.HTTPException:
    """The JSON answer to an ``InputError`` (400, or the 413 it carries)."""
    if err.status == 413:
        return web.HTTPRequestEntityTooLarge(
            MAX_BODY, MAX_BODY + 1, text=json.dumps({"error": str(err)}), content_type=JSON
        )
    return json_error(str(err))


def path_id(request: web.Request, key: str, what: str) -> int:
    """A numeric id from the path; one that cannot exist is a 404 like any unknown id."""
    value = parse_id(request.match_info[key])
    if value is None:
        raise json_error(f"no such {what}", web.HTTPNotFound)
    return value


def path_slug(request: web.Request, key: str, what: str) -> str:
    """A slug id (camera ids) from the path; anything else is a 404."""
    value = request.match_info[key]
    if not is_slug(value):
        raise json_error(f"no such {what}", web.HTTPNotFound)
    return value


def path_name(request: web.Request, key: str, what: str) -> str:
    """A file name from the path: no NUL, no separator, no ``..`` (else 404)."""
    try:
        return check_name(request.match_info[key])
    except InputError:
        raise json_error(f"no such {what}", web.HTTPNotFound) from None


async def read_body(request: web.Request) -> bytes:
    """The raw body, at most ``MAX_BODY`` bytes (413 beyond, whatever it claims)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise input_error(InputError(f"the body is larger than {MAX_BODY} bytes", 413))
    data = bytearray()
    while chunk := await request.content.read(64 * 1024):
        data += chunk
        if len(data) > MAX_BODY:
            raise input_error(InputError(f"the body is larger than {MAX_BODY} bytes", 413))
    return bytes(data)


async def json_body(request: web.Request, *, empty_ok: bool = False) -> dict[str, Any]:
    """The body as a JSON object; ``empty_ok``: no body at all reads as ``{}``."""
    data = await read_body(request)
    if empty_ok and not data.strip():
        return {}
    try:
        body = loads(data)
    except InputError as err:
        raise input_error(err) from None
    if not isinstance(body, dict):
        raise json_error("the body must be a JSON object")
    return body


async def no_body(request: web.Request) -> None:
    """For routes that take no input: nothing, or ``{}``, is accepted; anything else is
    refused rather than silently ignored (a client sending 50 MB is mistaken or hostile)."""
    if await json_body(request, empty_ok=True):
        raise json_error("this endpoint takes no body (send nothing, or {})")
