"""Rendering a panel page: the Jinja environment, what every template may use,
and the headers every page carries.

Every template gets, besides the page's own values:

* ``_``, ``gettext``, ``ngettext``: the request's language (:mod:`.i18n`),
  new-style: ``_("%(n)s cameras", n=3)``, ``ngettext("%(num)s camera",
  "%(num)s cameras", n)``; the result is escaped like any other value;
* ``lang``, ``other_lang``, ``lang_href``: the page's language, the one its
  switch offers, and the switch's link (this page, its query kept);
* ``me``: the principal (``me.has("camera.read")``) or None on a public page;
* ``csrf``: the session's CSRF token, for the ES modules' unsafe requests;
* ``nav``: the areas this principal may open, in order;
* ``zone``: the hub's time zone name, shown beside every time;
* ``asset(path)``: a static file's versioned URL.

and the filters ``when`` (a time in the hub's zone, with the zone) and
``day`` (a date). Why render per request with the context's ``gettext``
rather than ``install_gettext_translations`` on the shared environment: two
requests in two languages interleave on one event loop, and the context's
callables cannot leak from one to the other.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import jinja2
from aiohttp import web
from babel.dates import format_date, format_datetime

from csuhub.panel.i18n import DEFAULT_LANG, LANG_COOKIE, LANGS, LOCALES, negotiate, translations
from csuhub.web.auth import PRINCIPAL_KEY
from csuhub.web.login import SESSION_KEY
from csuhub.web.requests import hub_of

if TYPE_CHECKING:
    from csuhub.security.permissions import Principal

PANEL_ROOT = Path(__file__).resolve().parent
TEMPLATES = PANEL_ROOT / "templates"
STATIC_ROOT = PANEL_ROOT / "static"
HTML = "text/html"


@dataclass(frozen=True)
class NavItem:
    """One area of the panel in the navigation bar. It shows when the principal
    holds any of ``permissions`` (the area's own routes check theirs)."""

    path: str
    label: str  # an English msgid, translated when rendered
    permissions: tuple[str, ...]


def _(message: str) -> str:
    """Marks a msgid for extraction; translated when the page renders."""
    return message


NAV: tuple[NavItem, ...] = (
    NavItem("/panel/wall", _("Wall"), ("wall.view",)),
    NavItem("/panel/cameras", _("Cameras"), ("camera.read",)),
    NavItem("/panel/playback", _("Playback"), ("playback.view",)),
    NavItem("/panel/incidents", _("Incidents"), ("incident.read",)),
    NavItem("/panel/logbook", _("Logbook"), ("incident.read",)),
    NavItem("/panel/requisitions", _("Requisitions"), ("requisition.read",)),
    NavItem("/panel/discovery", _("Discovery"), ("camera.adopt",)),
    NavItem("/panel/audit", _("Audit and ethics"), ("audit.read",)),
    NavItem("/panel/masks", _("Masks"), ("mask.edit", "mask.lift.request", "mask.lift.approve")),
    NavItem("/panel/admin", _("Administration"), ("config.reload", "user.manage")),
)

#: the page headers: no framing, no referrer, nothing cached; the CSP allows the
#: panel's own modules, styles and media, plus the map's tile server for images
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:{tiles}; "
    "media-src 'self' blob:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)

#: the exported transparency bundle's policy, as a <meta> (no headers on a
#: city's web server we do not run): its own files and the map's tiles, no
#: connection anywhere, no form (a <meta> policy cannot say frame-ancestors)
STATIC_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:{tiles}; "
    "connect-src 'none'; form-action 'none'; base-uri 'none'"
)


def page_headers(tile_origins: Iterable[str] = ()) -> dict[str, str]:
    extra = "".join(f" {origin}" for origin in tile_origins)
    return {
        "Content-Security-Policy": CSP.format(tiles=extra),
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
    }


@functools.cache
def assets_version() -> str:
    """A digest of every static file: in their URLs, so browsers keep them for
    ever and still load new ones after an upgrade."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_ROOT.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(STATIC_ROOT)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def asset(path: str) -> str:
    return f"/panel/static/{assets_version()}/{path}"


#: how the panel's templates are read besides escaping (always on: every
#: template is HTML): i18n, strict (an unknown name is
#: an error, not an empty string); the served panel and the exported
#: transparency bundle share them
ENV_OPTIONS: dict[str, Any] = {
    "extensions": ["jinja2.ext.i18n"],
    "undefined": jinja2.StrictUndefined,
    "trim_blocks": True,
    "lstrip_blocks": True,
}


def equip(env: jinja2.Environment, asset_url: Callable[[str], str]) -> jinja2.Environment:
    """``env`` with the panel's filters, and its static files at ``asset_url``."""
    env.filters["when"] = format_when
    env.filters["day"] = format_day
    env.globals["asset"] = asset_url
    return env


def setup(app: web.Application) -> None:
    """The panel's Jinja environment on ``app``."""
    loader = jinja2.FileSystemLoader(str(TEMPLATES))
    equip(aiohttp_jinja2.setup(app, loader=loader, autoescape=True, **ENV_OPTIONS), asset)


def translators(lang: str) -> tuple[Callable[..., str], Callable[..., str]]:
    """``gettext`` and ``ngettext`` in ``lang`` for templates: new-style, the
    values named (``_("%(n)s cameras", n=3)``); ``ngettext`` passes ``num``."""
    catalogue = translations(lang)

    def gettext(message: str, **values: Any) -> str:
        text = catalogue.gettext(message)
        return text % values if values else text

    def ngettext(singular: str, plural: str, n: int, **values: Any) -> str:
        return catalogue.ngettext(singular, plural, n) % {"num": n, **values}

    return gettext, ngettext


def language(request: web.Request) -> str:
    """The page's language; the hub's ``language`` setting when the request
    names none this panel speaks."""
    configured = _configured_language(request)
    return negotiate(request, configured if configured in LANGS else DEFAULT_LANG)


def _configured_language(request: web.Request) -> str | None:
    try:
        return str(hub_of(request).config.settings.hub.language)[:2]
    except (AttributeError, KeyError):
        return None


def zone_of(request: web.Request) -> ZoneInfo:
    try:
        return hub_of(request).config.settings.hub.zone
    except (AttributeError, KeyError):
        return ZoneInfo("Europe/Paris")


def nav_for(principal: Principal | None) -> list[NavItem]:
    if principal is None:
        return []
    return [item for item in NAV if any(principal.has(p) for p in item.permissions)]


def context(request: web.Request, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What every template gets (see the module's docstring), then ``values``."""
    lang = language(request)
    gettext, ngettext = translators(lang)
    other = "en" if lang == "fr" else "fr"
    principal: Principal | None = request.get(PRINCIPAL_KEY)
    session = request.get(SESSION_KEY)
    zone = zone_of(request)
    base = {
        "_": gettext,
        "gettext": gettext,
        "ngettext": ngettext,
        "lang": lang,
        "locale": LOCALES[lang],
        "other_lang": other,
        # the switch keeps the page's own query (a camera, a range, a filter)
        "lang_href": "?" + request.rel_url.update_query(lang=other).query_string,
        "me": principal,
        "csrf": session.csrf if session is not None else "",
        "nav": nav_for(principal),
        "zone": zone.key,
        "tz": zone,
        "path": request.path,
    }
    base.update(values or {})
    return base


def page(
    request: web.Request,
    template: str,
    values: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    tile_origins: Iterable[str] = (),
) -> web.Response:
    """Render ``template`` for ``request``; a ``?lang=`` choice is kept in a cookie."""
    response = aiohttp_jinja2.render_template(
        template, request, context(request, values), status=status
    )
    response.headers.update(page_headers(tile_origins))
    asked = request.query.get("lang")
    if asked in LANGS:
        response.set_cookie(
            LANG_COOKIE, asked, path="/", samesite="Strict", max_age=365 * 86400, httponly=True
        )
    return response


def _as_datetime(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, ZoneInfo("UTC"))
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    raise TypeError(f"not a time: {value!r}")


@jinja2.pass_context
def format_when(ctx: Any, value: Any, fmt: str = "medium") -> str:
    """A time in the hub's zone and the page's locale, with the zone's name:
    ``29 nov. 2026, 21:05:00 CET``. Naive datetimes are taken as UTC."""
    try:
        moment = _as_datetime(value)
    except (ValueError, OverflowError, OSError):  # a time no calendar holds: say it as it is
        return str(value)[:40]
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    local = moment.astimezone(ctx["tz"])
    text = format_datetime(local, format=fmt, locale=ctx["locale"])
    return f"{text} {local.tzname()}"


@jinja2.pass_context
def format_day(ctx: Any, value: Any, fmt: str = "full") -> str:
    if isinstance(value, str):
        value = date.fromisoformat(value)
    if isinstance(value, datetime):
        value = value.astimezone(ctx["tz"]).date()
    return format_date(value, format=fmt, locale=ctx["locale"])
