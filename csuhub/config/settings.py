"""The validated site configuration as typed, frozen settings.

Why: the voluptuous schema (``schema.py``) is the one place a default is
written. Code that read ``section.get("segment", 60.0)`` restated it, and a
restated default drifts. ``Settings.from_config(config)`` (or
``config.settings``) builds these dataclasses from the validated sections,
so every field is present, typed (durations as float seconds, paths as
``Path``) and carries the schema's value. A core section absent from the
data (a ``SiteConfig`` built by hand) is validated from the schema's own
default, never from a value written here.

``options`` mappings are the validated dicts themselves, handed to the
plugin that owns them (a driver's or backend's schema): read them, do not
change them.

This module is longer than 450 lines because it is one flat list of small
dataclasses, one per section of the site file; splitting it would scatter
what ``Settings.from_data`` composes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from csuhub.config.schema import (
    CORE_SCHEMAS,
    JURISDICTION_LAW,
    JURISDICTION_RETENTION_CAP_DAYS,
    tile_origin,
)

if TYPE_CHECKING:
    from csuhub.config.site import SiteConfig

__all__ = [
    "AuthorizationSettings",
    "CallLineSettings",
    "CameraSettings",
    "CredentialsSettings",
    "DiscoverySettings",
    "HubSettings",
    "IncidentSettings",
    "LocationSettings",
    "MaskSettings",
    "PanelSettings",
    "PluginsSettings",
    "PolicySettings",
    "RecordingSettings",
    "RetentionSettings",
    "ScreenSettings",
    "Settings",
    "WallSettings",
    "WebSettings",
]

DAY = 86400.0


def _path(value: str | None) -> Path | None:
    return None if value is None else Path(value)


@dataclass(frozen=True, slots=True)
class WebSettings:
    host: str
    #: 0 asks the OS for a free port
    port: int

    @classmethod
    def of(cls, data: dict[str, Any]) -> WebSettings:
        return cls(host=data["host"], port=int(data["port"]))


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """How long audit entries are kept, in seconds, per class (docs/audit.md)."""

    consultations: float = 90 * DAY
    extractions: float = 365 * DAY

    @classmethod
    def of(cls, data: dict[str, Any]) -> AuditSettings:
        return cls(float(data["consultations"]), float(data["extractions"]))


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """Browser sessions, in seconds (the security module's ``SessionPolicy``)."""

    idle: float = 900.0
    absolute: float = 43200.0
    secure_cookie: str = "auto"

    @classmethod
    def of(cls, data: dict[str, Any]) -> SessionSettings:
        return cls(float(data["idle"]), float(data["absolute"]), str(data["secure_cookie"]))


@dataclass(frozen=True, slots=True)
class LockoutSettings:
    """Failed logins (the security module's ``LockoutPolicy``)."""

    account_after: int = 5
    address_after: int = 20
    first_lock: float = 60.0
    max_lock: float = 3600.0

    @classmethod
    def of(cls, data: dict[str, Any]) -> LockoutSettings:
        return cls(
            int(data["account_after"]),
            int(data["address_after"]),
            float(data["first_lock"]),
            float(data["max_lock"]),
        )


@dataclass(frozen=True, slots=True)
class HubSettings:
    name: str
    timezone: str
    language: str
    #: as written: a relative path is relative to the site file (resolved by the hub)
    data_dir: Path | None
    storage_dir: Path | None
    web: WebSettings
    jurisdiction: str
    districts: tuple[str, ...]
    audit: AuditSettings = AuditSettings()
    sessions: SessionSettings = SessionSettings()
    lockout: LockoutSettings = LockoutSettings()

    @classmethod
    def of(cls, data: dict[str, Any]) -> HubSettings:
        return cls(
            name=data["name"],
            timezone=data["timezone"],
            language=data["language"],
            data_dir=_path(data.get("data_dir")),
            storage_dir=_path(data.get("storage_dir")),
            web=WebSettings.of(data["web"]),
            jurisdiction=data["jurisdiction"],
            districts=tuple(data["districts"]),
            audit=AuditSettings.of(data["audit"]) if "audit" in data else AuditSettings(),
            sessions=SessionSettings.of(data["sessions"])
            if "sessions" in data
            else SessionSettings(),
            lockout=LockoutSettings.of(data["lockout"]) if "lockout" in data else LockoutSettings(),
        )

    @property
    def zone(self) -> ZoneInfo:
        """The site's time zone (validated, so it exists)."""
        return ZoneInfo(self.timezone)

    @property
    def retention_cap(self) -> float:
        """The legal cap on retention in seconds, set by the jurisdiction."""
        return JURISDICTION_RETENTION_CAP_DAYS[self.jurisdiction] * DAY

    @property
    def law(self) -> str:
        """The text that sets the cap, for messages (``CSI L252-5``)."""
        return JURISDICTION_LAW[self.jurisdiction]


@dataclass(frozen=True, slots=True)
class PluginsSettings:
    disabled: tuple[str, ...]

    @classmethod
    def of(cls, data: dict[str, Any]) -> PluginsSettings:
        return cls(disabled=tuple(data["disabled"]))


@dataclass(frozen=True, slots=True)
class CredentialsSettings:
    username: str
    #: may be a ``Secret``; kept out of the repr either way
    password: str = field(repr=False)

    @classmethod
    def of(cls, data: dict[str, Any]) -> CredentialsSettings:
        return cls(username=data["username"], password=data["password"])


@dataclass(frozen=True, slots=True)
class LocationSettings:
    lat: float
    lon: float
    address: str | None
    district: str | None
    #: degrees clockwise from true north; None when undeclared
    bearing: float | None = None
    #: the horizontal angle of view in degrees; None when undeclared
    fov: float | None = None

    @classmethod
    def of(cls, data: dict[str, Any]) -> LocationSettings:
        return cls(
            lat=float(data["lat"]),
            lon=float(data["lon"]),
            address=data.get("address"),
            district=data.get("district"),
            bearing=_float_or_none(data.get("bearing")),
            fov=_float_or_none(data.get("fov")),
        )


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True, slots=True)
class AuthorizationSettings:
    """The prefectoral order that allows a camera to record."""

    reference: str
    issued: dt.date
    expires: dt.date
    #: seconds; the hub never keeps this camera's footage for less
    min_retention: float | None

    @classmethod
    def of(cls, data: dict[str, Any]) -> AuthorizationSettings:
        return cls(
            reference=data["reference"],
            issued=data["issued"],
            expires=data["expires"],
            min_retention=_float(data.get("min_retention")),
        )


@dataclass(frozen=True, slots=True)
class MaskSettings:
    name: str | None
    #: points (x, y) as fractions of the image
    polygon: tuple[tuple[float, float], ...]

    @classmethod
    def of(cls, data: dict[str, Any]) -> MaskSettings:
        return cls(
            name=data.get("name"),
            polygon=tuple((float(x), float(y)) for x, y in data["polygon"]),
        )


@dataclass(frozen=True, slots=True)
class CameraSettings:
    id: str
    name: str | None
    driver: str
    enabled: bool
    options: dict[str, Any]
    credentials: CredentialsSettings | None
    location: LocationSettings | None
    authorization: AuthorizationSettings | None
    #: seconds; None means ``retention.default``
    retention: float | None
    privacy_masks: tuple[MaskSettings, ...]
    tags: tuple[str, ...]
    groups: tuple[str, ...]
    #: False: left off the public transparency page and its export
    public: bool = True

    @classmethod
    def of(cls, data: dict[str, Any]) -> CameraSettings:
        return cls(
            id=data["id"],
            name=data.get("name"),
            driver=data["driver"],
            enabled=bool(data["enabled"]),
            options=data["options"],
            credentials=_maybe(CredentialsSettings, data.get("credentials")),
            location=_maybe(LocationSettings, data.get("location")),
            authorization=_maybe(AuthorizationSettings, data.get("authorization")),
            retention=_float(data.get("retention")),
            privacy_masks=tuple(MaskSettings.of(m) for m in data["privacy_masks"]),
            tags=tuple(data["tags"]),
            groups=tuple(data["groups"]),
            public=bool(data.get("public", True)),
        )


@dataclass(frozen=True, slots=True)
class DiscoverySettings:
    source: str
    #: seconds between scans
    interval: float
    #: seconds a scan may take
    timeout: float
    options: dict[str, Any]

    @classmethod
    def of(cls, data: dict[str, Any]) -> DiscoverySettings:
        return cls(
            source=data["source"],
            interval=float(data["interval"]),
            timeout=float(data["timeout"]),
            options=data["options"],
        )


@dataclass(frozen=True, slots=True)
class RecordingSettings:
    backend: str
    #: as written; None means ``hub.storage_dir`` or its default
    storage: Path | None
    #: seconds per segment
    segment: float
    rtsp_transport: str
    audio: bool
    #: seconds a camera that may record can go without recording before an alert
    alert_after: float
    options: dict[str, Any]

    @classmethod
    def of(cls, data: dict[str, Any]) -> RecordingSettings:
        return cls(
            backend=data["backend"],
            storage=_path(data.get("storage")),
            segment=float(data["segment"]),
            rtsp_transport=data["rtsp_transport"],
            audio=bool(data["audio"]),
            alert_after=float(data["alert_after"]),
            options=data["options"],
        )


@dataclass(frozen=True, slots=True)
class PolicySettings:
    policy: str
    options: dict[str, Any]

    @classmethod
    def of(cls, data: dict[str, Any]) -> PolicySettings:
        return cls(policy=data["policy"], options=data["options"])


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    #: seconds footage is kept when its camera sets no ``retention``
    default: float
    #: in the order written; how they combine is in docs/retention.md
    policies: tuple[PolicySettings, ...]
    #: seconds before flagged or incident footage expires that operators are warned
    alert_before: float
    #: seconds between sweeps
    interval: float

    @classmethod
    def of(cls, data: dict[str, Any]) -> RetentionSettings:
        return cls(
            default=float(data["default"]),
            policies=tuple(PolicySettings.of(p) for p in data["policies"]),
            alert_before=float(data["alert_before"]),
            interval=float(data["interval"]),
        )


@dataclass(frozen=True, slots=True)
class CallLineSettings:
    id: str
    type: str
    name: str | None
    enabled: bool
    options: dict[str, Any]

    @classmethod
    def of(cls, data: dict[str, Any]) -> CallLineSettings:
        return cls(
            id=data["id"],
            type=data["type"],
            name=data.get("name"),
            enabled=bool(data["enabled"]),
            options=data["options"],
        )


@dataclass(frozen=True, slots=True)
class IncidentSettings:
    #: metres: cameras farther from the incident's point are not linked
    radius: float
    #: at most this many cameras are linked by proximity
    max_cameras: int
    prefer_field_of_view: bool
    #: seconds before the call that the footage hold starts
    hold_before: float
    #: seconds without change after which an open incident is closed (0: never)
    auto_close: float

    @classmethod
    def of(cls, data: dict[str, Any]) -> IncidentSettings:
        return cls(
            radius=float(data["radius"]),
            max_cameras=int(data["max_cameras"]),
            prefer_field_of_view=bool(data["prefer_field_of_view"]),
            hold_before=float(data["hold_before"]),
            auto_close=float(data["auto_close"]),
        )


@dataclass(frozen=True, slots=True)
class ScreenSettings:
    id: str
    name: str | None
    layout: str
    cameras: tuple[str, ...]
    options: dict[str, Any]

    @classmethod
    def of(cls, data: dict[str, Any]) -> ScreenSettings:
        return cls(
            id=data["id"],
            name=data.get("name"),
            layout=data["layout"],
            cameras=tuple(data["cameras"]),
            options=data["options"],
        )


@dataclass(frozen=True, slots=True)
class WallSettings:
    id: str
    name: str | None
    screens: tuple[ScreenSettings, ...]

    @classmethod
    def of(cls, data: dict[str, Any]) -> WallSettings:
        return cls(
            id=data["id"],
            name=data.get("name"),
            screens=tuple(ScreenSettings.of(s) for s in data["screens"]),
        )


@dataclass(frozen=True, slots=True)
class PanelSettings:
    """The panel's map tiles and the public transparency page's texts."""

    #: the tile server's URL template; None: a plain background, no request leaves the hub
    tile_url: str | None = None
    tile_attribution: str | None = None
    #: how to exercise the right of access; None: the law's text (docs/panel.md)
    access: str | None = None
    contact: str | None = None

    @classmethod
    def of(cls, data: dict[str, Any]) -> PanelSettings:
        tiles = data.get("tiles") or {}
        page = data.get("transparency") or {}
        return cls(
            tiles.get("url"), tiles.get("attribution"), page.get("access"), page.get("contact")
        )

    @property
    def tile_origins(self) -> tuple[str, ...]:
        """What the pages' CSP must allow for the map's images."""
        return () if self.tile_url is None else (tile_origin(self.tile_url),)


@dataclass(frozen=True, slots=True)
class Settings:
    """Every core section of a validated site, typed. Plugin sections are not
    here: a plugin reads its own with ``config.section(name)`` and its schema."""

    hub: HubSettings
    plugins: PluginsSettings
    cameras: tuple[CameraSettings, ...]
    discovery: tuple[DiscoverySettings, ...]
    recording: RecordingSettings
    retention: RetentionSettings
    call_lines: tuple[CallLineSettings, ...]
    incidents: IncidentSettings
    walls: tuple[WallSettings, ...]
    panel: PanelSettings = PanelSettings()

    @classmethod
    def from_config(cls, config: SiteConfig) -> Settings:
        """The settings of ``config``, built from its validated sections."""
        return cls.from_data(config.data)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Settings:
        """The settings of validated section data (``SiteConfig.data``)."""

        def section(name: str) -> Any:
            if name in data:
                return data[name]
            schema, default = CORE_SCHEMAS[name]
            return schema(default)

        return cls(
            hub=HubSettings.of(section("hub")),
            plugins=PluginsSettings.of(section("plugins")),
            cameras=tuple(CameraSettings.of(c) for c in section("cameras")),
            discovery=tuple(DiscoverySettings.of(d) for d in section("discovery")),
            recording=RecordingSettings.of(section("recording")),
            retention=RetentionSettings.of(section("retention")),
            call_lines=tuple(CallLineSettings.of(c) for c in section("call_lines")),
            incidents=IncidentSettings.of(section("incidents")),
            walls=tuple(WallSettings.of(w) for w in section("walls")),
            panel=PanelSettings.of(section("panel")),
        )

    def camera(self, camera_id: str) -> CameraSettings | None:
        """The configured camera ``camera_id``, if the site file declares it."""
        return next((c for c in self.cameras if c.id == camera_id), None)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _maybe(kind: Any, data: dict[str, Any] | None) -> Any:
    return None if data is None else kind.of(data)
