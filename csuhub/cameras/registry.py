"""The camera register: which cameras exist, which may lawfully record, their health.

Lifecycle (the ``state`` column, persisted and fired as ``CameraStateChanged``)::

    discovered --(a driver claims it)--> pending_adoption --(adopt)--> adopted
    adopted --(health checks)--> online | degraded | offline
    configured cameras start at adopted; disabled and removed are terminal

A camera is *adopted* only with its prefectoral authorisation (reference and
expiry), a location and a district: through the site file, or through
``csuhub cameras adopt`` / ``POST /api/cameras/{id}/adopt``, which are audited.
The authorisation's status (valid, expiring within 30 days, expired,
missing) is tracked separately, re-evaluated hourly, and fired as
``CameraAuthorizationChanged``; ``may_record`` is what recording obeys.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import voluptuous as vol

from csuhub.config import validators as cv
from csuhub.config.components import camera_driver_options
from csuhub.config.diff import KeyedDiff
from csuhub.events import (
    CameraAuthorizationChanged,
    CameraDiscovered,
    CameraRetryScheduled,
    CameraStateChanged,
)
from csuhub.protocols import CameraDriver, DiscoveredCamera

if TYPE_CHECKING:
    from csuhub.hub import Hub

_LOGGER = logging.getLogger(__name__)

DISCOVERED = "discovered"
PENDING = "pending_adoption"
ADOPTED = "adopted"
ONLINE = "online"
DEGRADED = "degraded"
OFFLINE = "offline"
DISABLED = "disabled"
REMOVED = "removed"

AUTH_VALID = "valid"
AUTH_EXPIRING = "expiring"
AUTH_EXPIRED = "expired"
AUTH_MISSING = "missing"

#: From this many days before expiry, operators are warned.
EXPIRY_WARNING_DAYS = 30
#: Health checks back off while a camera fails, up to this: a camera that comes
#: back is noticed (and recorded again) within this long.
MAX_HEALTH_BACKOFF = 10.0
#: A camera refusing the credentials is asked again after these multiples of
#: ``CameraRegistry.auth_backoff`` (60 s: 1, 2, 5, then every 10 min): each try
#: is two connections, and retrying every few seconds locks accounts.
AUTH_BACKOFF_STEPS = (1, 2, 5, 10)
#: A health check slower than this marks the camera degraded.
SLOW_CHECK = 3.0
#: ``last_seen`` is written to the store at most this often per camera: it is
#: informational, and a durable transaction per camera per health check (100
#: cameras: 200 fsyncs a minute) costs CPU and buys nothing. The state itself
#: (online, offline...) is written on every change.
LAST_SEEN_EVERY = 300.0
#: A driver's ``describe()`` beyond this (JSON bytes) is not stored.
MAX_DEVICE_INFO = 64 * 1024
DESCRIBE_TIMEOUT = 10.0
#: Parts of ``describe()`` that change at every connection: stored, not compared.
VOLATILE_DEVICE_KEYS = ("clock_drift_s",)


class AdoptionError(ValueError):
    """Adoption refused; the message says what is missing, for admins."""


def authorization_status(expires: dt.date | str | None, today: dt.date | None = None) -> str:
    if expires is None:
        return AUTH_MISSING
    if isinstance(expires, str):
        expires = dt.date.fromisoformat(expires)
    today = today or dt.date.today()
    if expires < today:
        return AUTH_EXPIRED
    if (expires - today).days <= EXPIRY_WARNING_DAYS:
        return AUTH_EXPIRING
    return AUTH_VALID


ADOPT_SCHEMA = vol.Schema(
    {
        vol.Required("authorization"): vol.Schema(
            {
                vol.Required("reference"): cv.bounded_text(100),
                vol.Optional("issued"): cv.date,
                vol.Required("expires"): cv.date,
            }
        ),
        vol.Required("location"): vol.Schema(
            {
                vol.Required("lat"): cv.latitude,
                vol.Required("lon"): cv.longitude,
                vol.Required("district"): cv.bounded_text(100),
                vol.Optional("address"): cv.bounded_text(300),
            }
        ),
        vol.Optional("name"): cv.bounded_text(200),
        vol.Optional("driver"): cv.slug,
        vol.Optional("options", default={}): dict,
        vol.Optional("reason", default=""): vol.All(str, vol.Length(max=500)),
    }
)


@dataclass
class CameraEntry:
    """What the registry needs to drive one camera, from the site file or the store."""

    id: str
    name: str
    driver: str
    options: dict[str, Any]
    origin: str  # config | adopted
    authorization_expires: str | None = None
    enabled: bool = True


class CameraRegistry:
    def __init__(
        self, hub: Hub, *, health_interval: float = 30.0, auth_backoff: float = 60.0
    ) -> None:
        self.hub = hub
        self.health_interval = health_interval
        #: first wait after an authentication failure (see AUTH_BACKOFF_STEPS)
        self.auth_backoff = auth_backoff
        #: last healthy check (wall clock) and when last_seen was last stored (monotonic)
        self.last_seen: dict[str, float] = {}
        self._seen_saved: dict[str, float] = {}
        self._device_saved: dict[str, dict[str, Any]] = {}
        self.drivers: dict[str, CameraDriver] = {}
        self.states: dict[str, str] = {}
        self.authorization: dict[str, str] = {}
        self.entries: dict[str, CameraEntry] = {}
        self._unsub: list[Any] = []
        self._lock = asyncio.Lock()

    # -- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        self._unsub.append(self.hub.bus.listen(CameraDiscovered, self._on_discovered))
        for row in await self.hub.store.list_cameras():
            self.states[row.id] = row.state
            self.authorization[row.id] = row.authorization_status
        configured = {c["id"] for c in self.hub.config.section("cameras", [])}
        for camera in self.hub.config.section("cameras", []):
            await self._add_configured(camera)
        for row in await self.hub.store.list_cameras():
            if row.origin == "config" and row.id not in configured and row.state != REMOVED:
                await self.set_state(row.id, REMOVED, "no longer in the site file")
            elif row.origin == "adopted" and row.state not in (REMOVED, DISABLED):
                await self._start_adopted(row.id)
        self.hub.supervisor.spawn("camera-authorizations", self._authorization_loop)

    async def stop(self) -> None:
        for undo in self._unsub:
            undo()
        self._unsub.clear()
        for camera_id in list(self.drivers):
            await self._stop_driver(camera_id)

    async def apply(self, diff: KeyedDiff, cameras: list[dict[str, Any]]) -> None:
        """Apply a reload: touch only the cameras that were added, removed or changed."""
        by_id = {c["id"]: c for c in cameras}
        for camera_id in [*diff.removed, *diff.changed]:
            await self._stop_driver(camera_id)
        for camera_id in diff.removed:
            self.entries.pop(camera_id, None)
            await self.set_state(camera_id, REMOVED, "removed from the site file")
        for camera_id in [*diff.changed, *diff.added]:
            await self._add_configured(by_id[camera_id])

    # -- building drivers ----------------------------------------------------------

    async def _add_configured(self, camera: dict[str, Any]) -> None:
        camera_id = camera["id"]
        auth = camera.get("authorization") or {}
        location = dict(camera.get("location") or {})
        # the same mapping ``csuhub check`` validated against the driver's schema
        options = camera_driver_options(camera)
        expires = auth.get("expires")
        await self.hub.store.upsert_camera(
            camera_id,
            name=camera.get("name") or camera_id,
            driver=camera["driver"],
            origin="config",
            location=location,
            authorization_ref=auth.get("reference"),
            authorization_issued=str(auth["issued"]) if auth.get("issued") else None,
            authorization_expires=str(expires) if expires else None,
            state=self.states.get(camera_id) or ADOPTED,
        )
        entry = CameraEntry(
            id=camera_id,
            name=camera.get("name") or camera_id,
            driver=camera["driver"],
            options=options,
            origin="config",
            authorization_expires=str(expires) if expires else None,
            enabled=camera.get("enabled", True),
        )
        self.entries[camera_id] = entry
        await self._update_authorization(camera_id, entry.authorization_expires)
        if not entry.enabled:
            await self.set_state(camera_id, DISABLED, "disabled in the site file")
            return
        await self._start_driver(entry)

    async def _start_adopted(self, camera_id: str) -> None:
        row = await self.hub.store.get_camera(camera_id)
        if row is None:
            return
        options = dict(row.options)
        secret = options.pop("password_secret", None)
        if secret:
            options["password"] = self.hub.secret(secret) or ""
        entry = CameraEntry(
            id=row.id,
            name=row.name,
            driver=row.driver,
            options=options,
            origin="adopted",
            authorization_expires=row.authorization_expires,
        )
        self.entries[camera_id] = entry
        await self._update_authorization(camera_id, entry.authorization_expires)
        await self._start_driver(entry)

    async def _start_driver(self, entry: CameraEntry) -> None:
        camera_id = entry.id
        spec = self.hub.registry.camera_drivers.get(entry.driver)
        if spec is None:
            await self.set_state(
                camera_id,
                OFFLINE,
                f"no camera driver named {entry.driver!r} (see `csuhub plugins`)",
            )
            return
        try:
            options = spec.config_schema(entry.options)
            driver = spec.factory(self.hub, camera_id, options)
            if not isinstance(driver, CameraDriver):
                raise TypeError(f"driver {spec.name!r} factory returned {type(driver).__name__}")
        except vol.Invalid as err:
            await self.set_state(camera_id, OFFLINE, f"driver options invalid: {err}")
            return
        except Exception as err:
            await self.set_state(camera_id, OFFLINE, f"driver setup failed: {err}")
            return
        self.drivers[camera_id] = driver
        if self.states.get(camera_id) not in (ONLINE, DEGRADED, OFFLINE):
            await self.set_state(camera_id, ADOPTED)
        self.hub.supervisor.spawn(f"camera-health:{camera_id}", lambda: self._health(camera_id))

    async def _stop_driver(self, camera_id: str) -> None:
        await self.hub.supervisor.cancel(f"camera-health:{camera_id}")
        driver = self.drivers.pop(camera_id, None)
        if driver is not None:
            try:
                await driver.close()
            except Exception:
                _LOGGER.exception("camera %s: driver close failed", camera_id)

    # -- health -----------------------------------------------------------------

    async def _health(self, camera_id: str) -> None:
        """Connect, then check periodically; back off exponentially while it fails."""
        driver = self.drivers[camera_id]
        backoff = 1.0
        connected = False
        auth_failures = 0
        while True:
            started = time.monotonic()
            retry_after = None
            unauthorized = False
            try:
                if not connected:
                    await driver.connect()
                    connected = True
                    await self._store_device(camera_id, driver)
                healthy = await driver.check_health()
                reason = "" if healthy else "health check failed"
            except Exception as err:
                healthy, reason = False, _reason(err)
                retry_after = getattr(err, "retry_after", None)
                unauthorized = getattr(err, "kind", None) == "unauthorized"
                connected = False
                with contextlib.suppress(Exception):
                    await driver.close()
            elapsed = time.monotonic() - started
            if healthy and elapsed > SLOW_CHECK:
                state, reason = DEGRADED, f"slow to answer ({elapsed:.1f}s)"
            else:
                state = ONLINE if healthy else OFFLINE
            if unauthorized:
                step = AUTH_BACKOFF_STEPS[min(auth_failures, len(AUTH_BACKOFF_STEPS) - 1)]
                wait = self.auth_backoff * step
                auth_failures += 1
                await self._refused(camera_id, reason, wait)
                await asyncio.sleep(wait)
                continue
            auth_failures = 0
            await self.set_state(camera_id, state, reason)
            if healthy:
                backoff = 1.0
                now = time.time()
                self.last_seen[camera_id] = now
                tick = time.monotonic()  # a clock step must not stop the writes
                if tick - self._seen_saved.get(camera_id, -LAST_SEEN_EVERY) >= LAST_SEEN_EVERY:
                    self._seen_saved[camera_id] = tick
                    await self.hub.store.upsert_camera(camera_id, last_seen=now)
                await asyncio.sleep(self.health_interval)
            elif isinstance(retry_after, int | float) and retry_after > 0:
                # reachable but busy (503 while it prepares its stream): not a reason to
                # back off; ask again when it says, bounded by the backoff cap
                await asyncio.sleep(min(float(retry_after), MAX_HEALTH_BACKOFF))
            else:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_HEALTH_BACKOFF)

    async def _store_device(self, camera_id: str, driver: CameraDriver) -> None:
        """Keep what the device says it is (maker, model, firmware, serial, profiles,
        stream URIs) in the register, written only when it changed.

        The register must say which device was adopted: a swapped camera or a
        firmware update shows here. A driver that cannot describe itself costs
        nothing but this record.
        """
        try:
            async with asyncio.timeout(DESCRIBE_TIMEOUT):
                described = await driver.describe()
            dumped = json.dumps(described, default=str)
        except Exception as err:
            _LOGGER.debug("camera %s: describe failed: %s", camera_id, err)
            return
        device = json.loads(dumped) if len(dumped) <= MAX_DEVICE_INFO else None
        if not isinstance(device, dict):
            _LOGGER.warning("camera %s: device description unusable or too large", camera_id)
            return
        volatile = {k: device.pop(k) for k in VOLATILE_DEVICE_KEYS if k in device}
        if device == self._device_saved.get(camera_id):
            return
        self._device_saved[camera_id] = dict(device)
        await self.hub.store.upsert_camera(
            camera_id, device={**device, **volatile, "read_at": time.time()}
        )

    async def _refused(self, camera_id: str, reason: str, wait: float) -> None:
        """The camera refused the credentials: offline, saying when the next try is."""
        retry_at = time.time() + wait
        at = time.strftime("%H:%M:%S", time.localtime(retry_at))
        said = f"{reason}; next try at {at} (in {_human(wait)})"
        if self.states.get(camera_id) == OFFLINE:
            # same state, new reason: stored (``cameras show``), not a state change
            await self.hub.store.set_camera_state(camera_id, OFFLINE, said)
        else:
            await self.set_state(camera_id, OFFLINE, said)
        _LOGGER.warning("camera %s: %s", camera_id, said)
        self.hub.bus.fire(
            CameraRetryScheduled(
                camera_id=camera_id, reason=reason, retry_in=wait, retry_at=retry_at
            )
        )

    async def set_state(self, camera_id: str, state: str, reason: str = "") -> None:
        old = self.states.get(camera_id)
        if old == state:
            return
        self.states[camera_id] = state
        await self.hub.store.set_camera_state(camera_id, state, reason)
        if old in (ONLINE, DEGRADED) and state not in (ONLINE, DEGRADED):
            seen = self.last_seen.get(camera_id)
            if seen is not None:  # the stored value may be minutes old: store the truth
                await self.hub.store.upsert_camera(camera_id, last_seen=seen)
        self.hub.bus.fire(
            CameraStateChanged(camera_id=camera_id, old_state=old, new_state=state, reason=reason)
        )

    # -- the legal register --------------------------------------------------------

    async def _update_authorization(self, camera_id: str, expires: str | None) -> None:
        status = authorization_status(expires)
        old = self.authorization.get(camera_id)
        if old == status:
            return
        self.authorization[camera_id] = status
        await self.hub.store.upsert_camera(camera_id, authorization_status=status)
        self.hub.bus.fire(
            CameraAuthorizationChanged(
                camera_id=camera_id, old_status=old, status=status, expires=expires
            )
        )
        if status in (AUTH_EXPIRED, AUTH_EXPIRING):
            _LOGGER.warning("camera %s: authorisation %s (expires %s)", camera_id, status, expires)

    async def _authorization_loop(self) -> None:
        while True:
            await asyncio.sleep(3600)
            await self.check_authorizations()

    async def check_authorizations(self) -> None:
        for camera_id, entry in list(self.entries.items()):
            await self._update_authorization(camera_id, entry.authorization_expires)

    def may_record(self, camera_id: str) -> tuple[bool, str]:
        """Whether the law and the camera's health allow recording it now, and why not."""
        entry = self.entries.get(camera_id)
        if entry is None:
            return False, "not adopted"
        if not entry.enabled:
            return False, "disabled"
        status = self.authorization.get(camera_id, AUTH_MISSING)
        if status == AUTH_MISSING:
            return False, "no prefectoral authorisation"
        if status == AUTH_EXPIRED:
            return False, f"prefectoral authorisation expired on {entry.authorization_expires}"
        state = self.states.get(camera_id)
        if state not in (ONLINE, DEGRADED):
            return False, f"camera {state or 'unknown'}"
        return True, ""

    # -- discovery and adoption ------------------------------------------------------

    async def _on_discovered(self, event: CameraDiscovered) -> None:
        async with self._lock:
            row = await self.hub.store.camera_by_ref(event.ref)
            if row is not None:
                if row.address != event.address:  # DHCP moved it: same camera, new address
                    await self.hub.store.upsert_camera(row.id, address=event.address)
                    if row.origin == "adopted" and "host" in row.options:
                        options = {**row.options, "host": event.address}
                        await self.hub.store.upsert_camera(row.id, options=options)
                await self.hub.store.upsert_camera(row.id, last_seen=time.time())
                return
            camera_id = _slug_for(event.ref)
            found = DiscoveredCamera(
                ref=event.ref,
                address=event.address,
                source=event.source,
                name=event.info.get("name"),
                driver=event.info.get("driver"),
                info=event.info,
            )
            driver = found.driver or self.hub.driver_for(found) or ""
            state = PENDING if driver and driver in self.hub.registry.camera_drivers else DISCOVERED
            await self.hub.store.upsert_camera(
                camera_id,
                name=str(event.info.get("name") or camera_id)[:200],
                driver=driver,
                state=state,
                ref=event.ref,
                address=event.address,
                info=event.info,
                origin="discovered",
                last_seen=time.time(),
            )
            await self.set_state(
                camera_id, state, "" if state == PENDING else "no driver claims this camera"
            )

    async def adopt(self, camera_id: str, request: dict[str, Any], *, actor: str) -> None:
        """Adopt a discovered camera and start driving it; raises ``AdoptionError``."""
        await self.record_adoption(camera_id, request, actor=actor)
        await self._start_adopted(camera_id)

    async def record_adoption(self, camera_id: str, request: dict[str, Any], *, actor: str) -> None:
        """Validate and write the adoption to the register (no hub needs to be running)."""
        try:
            data = ADOPT_SCHEMA(request)
        except vol.MultipleInvalid as err:
            raise AdoptionError(
                "; ".join(f"{'.'.join(map(str, e.path))}: {e.msg}" for e in err.errors)
            ) from None
        districts = self.hub.config.hub["districts"]
        if data["location"]["district"] not in districts:
            raise AdoptionError(
                f"district {data['location']['district']!r} is not one of {', '.join(districts)}"
            )
        if authorization_status(data["authorization"]["expires"]) == AUTH_EXPIRED:
            raise AdoptionError(
                f"authorisation {data['authorization']['reference']} expired on "
                f"{data['authorization']['expires']}; a camera cannot be adopted without a "
                "valid one"
            )
        async with self._lock:
            row = await self.hub.store.get_camera(camera_id)
            if row is None:
                raise AdoptionError(f"no camera {camera_id!r} (see `csuhub cameras list`)")
            if row.origin == "config":
                raise AdoptionError(f"{camera_id} is declared in the site file; edit it there")
            if row.origin == "adopted" and row.state != REMOVED:
                raise AdoptionError(f"{camera_id} is already adopted")
            driver = data.get("driver") or row.driver
            if not driver or driver not in self.hub.registry.camera_drivers:
                raise AdoptionError(
                    f"no camera driver {driver!r} is available for {camera_id}; "
                    f"give one of: {', '.join(self.hub.registry.camera_drivers.names())}"
                )
            options = {**row.info.get("driver_options", {}), **data["options"]}
            auth = data["authorization"]
            await self.hub.store.upsert_camera(
                camera_id,
                name=data.get("name") or row.name,
                driver=driver,
                origin="adopted",
                options=options,
                location=data["location"],
                authorization_ref=auth["reference"],
                authorization_issued=str(auth["issued"]) if auth.get("issued") else None,
                authorization_expires=str(auth["expires"]),
                adopted_at=time.time(),
                adopted_by=actor,
            )
            await self.hub.store.audit(
                actor,
                "camera.adopt",
                camera_id,
                authorization=auth["reference"],
                expires=str(auth["expires"]),
                district=data["location"]["district"],
                driver=driver,
                reason=data["reason"],
            )
            await self.set_state(camera_id, ADOPTED, f"adopted by {actor}")

    async def sync_adopted(self) -> None:
        """Follow adoptions and forgets made by another process (``csuhub cameras``)."""
        rows = {row.id: row for row in await self.hub.store.list_cameras()}
        for camera_id, entry in list(self.entries.items()):
            if entry.origin == "adopted" and camera_id not in rows:
                await self._stop_driver(camera_id)
                self.entries.pop(camera_id, None)
                self.states.pop(camera_id, None)
        for camera_id, row in rows.items():
            if (
                row.origin == "adopted"
                and camera_id not in self.entries
                and row.state not in (REMOVED, DISABLED)
            ):
                self.states[camera_id] = row.state
                await self._start_adopted(camera_id)

    async def forget(self, camera_id: str, *, actor: str, reason: str = "") -> None:
        row = await self.hub.store.get_camera(camera_id)
        if row is None:
            raise AdoptionError(f"no camera {camera_id!r}")
        if row.origin == "config" and row.state != REMOVED:
            raise AdoptionError(f"{camera_id} is declared in the site file; remove it there")
        await self._stop_driver(camera_id)
        self.entries.pop(camera_id, None)
        await self.hub.store.delete_camera(camera_id)
        self.states.pop(camera_id, None)
        self.authorization.pop(camera_id, None)
        await self.hub.store.audit(
            actor, "camera.forget", camera_id, reason=reason, authorization=row.authorization_ref
        )

    def summary(self) -> dict[str, str]:
        return dict(sorted(self.states.items()))


def _human(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    return f"{seconds / 60:.3g} min"


def _reason(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return text if len(text) < 300 else text[:297] + "..."


def _slug_for(ref: str) -> str:
    cleaned = "".join(ch if ch.isalnum() else "-" for ch in ref.lower())
    cleaned = "-".join(part for part in cleaned.split("-") if part)
    for prefix in ("urn-uuid-", "urn-"):
        if cleaned.startswith(prefix):
            cleaned = cleaned[len(prefix) :]
    return ("disc-" + cleaned)[:63].rstrip("-")
