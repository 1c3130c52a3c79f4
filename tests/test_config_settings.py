"""Typed settings: built from the validated site, defaults only from the schema."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import csuhub.config
from csuhub.config import Settings, SiteConfig, load_site_text
from csuhub.config.schema import CORE_SCHEMAS, LILLE_DISTRICTS
from csuhub.config.settings import (
    CameraSettings,
    HubSettings,
    RecordingSettings,
    RetentionSettings,
)

MINIMAL = "hub: {name: CSU Test}\n"

SITE = """
hub:
  name: CSU Test
  timezone: Europe/London
  data_dir: data
  web: {port: 0}
  districts: [Centre]
recording:
  segment: 10s
  audio: true
  storage: /srv/rec
retention:
  default: 7d
  interval: 5m
  policies: [{policy: max_age, options: {max_age: 3d}}]
discovery:
  - {source: onvif, interval: 1m}
cameras:
  - id: cam-1
    driver: simcam
    retention: 2d
    credentials: {username: u, password: p}
    location: {lat: 50.63, lon: 3.06, district: Centre}
    authorization: {reference: A-1, issued: 2026-01-01, expires: 2031-01-01}
    privacy_masks: [{polygon: [[0, 0], [1, 0], [1, 1]]}]
    tags: [door]
walls:
  - id: w1
    screens: [{id: s1, layout: grid, cameras: [cam-1]}]
"""


def schema_default(section: str) -> Any:
    """What the schema alone makes of a site that does not write ``section``."""
    schema, default = CORE_SCHEMAS[section]
    return schema(default)


def test_minimal_site_settings_are_the_schema_defaults() -> None:
    settings = load_site_text(MINIMAL, "<t>").settings
    assert settings.hub == HubSettings.of({**schema_default("hub"), "name": "CSU Test"})
    assert settings.recording == RecordingSettings.of(schema_default("recording"))
    assert settings.retention == RetentionSettings.of(schema_default("retention"))
    assert settings.plugins.disabled == ()
    assert settings.cameras == settings.discovery == settings.call_lines == settings.walls == ()


@pytest.mark.parametrize("section", ["hub", "recording", "retention", "plugins"])
def test_every_field_carries_the_schema_value(section: str) -> None:
    """Field by field, so a dataclass that invents a value of its own fails."""
    typed = getattr(load_site_text(MINIMAL, "<t>").settings, section)
    expected = schema_default(section)
    if section == "hub":
        expected["name"] = "CSU Test"
    for field in dataclasses.fields(typed):
        value = getattr(typed, field.name)
        raw = expected.get(field.name)
        if dataclasses.is_dataclass(value):
            assert dataclasses.asdict(value) == raw, field.name
        elif isinstance(value, tuple):
            assert [dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for v in value] == (
                raw
            ), field.name
        else:
            assert value == raw, field.name


def test_known_defaults() -> None:
    """The values docs/configuration.md states, pinned once here."""
    settings = load_site_text(MINIMAL, "<t>").settings
    assert settings.recording.segment == 60.0
    assert settings.recording.alert_after == 300.0
    assert settings.recording.backend == "ffmpeg"
    assert settings.retention.default == 14 * 86400.0
    assert settings.retention.interval == 60.0
    assert settings.retention.alert_before == 86400.0
    assert [p.policy for p in settings.retention.policies] == [
        "max_age",
        "incident_preservation",
        "storage_pressure",
    ]
    assert settings.hub.timezone == "Europe/Paris"
    assert settings.hub.zone == ZoneInfo("Europe/Paris")
    assert settings.hub.web.port == 8480
    assert settings.hub.districts == tuple(LILLE_DISTRICTS)
    assert settings.hub.retention_cap == 30 * 86400.0
    assert settings.hub.law == "CSI L252-5"


def test_changed_values_flow_typed() -> None:
    settings = load_site_text(SITE, "<t>").settings
    assert settings.hub.timezone == "Europe/London"
    assert settings.hub.data_dir == Path("data")
    assert settings.hub.storage_dir is None
    assert settings.hub.web.port == 0
    assert settings.hub.districts == ("Centre",)
    assert settings.recording.segment == 10.0
    assert settings.recording.audio is True
    assert settings.recording.storage == Path("/srv/rec")
    assert settings.retention.default == 7 * 86400.0
    assert settings.retention.interval == 300.0
    # options stay as written: the policy's own schema validates them when it is built
    assert [(p.policy, p.options) for p in settings.retention.policies] == [
        ("max_age", {"max_age": "3d"})
    ]
    (source,) = settings.discovery
    assert (source.source, source.interval, source.timeout) == ("onvif", 60.0, 5.0)
    camera = settings.camera("cam-1")
    assert isinstance(camera, CameraSettings)
    assert camera.enabled is True and camera.retention == 2 * 86400.0
    assert camera.credentials is not None and camera.credentials.password == "p"
    assert "p'" not in repr(camera.credentials)
    assert camera.location is not None and camera.location.district == "Centre"
    assert camera.authorization is not None
    assert camera.authorization.expires == dt.date(2031, 1, 1)
    assert camera.authorization.min_retention is None
    assert camera.privacy_masks[0].polygon == ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0))
    assert camera.tags == ("door",) and camera.groups == ()
    assert settings.camera("nope") is None
    (wall,) = settings.walls
    assert wall.screens[0].cameras == ("cam-1",)


def test_settings_are_frozen_and_built_once() -> None:
    config = load_site_text(MINIMAL, "<t>")
    assert config.settings is config.settings
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.settings.recording.segment = 1.0  # type: ignore[misc]
    assert Settings.from_config(config) == config.settings


def test_hand_built_config_gets_schema_defaults() -> None:
    """A SiteConfig built without validation (tests, tools) still gets the
    schema's defaults for the core sections it lacks."""
    config = SiteConfig(data={"recording": schema_default("recording") | {"segment": 4.0}})
    assert config.settings.recording.segment == 4.0
    assert config.settings.retention.interval == 60.0
    assert config.settings.hub.name == "csuhub"


def test_missing_plugin_section_is_none() -> None:
    """section() applies no defaults to a section the site does not write."""
    config = load_site_text(MINIMAL, "<t>")
    assert config.section("notify") is None
    assert config.section("notify", {}) == {}


def test_package_only_reexports() -> None:
    for name in csuhub.config.__all__:
        assert getattr(csuhub.config, name) is not None
    with pytest.raises(AttributeError):
        csuhub.config.no_such_name  # noqa: B018


@pytest.mark.parametrize(
    "module",
    [
        "csuhub.blueprint.expand",
        "csuhub.blueprint.loader",
        "csuhub.blueprint.models",
        "csuhub.blueprint.selectors",
        "csuhub.config",
        "csuhub.config.secrets",
        "csuhub.config.settings",
        "csuhub.config.site",
        "csuhub.config.validators",
        "csuhub.config.yaml_loader",
    ],
)
def test_each_module_imports_first(module: str) -> None:
    """Whatever is imported first, config and blueprint load: no half-initialised
    module on a cycle between the two packages."""
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
