"""The site file's schema: core sections, plus sections plugins claim.

Each top-level section is validated on its own so that an error in
``cameras`` does not hide one in ``walls``; cross-section rules (legal
retention cap, camera references, districts) live in ``checks.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import voluptuous as vol

from csuhub.config import validators as cv
from csuhub.specs import ConfigSectionSpec

#: The legal cap on retention per jurisdiction, in days (CSI L252-5 for France).
JURISDICTION_RETENTION_CAP_DAYS = {"fr": 30}
JURISDICTION_LAW = {"fr": "CSI L252-5"}

#: Lille and its associated commune Hellemmes (the default when hub.districts is absent).
LILLE_DISTRICTS = [
    "Vieux-Lille",
    "Centre",
    "Wazemmes",
    "Moulins",
    "Fives",
    "Saint-Maurice Pellevoisin",
    "Bois-Blancs",
    "Lille-Sud",
    "Faubourg de Béthune",
    "Vauban-Esquermes",
    "Hellemmes",
]

CORE_SECTIONS = (
    "hub",
    "plugins",
    "cameras",
    "discovery",
    "recording",
    "retention",
    "call_lines",
    "incidents",
    "walls",
    "panel",
)

WEB_SCHEMA = vol.Schema(
    {
        vol.Optional("host", default="127.0.0.1"): cv.host,
        vol.Optional("port", default=8480): cv.port_or_zero,
    }
)

#: the audit's legal minimums, in days: consultations (views, playback) three
#: months, extractions (exports, requisitions) a year; configurable upward only
AUDIT_MINIMUM_DAYS = {"consultations": 90, "extractions": 365}


def _at_least(what: str) -> Any:
    days = AUDIT_MINIMUM_DAYS[what]

    def check(seconds: float) -> float:
        if seconds < days * 86400:
            raise vol.Invalid(
                f"the audit of {what} is kept at least {days} days; "
                f"{seconds / 86400:g} days is less (it can only be raised)"
            )
        return seconds

    return vol.All(cv.duration, check)


AUDIT_SCHEMA = vol.Schema(
    {
        vol.Optional("consultations", default=90 * 86400.0): _at_least("consultations"),
        vol.Optional("extractions", default=365 * 86400.0): _at_least("extractions"),
    }
)


#: browser sessions (csuhub/security/sessions.py): idle and absolute timeouts,
#: and whether the cookie is always Secure (behind a TLS-terminating proxy)
def _ordered(low: str, high: str) -> Any:
    def check(data: dict[str, Any]) -> dict[str, Any]:
        if data[low] > data[high]:
            raise vol.Invalid(f"{low} must not be longer than {high}", path=[low])
        return data

    return check


SESSIONS_SCHEMA = vol.Schema(
    {
        vol.Optional("idle", default=900.0): vol.All(cv.duration, vol.Range(min=60, max=86400)),
        vol.Optional("absolute", default=43200.0): vol.All(
            cv.duration, vol.Range(min=300, max=7 * 86400)
        ),
        vol.Optional("secure_cookie", default="auto"): vol.In(["auto", "always"]),
    }
)
SESSIONS_SCHEMA = vol.All(SESSIONS_SCHEMA, _ordered("idle", "absolute"))

#: failed logins (csuhub/security/lockout.py): after how many failures in a row
#: an account or an address is locked, for how long at first, at most
LOCKOUT_SCHEMA = vol.Schema(
    {
        vol.Optional("account_after", default=5): vol.All(int, vol.Range(min=1, max=100)),
        vol.Optional("address_after", default=20): vol.All(int, vol.Range(min=1, max=10000)),
        vol.Optional("first_lock", default=60.0): vol.All(cv.duration, vol.Range(min=1, max=86400)),
        vol.Optional("max_lock", default=3600.0): vol.All(
            cv.duration, vol.Range(min=1, max=7 * 86400)
        ),
    }
)
LOCKOUT_SCHEMA = vol.All(LOCKOUT_SCHEMA, _ordered("first_lock", "max_lock"))

HUB_SCHEMA = vol.Schema(
    {
        vol.Optional("name", default="csuhub"): cv.bounded_text(100),
        vol.Optional("timezone", default="Europe/Paris"): cv.timezone,
        vol.Optional("language", default="fr"): vol.In(["fr", "en"]),
        vol.Optional("data_dir"): cv.path_str,
        vol.Optional("storage_dir"): cv.path_str,
        vol.Optional("web", default={}): WEB_SCHEMA,
        vol.Optional("jurisdiction", default="fr"): vol.In(sorted(JURISDICTION_RETENTION_CAP_DAYS)),
        vol.Optional("districts", default=LILLE_DISTRICTS): vol.All(
            cv.ensure_list, [cv.bounded_text(100)], vol.Length(min=1)
        ),
        vol.Optional("audit", default={}): AUDIT_SCHEMA,
        vol.Optional("sessions", default={}): SESSIONS_SCHEMA,
        vol.Optional("lockout", default={}): LOCKOUT_SCHEMA,
    }
)

PLUGINS_SCHEMA = vol.Schema({vol.Optional("disabled", default=[]): vol.All(cv.ensure_list, [str])})

LOCATION_SCHEMA = vol.Schema(
    {
        vol.Required("lat"): cv.latitude,
        vol.Required("lon"): cv.longitude,
        vol.Optional("address"): cv.bounded_text(300),
        vol.Optional("district"): cv.bounded_text(100),
        # the declared field of view: where the camera looks (degrees from true
        # north, clockwise) and how wide; nearest-camera ranking prefers cameras
        # whose view covers an incident's point
        vol.Optional("bearing"): vol.All(vol.Coerce(float), vol.Range(min=0, max=360)),
        vol.Optional("fov"): vol.All(vol.Coerce(float), vol.Range(min=1, max=360)),
    }
)

AUTHORIZATION_SCHEMA = vol.Schema(
    {
        vol.Required("reference"): cv.bounded_text(100),
        vol.Required("issued"): cv.date,
        vol.Required("expires"): cv.date,
        # the retention period the prefect's order sets; the hub never keeps less
        vol.Optional("min_retention"): cv.duration,
    }
)

CREDENTIALS_SCHEMA = vol.Schema(
    {vol.Required("username"): str, vol.Optional("password", default=""): str}
)

MASK_SCHEMA = vol.Schema(
    {vol.Optional("name"): cv.bounded_text(100), vol.Required("polygon"): cv.polygon}
)

CAMERA_SCHEMA = vol.Schema(
    {
        vol.Required("id"): cv.slug,
        vol.Optional("name"): cv.bounded_text(200),
        vol.Required("driver"): cv.slug,
        vol.Optional("enabled", default=True): bool,
        vol.Optional("options", default={}): dict,
        vol.Optional("credentials"): CREDENTIALS_SCHEMA,
        vol.Optional("location"): LOCATION_SCHEMA,
        vol.Optional("authorization"): AUTHORIZATION_SCHEMA,
        vol.Optional("retention"): cv.duration,
        vol.Optional("privacy_masks", default=[]): cv.each(MASK_SCHEMA),
        vol.Optional("tags", default=[]): vol.All(cv.ensure_list, [cv.slug]),
        vol.Optional("groups", default=[]): vol.All(cv.ensure_list, [cv.slug]),
        # false: left off the public transparency page (/transparence) and its export
        vol.Optional("public", default=True): bool,
    }
)

DISCOVERY_SCHEMA = vol.Schema(
    {
        vol.Required("source"): cv.slug,
        vol.Optional("interval", default=300.0): cv.duration,
        vol.Optional("timeout", default=5.0): cv.duration,
        vol.Optional("options", default={}): dict,
    }
)

RECORDING_SCHEMA = vol.Schema(
    {
        vol.Optional("backend", default="ffmpeg"): cv.slug,
        vol.Optional("storage"): cv.path_str,
        vol.Optional("segment", default=60.0): vol.All(cv.duration, vol.Range(min=2, max=900)),
        vol.Optional("rtsp_transport", default="tcp"): vol.In(["tcp", "udp"]),
        vol.Optional("audio", default=False): bool,
        # raise an alert when a camera that may record has not for this long
        vol.Optional("alert_after", default=300.0): cv.duration,
        vol.Optional("options", default={}): dict,
    }
)

POLICY_SCHEMA = vol.Schema(
    {vol.Required("policy"): cv.slug, vol.Optional("options", default={}): dict}
)

RETENTION_SCHEMA = vol.Schema(
    {
        vol.Optional("default", default=14 * 86400.0): cv.duration,
        vol.Optional(
            "policies",
            default=[
                {"policy": "max_age", "options": {}},
                {"policy": "incident_preservation", "options": {}},
                {"policy": "storage_pressure", "options": {}},
            ],
        ): cv.each(POLICY_SCHEMA),
        # warn operators this long before flagged or incident footage expires
        vol.Optional("alert_before", default=24 * 3600.0): cv.duration,
        # how often the sweeper runs; it also runs at start-up to catch up
        vol.Optional("interval", default=60.0): vol.All(cv.duration, vol.Range(min=1)),
    }
)

CALL_LINE_SCHEMA = vol.Schema(
    {
        vol.Required("id"): cv.slug,
        vol.Required("type"): cv.slug,
        vol.Optional("name"): cv.bounded_text(100),
        vol.Optional("enabled", default=True): bool,
        vol.Optional("options", default={}): dict,
    }
)

#: incidents (csuhub/incidents/): which cameras a call links, what footage it protects
INCIDENTS_SCHEMA = vol.Schema(
    {
        # cameras farther than this from the incident's point are not linked
        vol.Optional("radius", default=500.0): vol.All(
            vol.Coerce(float), vol.Range(min=10, max=50000)
        ),
        # at most this many cameras are linked by proximity (nearest first)
        vol.Optional("max_cameras", default=6): vol.All(int, vol.Range(min=1, max=64)),
        # rank first the cameras whose declared field of view covers the point
        vol.Optional("prefer_field_of_view", default=True): bool,
        # an incident's hold on its cameras' footage starts this long before the call
        vol.Optional("hold_before", default=600.0): vol.All(
            cv.duration, vol.Range(min=0, max=86400)
        ),
        # an open incident nobody touched for this long is closed as stale (0: never)
        vol.Optional("auto_close", default=0.0): vol.All(
            cv.duration, vol.Range(min=0, max=30 * 86400)
        ),
    }
)


def screen_camera(value: Any) -> str:
    """A screen's camera: an id, or ``group:<group>`` / ``district:<district>``,
    the site's cameras of that group or district (the wall manager resolves them)."""
    if isinstance(value, str) and value.startswith("group:"):
        return "group:" + cv.slug(value[len("group:") :])
    if isinstance(value, str) and value.startswith("district:"):
        name = value[len("district:") :].strip()
        if not 0 < len(name) <= 100 or not name.isprintable():
            raise vol.Invalid("district: names a district (at most 100 characters)")
        return "district:" + name
    return cv.slug(value)


SCREEN_SCHEMA = vol.Schema(
    {
        vol.Required("id"): cv.slug,
        vol.Optional("name"): cv.bounded_text(100),
        vol.Required("layout"): cv.slug,
        vol.Optional("cameras", default=[]): vol.All(cv.ensure_list, [screen_camera]),
        vol.Optional("options", default={}): dict,
    }
)

WALL_SCHEMA = vol.Schema(
    {
        vol.Required("id"): cv.slug,
        vol.Optional("name"): cv.bounded_text(100),
        vol.Required("screens"): vol.All(
            cv.each(SCREEN_SCHEMA, "id", "screen id"),
            vol.Length(min=1, msg="a wall needs at least one screen"),
        ),
    }
)

#: a map tile URL: http(s), a plain host (its origin goes into the panel's CSP),
#: {z}, {x} and {y}, and nothing that could break out of a CSP source or a URL
_TILE_URL = re.compile(
    r"https?://[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?/[A-Za-z0-9._~/{}%=&?+-]{0,400}"
)


def tile_url(value: Any) -> str:
    """A tile server's URL template, e.g. ``https://tiles.example.org/{z}/{x}/{y}.png``."""
    if not isinstance(value, str) or _TILE_URL.fullmatch(value) is None:
        raise vol.Invalid(
            "expected http(s)://host[:port]/path with {z}, {x} and {y} "
            "(no user, no spaces, no quotes)"
        )
    placeholders = re.findall(r"\{([^{}]*)\}", value)
    if sorted(placeholders) != ["x", "y", "z"] or value.count("{") != 3 or value.count("}") != 3:
        raise vol.Invalid("the template holds {z}, {x} and {y} once each, and no other {...}")
    host, _, port = value.split("/", 3)[2].partition(":")
    if host.startswith(("-", ".")) or ".." in host or (port and not 0 < int(port) < 65536):
        raise vol.Invalid("not a host name and port")
    return value


def tile_origin(template: str) -> str:
    """The origin (scheme://host[:port]) a validated ``tile_url`` loads from."""
    scheme, _, rest = template.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


#: the panel (docs/panel.md): the map's tiles and the public transparency page
PANEL_SCHEMA = vol.Schema(
    {
        vol.Optional("tiles"): vol.Schema(
            {
                vol.Required("url"): tile_url,
                vol.Optional("attribution"): cv.bounded_text(300),
            }
        ),
        vol.Optional("transparency", default={}): vol.Schema(
            {
                # how a person exercises the right of access; default: the law's text
                vol.Optional("access"): cv.bounded_text(2000),
                vol.Optional("contact"): cv.bounded_text(300),
            }
        ),
    }
)

CORE_SCHEMAS: dict[str, tuple[Any, Any]] = {
    # section: (schema, default when absent)
    "hub": (HUB_SCHEMA, {}),
    "plugins": (PLUGINS_SCHEMA, {}),
    "cameras": (
        vol.All(cv.ensure_list, cv.each(CAMERA_SCHEMA, "id", "camera id")),
        [],
    ),
    "discovery": (vol.All(cv.ensure_list, cv.each(DISCOVERY_SCHEMA)), []),
    "recording": (RECORDING_SCHEMA, {}),
    "retention": (RETENTION_SCHEMA, {}),
    "call_lines": (
        vol.All(cv.ensure_list, cv.each(CALL_LINE_SCHEMA, "id", "call line id")),
        [],
    ),
    "incidents": (INCIDENTS_SCHEMA, {}),
    "walls": (vol.All(cv.ensure_list, cv.each(WALL_SCHEMA, "id", "wall id")), []),
    "panel": (PANEL_SCHEMA, {}),
}


def section_schemas(sections: Iterable[ConfigSectionSpec] = ()) -> dict[str, tuple[Any, Any]]:
    """Core sections plus those claimed by plugins through ``register_config_schemas``."""
    schemas = dict(CORE_SCHEMAS)
    for spec in sections:
        schemas[spec.section] = (spec.schema, None)
    return schemas


def site_schema(sections: Iterable[ConfigSectionSpec] = ()) -> vol.Schema:
    """The whole site as one voluptuous schema (used for "did you mean" key lookups)."""
    return vol.Schema(
        {vol.Optional(name): schema for name, (schema, _) in section_schemas(sections).items()}
    )
