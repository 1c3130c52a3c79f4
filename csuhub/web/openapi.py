"""The OpenAPI 3.1 document of the hub's API, and its HTML rendering.

Generated on each request from the served application itself: paths and path
parameters from aiohttp's route table (plugin sub-applications included, via
``iter_routes``), everything else from the ``@endpoint`` declaration the
authentication middleware enforces. Nothing is written twice, so the document
cannot drift from what the hub does; a test fails when a route is missing.

Both routes need ``camera.read``, the one permission every role holds: the
document reveals no data, and the rule is that every endpoint but health
authenticates. ``/api/docs`` is rendered on the server with no script and no
outside resource: the hub works offline.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from aiohttp import web

from csuhub import __version__
from csuhub.security.permissions import PERMISSIONS
from csuhub.security.sessions import COOKIE, CSRF_HEADER
from csuhub.web.declare import Declaration, RouteInfo, endpoint, iter_routes
from csuhub.web.requests import JSON
from csuhub.web.schemas import ERROR, binary, json_answer

routes = web.RouteTableDef()

_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")
#: methods whose requests carry a body the hub reads
_BODY_METHODS = {"POST", "PUT", "PATCH"}
_HTML = "text/html"
_GENERAL = {
    400: "The input is refused (a query parameter, the body, the Authorization header)",
    401: "No credentials, or unknown ones: a bearer token or a session cookie is needed",
    403: "The principal lacks the route's permission (the refusal is audited)",
    404: "No such object, or a camera outside the principal's scope (answered alike)",
    413: "The body is over 1 MiB",
    415: "A compressed body (the hub does not decompress)",
}


#: how public routes that authenticate their caller themselves do it (``signed_by``)
SIGNED_SCHEMES: dict[str, dict[str, str]] = {
    "callLineSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Csuhub-Signature",
        "description": "sha256=<hex HMAC-SHA256 over the X-Csuhub-Timestamp value, '.' and "
        "the raw body, keyed with the call line's shared secret> (docs/webhook.md); the "
        "header names are the line's signature_header and timestamp_header",
    },
}


def openapi_path(template: str) -> str:
    """aiohttp's ``{name:regex}`` as OpenAPI's ``{name}``."""
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", template)


def document(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route of ``app`` but the JSON catch-all."""
    paths: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    tags: set[str] = set()
    for route in iter_routes(app):
        if route.method == "*":  # the catch-all answering unknown paths in JSON
            continue
        path = openapi_path(route.path)
        operation = _operation(route, path, used)
        tags.update(operation["tags"])
        paths.setdefault(path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "csuhub API",
            "version": __version__,
            "description": "Every route needs a bearer token or a session (cookie, and its "
            f"{CSRF_HEADER} header for unsafe methods), except GET /api/health. Each "
            "operation names the one permission it needs in x-permission. Footage routes "
            "take a stated reason, kept in the audit.",
        },
        "paths": dict(sorted(paths.items())),
        "tags": [{"name": t} for t in sorted(tags)],
        "components": {
            "schemas": {"Error": ERROR},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "csu_..."},
                "session": {"type": "apiKey", "in": "cookie", "name": COOKIE},
                **SIGNED_SCHEMES,
            },
        },
        "security": [{"bearer": []}, {"session": []}],
    }


def _operation(route: RouteInfo, path: str, used: set[str]) -> dict[str, Any]:
    declaration = route.declaration
    name = getattr(route.handler, "__name__", "operation")
    operation_id = name if name not in used else _unique(route, path, used)
    used.add(operation_id)
    if declaration is None:  # refused to everyone; the access matrix test fails on it
        return {
            "operationId": operation_id,
            "summary": "undeclared route: refused to everyone",
            "tags": ["undeclared"],
            "responses": {"403": _response(("No permission is declared", JSON, ERROR))},
        }
    access = declaration.access
    default_tags = ["plugins"] if path.startswith("/plugins/") else ["misc"]
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": declaration.summary,
        "tags": list(declaration.tags) or default_tags,
    }
    if declaration.description:
        operation["description"] = declaration.description
    parameters = _parameters(declaration, path)
    if parameters:
        operation["parameters"] = parameters
    if declaration.body is not None and route.method in _BODY_METHODS:
        operation["requestBody"] = {
            "required": declaration.body_required,
            "content": {JSON: {"schema": declaration.body}},
        }
    operation["responses"] = _responses(declaration, route.method, bool(parameters))
    if access.public:
        signed = declaration.signed_by
        operation["security"] = [{signed: []}] if signed else []
        operation["x-permission"] = None
    else:
        operation["x-permission"] = access.permission
        operation["x-permission-description"] = PERMISSIONS[access.permission or ""]
    if access.camera_param:
        operation["x-camera-scope"] = access.camera_param
    if declaration.audited:
        operation["x-audited"] = declaration.audited
    return operation


def _unique(route: RouteInfo, path: str, used: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9]+", "_", f"{route.method} {path}").strip("_").lower()
    candidate, n = base, 2
    while candidate in used:
        candidate, n = f"{base}_{n}", n + 1
    return candidate


def _parameters(declaration: Declaration, path: str) -> list[dict[str, Any]]:
    declared = {(p.where, p.name): p for p in declaration.params}
    found: list[dict[str, Any]] = []
    for name in _PARAM.findall(path):
        param = declared.pop(("path", name), None)
        found.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": dict(param.schema) if param else {"type": "string"},
                **({"description": param.description} if param and param.description else {}),
            }
        )
    for (where, name), param in declared.items():
        if where == "path":  # declared, but the path has no such parameter
            raise ValueError(f"{path}: no path parameter {name!r}")
        entry: dict[str, Any] = {
            "name": name,
            "in": where,
            "required": param.required,
            "schema": dict(param.schema),
        }
        if param.description:
            entry["description"] = param.description
        found.append(entry)
    return found


def _responses(declaration: Declaration, method: str, has_params: bool) -> dict[str, Any]:
    answers: dict[int, dict[str, Any]] = {
        status: _response(answer) for status, answer in declaration.responses.items()
    }
    for status, media in declaration.also.items():
        content = answers.setdefault(status, {"description": "", "content": {}})["content"]
        for kind, schema in media.items():
            content[kind] = {"schema": schema} if schema is not None else {}
    if not any(200 <= s < 300 for s in answers):
        answers[200] = _response(json_answer("OK"))
    general = [400] if not declaration.access.public or has_params else []
    if not declaration.access.public:
        general += [401, 403]
    if has_params:
        general.append(404)
    if method in _BODY_METHODS:
        general += [400, 413, 415]
    for status in general:
        answers.setdefault(status, _response((_GENERAL[status], JSON, ERROR)))
    if "panel" in declaration.tags and method in ("GET", "HEAD"):
        _as_pages(answers, declaration.access.public)
    return {str(s): answers[s] for s in sorted(answers)}


def _as_pages(answers: dict[int, dict[str, Any]], public: bool) -> None:
    """A panel page answers a person with pages (csuhub.panel.pages.panel_errors):
    no session is a 303 to the login, any other 4xx an HTML page."""
    if not public:
        answers.pop(401, None)
        answers[303] = _response(("No session: to the login page, and back after it", _HTML, None))
    for status, answer in answers.items():
        if 400 <= status < 500:
            answer["content"] = {_HTML: {}}


def _response(answer: tuple[str, str, Any]) -> dict[str, Any]:
    description, media, schema = answer
    if schema is None:
        return {"description": description, "content": {media: {}}}
    return {"description": description, "content": {media: {"schema": schema}}}


@routes.get("/api/openapi.json")
@endpoint(
    "camera.read",
    tags=("meta",),
    responses={200: json_answer("The OpenAPI 3.1 document", {"type": "object"})},
)
async def openapi_json(request: web.Request) -> web.Response:
    """This API's OpenAPI 3.1 document, generated from the routes' own declarations."""
    return web.json_response(document(request.app), headers={"Cache-Control": "no-store"})


@routes.get("/api/docs")
@endpoint(
    "camera.read",
    tags=("meta",),
    responses={200: binary("The API's reference as one HTML page", "text/html")},
)
async def api_docs(request: web.Request) -> web.Response:
    """The API's reference as a page: operations, permissions, parameters, bodies, answers."""
    return web.Response(
        text=render_html(document(request.app)),
        content_type="text/html",
        charset="utf-8",
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
        },
    )


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em}
h2{border-bottom:1px solid #ccc;margin-top:2em}
.op{border:1px solid #ddd;border-radius:4px;margin:1em 0;padding:.5em 1em}
.m{font-weight:bold;display:inline-block;min-width:4em}
code,pre{background:#f5f5f5}pre{padding:.5em;overflow:auto;max-height:20em}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left}
.perm{color:#805000}
"""


def render_html(doc: dict[str, Any]) -> str:
    """The document as a self-contained page, grouped by tag."""
    esc = html.escape
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            by_tag.setdefault(op["tags"][0], []).append((method.upper(), path, op))
    out = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{esc(doc['info']['title'])} {esc(doc['info']['version'])}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{esc(doc['info']['title'])} <small>{esc(doc['info']['version'])}</small></h1>",
        f"<p>{esc(doc['info']['description'])}</p>",
        '<p>The machine-readable document: <a href="/api/openapi.json">/api/openapi.json</a>.</p>',
    ]
    for tag in sorted(by_tag):
        out.append(f"<h2 id='{esc(tag)}'>{esc(tag)}</h2>")
        for method, path, op in by_tag[tag]:
            out.append(_render_operation(method, path, op))
    out.append("</body></html>")
    return "\n".join(out)


def _render_operation(method: str, path: str, op: dict[str, Any]) -> str:
    esc = html.escape
    perm = op.get("x-permission")
    who = (
        f"permission <code class=perm>{esc(perm)}</code>" if perm else "public (no authentication)"
    )
    if op.get("x-camera-scope"):
        who += f", camera <code>{esc(op['x-camera-scope'])}</code> in the caller's scope"
    parts = [
        f"<div class=op id='{esc(op['operationId'])}'>",
        f"<span class=m>{esc(method)}</span> <code>{esc(path)}</code>",
        f"<p>{esc(op['summary'])}</p>",
        f"<p>Needs {who}.",
    ]
    if op.get("x-audited"):
        parts.append(f" Audited as <code>{esc(op['x-audited'])}</code>.")
    parts.append("</p>")
    if op.get("description"):
        parts.append(f"<p>{esc(op['description'])}</p>")
    if op.get("parameters"):
        parts.append("<table><tr><th>parameter</th><th>in</th><th>required</th>")
        parts.append("<th>schema</th><th>meaning</th></tr>")
        for p in op["parameters"]:
            parts.append(
                f"<tr><td><code>{esc(p['name'])}</code></td><td>{esc(p['in'])}</td>"
                f"<td>{'yes' if p.get('required') else 'no'}</td>"
                f"<td><code>{esc(json.dumps(p['schema']))}</code></td>"
                f"<td>{esc(p.get('description', ''))}</td></tr>"
            )
        parts.append("</table>")
    body = op.get("requestBody")
    if body:
        schema = body["content"][JSON]["schema"]
        required = "required" if body.get("required") else "optional"
        shown = esc(json.dumps(schema, indent=1))
        parts.append(f"<p>JSON body ({required}):</p><pre>{shown}</pre>")
    parts.append("<table><tr><th>status</th><th>answer</th><th>as</th></tr>")
    for status, answer in op["responses"].items():
        kinds = ", ".join(answer.get("content", {}))
        parts.append(
            f"<tr><td>{esc(status)}</td><td>{esc(answer['description'])}</td>"
            f"<td>{esc(kinds)}</td></tr>"
        )
    parts.append("</table></div>")
    return "".join(parts)


def install(app: web.Application) -> None:
    """The two routes, on the hub's app (``csuhub.web.app.make_app``)."""
    from csuhub.web.requests import with_expect

    app.router.add_routes(with_expect(routes))
