"""Audit entries written by the web layer: when an action starts, how it ends,
and every refused or failed attempt.

A route whose declaration names an audited action (``@endpoint(...,
audited=...)``) writes its entry through :func:`started` before it acts (the
entry survives a crash mid-action) and :func:`ended` once it knows the
outcome; :func:`audit_failures`, a middleware behind authentication, writes
what the handler could not: a 4xx it raised is ``refused`` (with the error
message), anything else ``failed``, each concluding the started entry (``ref``)
when there is one. Unauthenticated refusals are not audited here (there is no
one to hold accountable: ``csuhub.web.auth``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from csuhub.web.auth import PRINCIPAL_KEY
from csuhub.web.declare import declaration_of
from csuhub.web.requests import hub_of, input_error
from csuhub.web.validation import InputError, check_reason

_LOGGER = logging.getLogger(__name__)

#: the id of the entry the request's action started with
STARTED_KEY: web.RequestKey[int] = web.RequestKey("audit_started", int)
#: set once the handler wrote the action's ending itself, or handed the
#: action to a layer that audits it (:func:`audited_below`)
ENDED_KEY: web.RequestKey[bool] = web.RequestKey("audit_ended", bool)
#: the stated reason, once the handler has read and checked it
REASON_KEY: web.RequestKey[str] = web.RequestKey("audit_reason", str)


def stated_reason(request: web.Request) -> str:
    """The request's ``?reason=``, checked (``validation.check_reason``): a 400
    without one; kept for every entry the request writes."""
    try:
        reason = check_reason(request.query.get("reason"))
    except InputError as err:
        raise input_error(err) from None
    request[REASON_KEY] = reason
    return reason


async def entry(
    request: web.Request,
    action: str,
    target: str | None,
    /,
    *,
    outcome: str = "ok",
    ref: int | None = None,
    **params: Any,
) -> int:
    """One entry naming the request's principal (role, session or token, address)."""
    return await hub_of(request).store.audit_event(
        request[PRINCIPAL_KEY],
        action,
        target,
        reason=request.get(REASON_KEY),
        outcome=outcome,
        ref=ref,
        **params,
    )


async def started(request: web.Request, action: str, target: str | None, /, **params: Any) -> int:
    """The entry an action starts with (outcome ``started``), before it acts."""
    found = await entry(request, action, target, outcome="started", **params)
    request[STARTED_KEY] = found
    return found


async def ended(
    request: web.Request, action: str, target: str | None, outcome: str = "ok", /, **params: Any
) -> int:
    """The entry concluding the started one (``ref``) with its outcome."""
    request[ENDED_KEY] = True
    return await entry(
        request, action, target, outcome=outcome, ref=request.get(STARTED_KEY), **params
    )


def audited_below(request: web.Request) -> None:
    """From here on the layer below (the requisition workflow) audits the action,
    every outcome of it: this request writes nothing more, so that one action is
    one story in the audit, not two."""
    request[ENDED_KEY] = True


def _message(err: BaseException) -> str:
    if isinstance(err, web.HTTPException):
        try:
            return str(json.loads(err.text or "{}").get("error", err.reason))[:300]
        except (ValueError, AttributeError):
            return (err.text or err.reason)[:300]
    return f"{type(err).__name__}: {err}"[:300]


def _target(request: web.Request, access_param: str | None) -> str:
    if access_param and access_param in request.match_info:
        return request.match_info[access_param]
    return request.path


@web.middleware
async def audit_failures(request: web.Request, handler: Any) -> web.StreamResponse:
    """The refused and failed attempts at an audited route, and the ending of an
    action that started but did not finish."""
    declaration = declaration_of(request.match_info.handler)
    action = declaration.audited if declaration is not None else None
    if action is None or PRINCIPAL_KEY not in request:
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as err:
        if err.status >= 400 and not request.get(ENDED_KEY):
            outcome = "refused" if err.status < 500 else "failed"
            await _write(request, declaration, action, outcome, err, status=err.status)
        raise
    except InputError as err:
        if not request.get(ENDED_KEY):
            await _write(request, declaration, action, "refused", err, status=err.status)
        raise
    except Exception as err:
        if not request.get(ENDED_KEY):
            await _write(request, declaration, action, "failed", err, status=500)
        raise


async def _write(
    request: web.Request,
    declaration: Any,
    action: str,
    outcome: str,
    err: BaseException,
    **params: Any,
) -> None:
    ref = request.get(STARTED_KEY)  # the action began: this entry concludes it
    try:
        await entry(
            request,
            action,
            _target(request, declaration.access.camera_param),
            outcome=outcome,
            ref=ref,
            error=_message(err),
            method=request.method,
            **params,
        )
    except Exception:  # the answer stands whether or not it could be written
        _LOGGER.exception("could not audit a %s %s on %s", outcome, action, request.path)
