"""The site file's top-level schema, assembled from core and plugin sections."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import voluptuous as vol

from csuhub.config import validators as cv
from csuhub.specs import ConfigSectionSpec

#: The legal cap on retention per jurisdiction, in days (CSI L252-5 for France).
JURISDICTION_RETENTION_CAP_DAYS = {"fr": 30}

CORE_SECTIONS = ("hub", "plugins", "cameras", "discovery")

WEB_SCHEMA = vol.Schema(
    {
        vol.Optional("host", default="127.0.0.1"): cv.host,
        vol.Optional("port", default=8480): cv.port_or_zero,
    }
)

HUB_SCHEMA = vol.Schema(
    {
        vol.Optional("name", default="csuhub"): vol.All(str, vol.Length(min=1, max=100)),
        vol.Optional("timezone", default="Europe/Paris"): str,
        vol.Optional("language", default="fr"): vol.In(["fr", "en"]),
        vol.Optional("data_dir"): str,
        vol.Optional("web", default={}): WEB_SCHEMA,
        vol.Optional("jurisdiction", default="fr"): vol.In(sorted(JURISDICTION_RETENTION_CAP_DAYS)),
    }
)

PLUGINS_SCHEMA = vol.Schema({vol.Optional("disabled", default=[]): vol.All(cv.ensure_list, [str])})

CAMERA_SCHEMA = vol.Schema(
    {
        vol.Required("id"): cv.slug,
        vol.Optional("name"): vol.All(str, vol.Length(min=1, max=200)),
        vol.Required("driver"): cv.slug,
        vol.Optional("options", default={}): dict,
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


def _unique_ids(cameras: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    for index, camera in enumerate(cameras):
        if camera["id"] in seen:
            raise vol.Invalid(f"duplicate camera id {camera['id']!r}", path=[index, "id"])
        seen.add(camera["id"])
    return cameras


def site_schema(sections: Iterable[ConfigSectionSpec] = ()) -> vol.Schema:
    """Core sections plus those claimed by plugins through ``register_config_schemas``."""
    schema: dict[Any, Any] = {
        vol.Optional("hub", default={}): HUB_SCHEMA,
        vol.Optional("plugins", default={}): PLUGINS_SCHEMA,
        vol.Optional("cameras", default=[]): vol.All(
            cv.ensure_list, cv.each(CAMERA_SCHEMA), _unique_ids
        ),
        vol.Optional("discovery", default=[]): vol.All(cv.ensure_list, cv.each(DISCOVERY_SCHEMA)),
    }
    for spec in sections:
        schema[vol.Optional(spec.section)] = spec.schema
    return vol.Schema(schema)
