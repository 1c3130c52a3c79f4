"""What every API handler needs from a request: the hub, its path parameters
and JSON body checked by ``csuhub.web.validation``, and errors that are JSON
too. Route modules import this, not ``web.app`` (which imports them)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import ClientConnectionResetError, HttpVersion11, hdrs, web
from aiohttp.http_exceptions import HttpProcessingError

from csuhub.web.validation import MAX_BODY, InputError, check_name, is_slug, loads, parse_id

if TYPE_CHECKING:
    from csuhub.hub import Hub

HUB_KEY: web.AppKey[Hub] = web.AppKey("hub")
JSON = "application/json"
#: A client that goes away mid-answer (a player closed, a dropped link) is
#: normal life for a video server, not an error.
DISCONNECTS = (ConnectionResetError, BrokenPipeError, ClientConnectionResetError)
#: What the client's bytes did wrong below the app: an unparseable request line or
#: header, bad chunking, a body its ``Content-Encoding`` cannot decode. A 400.
CLIENT_FAULTS = (HttpProcessingError, web.RequestPayloadError)


def describe_fault(fault: BaseException) -> str:
    """The first line of aiohttp's message, made printable (it quotes the client's bytes)."""
    cause = fault.__cause__ if isinstance(fault, web.RequestPayloadError) else None
    text = str(getattr(cause or fault, "message", None) or cause or fault).strip()
    line = text.splitlines()[0] if text else type(cause or fault).__name__
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in line)[:200]


def dumps_lenient(data: Any) -> str:
    """JSON for answers that may hold dates or paths (``str`` of them): the
    ``dumps=`` of ``web.json_response`` for reports built elsewhere."""
    return json.dumps(data, default=str)


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


def refuse_declared_oversize(request: web.Request) -> None:
    """A 413 for a body whose declared length is over ``MAX_BODY``."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise input_error(InputError(f"the body is larger than {MAX_BODY} bytes", 413))


async def read_body(request: web.Request) -> bytes:
    """The raw body, at most ``MAX_BODY`` bytes (413 beyond, whatever it claims)."""
    refuse_declared_oversize(request)
    data = bytearray()
    try:
        while chunk := await request.content.read(64 * 1024):
            data += chunk
            if len(data) > MAX_BODY:
                raise input_error(InputError(f"the body is larger than {MAX_BODY} bytes", 413))
    except CLIENT_FAULTS as err:  # bad chunking, a Content-Encoding that fails
        raise json_error(f"the body cannot be read ({describe_fault(err)})") from None
    return bytes(data)


async def json_body(request: web.Request, *, empty_ok: bool = False) -> dict[str, Any]:
    """The body as a JSON object; ``empty_ok``: no body at all reads as ``{}``.

    A body must be typed ``application/json`` (415 otherwise): an HTML form can
    send ``text/plain`` across sites without a preflight, and a ``text/plain``
    body can be made to parse as JSON."""
    data = await read_body(request)
    if empty_ok and not data.strip():
        return {}
    if request.content_type != JSON:
        raise json_error(
            "the body must be sent as Content-Type: application/json",
            web.HTTPUnsupportedMediaType,
        )
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


async def expect_continue(request: web.Request) -> None:
    """Every route's ``Expect`` handler. aiohttp's own says "100 Continue" to any
    body, then the 413 comes after the client sent it; and its 417 is plain text.
    Here a declared body over the limit is refused before it is sent, and an
    unknown expectation is a JSON 417."""
    expect = request.headers.get(hdrs.EXPECT, "")
    if expect.lower() != "100-continue":
        shown = "".join(c if c.isprintable() else "?" for c in expect[:60])
        raise json_error(f"unknown Expect: {shown}", web.HTTPExpectationFailed)
    refuse_declared_oversize(request)
    if request.version == HttpVersion11:
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the answer's body has not started


def with_expect(defs: Any) -> list[Any]:
    """Route definitions with ``expect_continue`` as their ``Expect`` handler."""
    return [
        web.RouteDef(d.method, d.path, d.handler, {"expect_handler": expect_continue, **d.kwargs})
        if isinstance(d, web.RouteDef)
        else d
        for d in defs
    ]


async def file_response(
    request: web.Request, path: Path, content_type: str | None = None
) -> web.FileResponse:
    """A file with HTTP range support, whose unsatisfiable ranges are refused in JSON.

    aiohttp answers a malformed or out-of-file ``Range`` itself, with an empty
    416 typed as the file; the rule that every error is JSON holds here too.
    The check mirrors ``FileResponse``'s (an ``If-Range`` older than the file
    means the whole file, so any ``Range`` goes).
    """
    if hdrs.RANGE in request.headers:
        info = await asyncio.to_thread(path.stat)
        if_range = request.if_range
        applies = if_range is None or info.st_mtime <= if_range.timestamp()
        if applies and not _satisfiable(request, info.st_size):
            raise web.HTTPRequestRangeNotSatisfiable(
                text=json.dumps(
                    {"error": f"range not satisfiable: the file has {info.st_size} bytes"}
                ),
                content_type=JSON,
                headers={hdrs.CONTENT_RANGE: f"bytes */{info.st_size}"},
            )
    return web.FileResponse(path, headers={"Content-Type": content_type} if content_type else None)


def _satisfiable(request: web.Request, size: int) -> bool:
    try:
        wanted = request.http_range  # one range only: "bytes=0-1,2-3" is a ValueError
    except ValueError:
        return False
    start = wanted.start
    if start is None:
        return True
    if start < 0 and wanted.stop is None:  # a suffix: the last -start bytes
        start = max(0, start + size)
    return bool(start < size)
