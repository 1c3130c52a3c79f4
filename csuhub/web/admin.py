"""What an administrator asks of the hub itself: its plugins and whether the
site file on disk would load.

``GET /api/plugins`` is ``csuhub plugins`` over HTTP (each plugin loaded,
disabled or failed, with the reason the hub recorded, and what it provides);
``GET /api/config/check`` is ``csuhub check`` against the running hub's own
site file and plugins: it validates the file as a reload would, errors at
``file:line:col``, and applies nothing, so an administrator can fix the file
before ``POST /api/config/reload``. Neither changes state, so neither is
audited; both need ``config.reload``, the permission of the reload they
prepare.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web

from csuhub.config import ConfigInvalid, load_raw
from csuhub.web.declare import endpoint
from csuhub.web.requests import hub_of
from csuhub.web.schemas import json_answer

routes = web.RouteTableDef()

_TAGS = ("admin",)
PLUGIN: dict[str, Any] = {
    "type": "object",
    "required": ["name", "state"],
    "properties": {
        "name": {"type": "string"},
        "version": {"type": ["string", "null"]},
        "state": {"enum": ["loaded", "disabled", "failed"]},
        "reason": {"type": ["string", "null"]},
        "hooks": {"type": "array", "items": {"type": "string"}},
        "provides": {"type": "array", "items": {"type": "string"}},
    },
}
ISSUE: dict[str, Any] = {
    "type": "object",
    "required": ["severity", "message", "text"],
    "properties": {
        "severity": {"enum": ["error", "warning"]},
        "file": {"type": ["string", "null"]},
        "line": {"type": ["integer", "null"]},
        "column": {"type": ["integer", "null"]},
        "path": {"type": "string"},
        "message": {"type": "string"},
        "hint": {"type": ["string", "null"]},
        "text": {"type": "string", "description": "file:line:col: key.path: message (hint)"},
    },
}
CHECK: dict[str, Any] = {
    "type": "object",
    "required": ["valid", "file", "errors", "warnings"],
    "properties": {
        "valid": {"type": "boolean"},
        "file": {"type": ["string", "null"]},
        "errors": {"type": "array", "items": ISSUE},
        "warnings": {"type": "array", "items": ISSUE},
    },
}


def plugin_list(hub: Any) -> list[dict[str, Any]]:
    """Every plugin the hub knows, by name, with what it provides (the same
    listing as ``csuhub plugins``: failed and disabled ones are data, not errors)."""
    provided: dict[str, list[str]] = {}
    for registry in hub.registry.spec_registries():
        for item in registry:
            provided.setdefault(item.plugin, []).append(f"{registry.kind}:{item.spec.name}")
    for section, (_, plugin) in hub.registry.config_sections.items():
        provided.setdefault(plugin, []).append(f"config_section:{section}")
    records = sorted(hub.pm.records.values(), key=lambda r: r.name)
    return [{**r.as_dict(), "provides": sorted(provided.get(r.name, []))} for r in records]


def _issue(issue: Any) -> dict[str, Any]:
    return {**issue.as_dict(), "text": str(issue)}


def _check(hub: Any, source: Path) -> dict[str, Any]:
    """Blocking (file reads): load and validate ``source`` as a reload would."""
    try:
        loaded = load_raw(source)
        config = hub.validate(loaded.raw, str(source), loaded.files)
        hub.retention.build(config)  # what a reload refuses too
    except ConfigInvalid as err:
        errors = [_issue(i) for i in err.issues if i.severity == "error"]
        warnings = [_issue(i) for i in err.issues if i.severity != "error"]
        return {"valid": False, "file": str(source), "errors": errors, "warnings": warnings}
    except OSError as err:
        text = f"{source}: cannot read: {err.strerror or err}"
        error = {"severity": "error", "file": str(source), "line": None, "column": None,
                 "path": "", "message": text, "hint": None, "text": text}  # fmt: skip
        return {"valid": False, "file": str(source), "errors": [error], "warnings": []}
    warnings = [_issue(w) for w in config.warnings]
    return {"valid": True, "file": str(source), "errors": [], "warnings": warnings}


async def check_site(hub: Any) -> dict[str, Any]:
    """The running hub's site file checked now, off the loop; nothing applied."""
    source = hub.config.source
    if source is None:
        text = "this hub runs an embedded configuration; there is no file to check"
        error = {"severity": "error", "file": None, "line": None, "column": None,
                 "path": "", "message": text, "hint": None, "text": text}  # fmt: skip
        return {"valid": False, "file": None, "errors": [error], "warnings": []}
    return await asyncio.to_thread(_check, hub, source)


@routes.get("/api/plugins")
@endpoint(
    "config.reload",
    tags=_TAGS,
    responses={
        200: json_answer(
            "Every plugin: loaded, disabled or failed (with the reason), and what it provides",
            {"type": "object", "required": ["plugins"],
             "properties": {"plugins": {"type": "array", "items": PLUGIN}}},
        )
    },
)  # fmt: skip
async def list_plugins(request: web.Request) -> web.Response:
    """The hub's plugins as ``csuhub plugins`` lists them."""
    return web.json_response({"plugins": plugin_list(hub_of(request))})


@routes.get("/api/config/check")
@endpoint(
    "config.reload",
    tags=_TAGS,
    responses={
        200: json_answer(
            "The site file on disk checked against this hub's plugins (nothing applied); "
            "valid false lists every error at file:line:col",
            CHECK,
        )
    },
)
async def check_config(request: web.Request) -> web.Response:
    """Would the site file load? Every error at ``file:line:col``; nothing is applied."""
    report = await check_site(hub_of(request))
    return web.json_response(report, headers={"Cache-Control": "no-store"})
