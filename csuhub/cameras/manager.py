"""The camera manager: which cameras exist, which may lawfully record, and the
drivers that talk to them.

It builds each camera's driver (from the site file or an adoption), runs its
health checks (:mod:`csuhub.cameras.health`), follows the prefectoral
authorisation (valid, expiring within 30 days, expired, missing; re-evaluated
hourly and fired as ``CameraAuthorizationChanged``) and answers
``may_record``, which recording obeys. Discovery and adoption are
:mod:`csuhub.cameras.adoption`; the states are :mod:`csuhub.cameras.model`.
Not to be confused with ``csuhub.registry``, the registry of plugin specs.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import voluptuous as vol

from csuhub.cameras import adoption
from csuhub.cameras.health import HealthCheck
from csuhub.cameras.model import (
    ADOPTED,
    AUTH_EXPIRED,
    AUTH_EXPIRING,
    AUTH_MISSING,
    DEGRADED,
    DISABLED,
    OFFLINE,
    ONLINE,
    REMOVED,
    AdoptionError,
    CameraEntry,
    authorization_status,
)
from csuhub.config.components import camera_driver_options
from csuhub.config.diff import KeyedDiff
from csuhub.events import CameraAuthorizationChanged, CameraDiscovered, CameraStateChanged
from csuhub.protocols import CameraDriver
from csuhub.security.context import acting

if TYPE_CHECKING:
    from csuhub.services import HubServices

_LOGGER = logging.getLogger(__name__)


class CameraManager:
    def __init__(
        self, hub: HubServices, *, health_interval: float = 30.0, auth_backoff: float = 60.0
    ) -> None:
        self.hub = hub
        self.health_interval = health_interval
        #: first wait after an authentication failure (see ``health.AUTH_BACKOFF_STEPS``)
        self.auth_backoff = auth_backoff
        #: last healthy check (wall clock) and when last_seen was last stored (monotonic)
        self.last_seen: dict[str, float] = {}
        self.seen_saved: dict[str, float] = {}
        #: the device description last stored, per camera (written only when it changes)
        self.device_saved: dict[str, dict[str, Any]] = {}
        self.drivers: dict[str, CameraDriver] = {}
        self.states: dict[str, str] = {}
        self.authorization: dict[str, str] = {}
        self.entries: dict[str, CameraEntry] = {}
        self._unsub: list[Any] = []
        #: one discovery or adoption at a time writes a camera's row
        self.lock = asyncio.Lock()

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
            enabled=camera["enabled"],  # validated: the schema gives the default
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
        check = HealthCheck(self, camera_id, driver)
        self.hub.supervisor.spawn(f"camera-health:{camera_id}", check.run)

    async def _stop_driver(self, camera_id: str) -> None:
        await self.hub.supervisor.cancel(f"camera-health:{camera_id}")
        driver = self.drivers.pop(camera_id, None)
        if driver is not None:
            try:
                await driver.close()
            except Exception:
                _LOGGER.exception("camera %s: driver close failed", camera_id)

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

    def may_film(self, camera_id: str) -> str | None:
        """Why the law forbids the camera to film now (None: its prefectoral
        authorisation is valid today). Live view asks this, not
        ``may_record`` (a camera's health is not a legal question).

        Fails closed on two readings: the status kept here (re-evaluated
        hourly) and the expiry date read again today (the hourly check may not
        have run since midnight)."""
        entry = self.entries.get(camera_id)
        if entry is None:
            return "the camera is not adopted"
        try:
            today = authorization_status(entry.authorization_expires)
        except ValueError:
            return "the prefectoral authorisation's expiry date cannot be read"
        for status in (self.authorization.get(camera_id, AUTH_MISSING), today):
            if status == AUTH_MISSING:
                return "no prefectoral authorisation: the camera may not film"
            if status == AUTH_EXPIRED:
                return f"prefectoral authorisation expired on {entry.authorization_expires}"
        return None

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
        await adoption.on_discovered(self, event)

    async def adopt(self, camera_id: str, request: dict[str, Any], *, actor: str) -> None:
        """Adopt a discovered camera and start driving it; raises ``AdoptionError``."""
        await self.record_adoption(camera_id, request, actor=actor)
        await self._start_adopted(camera_id)

    async def record_adoption(self, camera_id: str, request: dict[str, Any], *, actor: str) -> None:
        """Validate and write the adoption to the register (no hub needs to be running)."""
        await adoption.record_adoption(self, camera_id, request, actor=actor)

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
        # on record before the register changes (a crash between leaves the intent)
        who = acting(actor)
        started = await self.hub.store.audit_event(
            who,
            "camera.forget",
            camera_id,
            reason=reason or None,
            outcome="started",
            authorization=row.authorization_ref,
        )
        await self._stop_driver(camera_id)
        self.entries.pop(camera_id, None)
        await self.hub.store.delete_camera(camera_id)
        self.states.pop(camera_id, None)
        self.authorization.pop(camera_id, None)
        await self.hub.store.audit_event(
            who, "camera.forget", camera_id, reason=reason or None, ref=started
        )

    def summary(self) -> dict[str, str]:
        return dict(sorted(self.states.items()))
