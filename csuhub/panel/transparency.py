"""The public transparency page, ``/transparence`` (and ``/transparency``): what
the law lets anyone know of the city's cameras, without a login.

It shows every authorised camera's district and approximate position (rounded
to about 100 m, and saying so), its prefectoral authorisation's reference and
expiry, how long footage is kept, how to exercise the right of access, and the
ethics committee's aggregate figures (the computation of
``GET /api/ethics/summary``, ``csuhub.audit.ethics.figures``). It shows no
video, no picture, nothing operational (no state, no outage) and no camera the
site file marks ``public: false``: what is on it is decided in one place,
:func:`collect`, which the page and ``csuhub transparency export`` share, so
the city's website cannot show more than the hub does.

Why the export renders with its own Jinja environment: the page must open from
``file://`` on any web server, so its asset URLs are relative and its scripts
classic (browsers refuse ES modules from ``file://``): :func:`classic_leaflet`
turns the vendored Leaflet module into a script defining ``window.L``.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

import jinja2
from aiohttp import web

from csuhub.audit.ethics import figures
from csuhub.cameras.model import (
    AUTH_EXPIRING,
    AUTH_VALID,
    DISCOVERED,
    REMOVED,
    authorization_status,
)
from csuhub.panel.cameras import placement
from csuhub.panel.i18n import LOCALES
from csuhub.panel.pages import LANG
from csuhub.panel.render import ENV_OPTIONS, HTML, STATIC_CSP, TEMPLATES, equip, page, translators
from csuhub.web.declare import endpoint
from csuhub.web.requests import hub_of

routes = web.RouteTableDef()

#: decimal places kept of a camera's latitude and longitude: 0.001° is about
#: 110 m north-south and 70 m east-west at Lille's latitude
PLACES = 3
#: the period of the published figures: the last 30 days
PERIOD = 30 * 86400.0


def approximate(lat: float, lon: float) -> tuple[float, float]:
    """A position rounded to about 100 m (``PLACES`` decimals)."""
    return round(lat, PLACES), round(lon, PLACES)


def _authorised(expires: str | None) -> bool:
    """Valid or expiring today; an unreadable date is not (fail closed)."""
    try:
        return authorization_status(expires) in (AUTH_VALID, AUTH_EXPIRING)
    except (TypeError, ValueError):
        return False


def _days(seconds: float | None) -> int | float | None:
    if seconds is None:
        return None
    value = round(seconds / 86400, 1)
    return int(value) if value.is_integer() else value


async def collect(hub: Any, now: float | None = None) -> dict[str, Any]:
    """Everything the public page shows, and nothing else (see the module's docstring)."""
    now = time.time() if now is None else now
    settings = hub.config.settings
    default_retention = settings.retention.default
    kept = hub.retention.camera_retention()
    cameras = []
    for row in await hub.store.list_cameras():
        configured = settings.camera(row.id)
        if row.origin == DISCOVERED or row.state == REMOVED:
            continue
        if configured is not None and not configured.public:
            continue
        if not _authorised(row.authorization_expires):
            continue
        district, lat, lon = placement(hub, row)
        rounded = approximate(lat, lon) if lat is not None and lon is not None else None
        retention = kept[row.id].retention if row.id in kept else default_retention
        cameras.append(
            {
                "district": district,
                "position": rounded,
                "reference": row.authorization_ref,
                "expires": row.authorization_expires,
                "retention_days": _days(retention),
            }
        )
    cameras.sort(key=lambda c: (c["district"] is None, c["district"] or "", c["position"] or ()))
    per_district: dict[str, int] = {}
    for camera in cameras:
        name = camera["district"] or ""
        per_district[name] = per_district.get(name, 0) + 1
    cap = float(hub.retention.cap()[0])
    data = await hub.store.call(figures, now - PERIOD, now, cap, now)
    panel = settings.panel
    return {
        "site": settings.hub.name,
        "cameras": cameras,
        "per_district": sorted(per_district.items()),
        "points": [
            {"lat": c["position"][0], "lon": c["position"][1], "label": c["district"] or ""}
            for c in cameras
            if c["position"] is not None
        ],
        "figures": public_figures(data),
        "period_end": dt.datetime.fromtimestamp(now, dt.UTC),
        "retention_default_days": _days(default_retention),
        "legal_cap_days": _days(cap),
        "access": panel.access,
        "contact": panel.contact,
        "tiles": {"url": panel.tile_url or "", "attribution": panel.tile_attribution or ""},
        "places": PLACES,
    }


def public_figures(data: Mapping[str, Any]) -> dict[str, Any]:
    """The aggregate figures only: totals, never a camera, a role or a person."""
    retention = data.get("retention", {})
    playback = data.get("playback", {})
    return {
        "requisitions": int(data.get("requisitions", {}).get("received", 0)),
        "exports": int(data.get("exports", {}).get("total", 0)),
        "views": int(playback.get("views", 0)),
        "hours": float(playback.get("hours", 0.0)),
        "mask_lifts": int(data.get("mask_lifts", {}).get("requested", 0)),
        "compliant": bool(retention.get("compliant", True)),
        "past_cap": int(retention.get("segments_past_cap", 0)),
    }


#: how long the public page's values are reused: the page is open to anyone, and
#: its figures read the audit of 30 days; a flood of requests must not become a
#: flood of such reads (a reload of the site file is seen at once)
KEEP = 60.0
_KEPT: weakref.WeakKeyDictionary[Any, tuple[float, Any, dict[str, Any]]] = (
    weakref.WeakKeyDictionary()
)


async def _kept(hub: Any) -> dict[str, Any]:
    now = time.monotonic()
    found = _KEPT.get(hub)
    if found is not None and now - found[0] < KEEP and found[1] is hub.config:
        return found[2]
    values = await collect(hub)
    _KEPT[hub] = (now, hub.config, values)
    return values


@routes.get("/transparence")
@endpoint(public=True, tags=("panel",), params=(LANG,), responses={
    200: ("The public transparency page (French unless ?lang=en)", HTML, None),
})  # fmt: skip
async def transparence(request: web.Request) -> web.Response:
    """The city's cameras as the public may know them: no login, no video."""
    hub = hub_of(request)
    values = {**await _kept(hub), "layout": "base.html", "other_href": None}
    origins = hub.config.settings.panel.tile_origins
    return page(request, "transparency/page.html", values, tile_origins=origins)


@routes.get("/transparency")
@endpoint(public=True, tags=("panel",), params=(LANG,), responses={
    200: ("The public transparency page (the same as /transparence)", HTML, None),
})  # fmt: skip
async def transparency(request: web.Request) -> web.Response:
    """The same page as ``/transparence``."""
    return await transparence(request)


# -- the static export ----------------------------------------------------------------

#: the bundle's files: the page's assets, from the panel's static folder
EXPORT_ASSETS = (
    "panel.css",
    "transparency.css",
    "map.js",
    "vendor/leaflet/leaflet.css",
    "vendor/leaflet/images/layers.png",
    "vendor/leaflet/images/layers-2x.png",
    "vendor/leaflet/images/marker-icon.png",
    "vendor/leaflet/images/marker-icon-2x.png",
    "vendor/leaflet/images/marker-shadow.png",
)
#: the vendored module and the classic script made of it, in the bundle
LEAFLET_MODULE = "vendor/leaflet/leaflet.esm.min.js"
LEAFLET_SCRIPT = "vendor/leaflet/leaflet.js"
#: one page per language: French is index.html
PAGES = {"fr": "index.html", "en": "en.html"}

_EXPORT = re.compile(r"export\s*\{([^{}]*)\}\s*;?\s*$")
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


class NotAModule(ValueError):
    """The text is not an ES module ending with one ``export {...}`` list."""


def classic_leaflet(source: str) -> str:
    """The Leaflet module as a classic script: its closing ``export {a as b, ...}``
    becomes ``window.L = {b: a, ...}``, the whole in a function scope."""
    found = _EXPORT.search(source)
    if found is None or "import" in source[:200] or _EXPORT.search(source[: found.start()]):
        raise NotAModule("not a module ending with one export list")
    pairs = []
    for item in found.group(1).split(","):
        parts = item.split()
        if not parts:
            continue
        if len(parts) == 1:
            local = exported = parts[0]
        elif len(parts) == 3 and parts[1] == "as":
            local, exported = parts[0], parts[2]
        else:
            raise NotAModule(f"cannot read the export {item.strip()[:40]!r}")
        if not _IDENT.fullmatch(local) or not _IDENT.fullmatch(exported):
            raise NotAModule(f"not a name: {item.strip()[:40]!r}")
        pairs.append(f"{exported}: {local}")
    body = source[: found.start()]
    return f"(function () {{\n{body}\nwindow.L = {{{', '.join(pairs)}}};\n}})();\n"


def static_environment() -> jinja2.Environment:
    """The panel's templates with relative asset paths, for the exported bundle."""
    loader = jinja2.FileSystemLoader(str(TEMPLATES))
    env = jinja2.Environment(loader=loader, autoescape=True, **ENV_OPTIONS)
    return equip(env, lambda path: f"assets/{path}")


def render_static(
    values: Mapping[str, Any], lang: str, zone: Any, tile_origins: Iterable[str] = ()
) -> str:
    """The page in ``lang`` for the bundle (no request: the context is made here),
    with its content security policy in a ``<meta>``: the map's tile server
    (``tile_origins``) the one origin besides its own files."""
    gettext, ngettext = translators(lang)
    other = "en" if lang == "fr" else "fr"
    context = {
        **values,
        "_": gettext,
        "gettext": gettext,
        "ngettext": ngettext,
        "lang": lang,
        "locale": LOCALES[lang],
        "other_lang": other,
        "other_href": PAGES[other],
        "me": None,
        "csrf": "",
        "nav": [],
        "zone": zone.key,
        "tz": zone,
        "path": "/transparence",
        "layout": "transparency/static.html",
        "exported": values["period_end"],
        "csp": STATIC_CSP.format(tiles="".join(f" {origin}" for origin in tile_origins)),
    }
    return static_environment().get_template("transparency/page.html").render(context)
