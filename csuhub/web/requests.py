"""What every API handler needs from a request: the hub, its JSON body, and
errors that are JSON too. Route modules import this, not ``web.app`` (which
imports them)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from csuhub.hub import Hub

HUB_KEY: web.AppKey[Hub] = web.AppKey("hub")


def hub_of(request: web.Request) -> Hub:
    return request.app[HUB_KEY]


def json_error(
    message: str, status: type[web.HTTPException] = web.HTTPBadRequest
) -> web.HTTPException:
    return status(text=json.dumps({"error": message}), content_type="application/json")


async def json_body(request: web.Request, *, empty_ok: bool = False) -> dict[str, Any]:
    """The body as a JSON object; ``empty_ok``: no body at all reads as ``{}``."""
    if empty_ok and not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise json_error("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise json_error("the body must be a JSON object")
    return body
