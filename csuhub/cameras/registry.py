"""The camera registry: which cameras exist, what drives them, and their state.

States at this stage: ``discovered`` (seen on the network, not configured),
``connecting``, ``online``, ``offline``. Every transition is persisted in the
store and fired on the bus as ``CameraStateChanged``. The adoption workflow
(prefectoral authorisation) extends this in the cameras issue.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import voluptuous as vol

from csuhub.config.diff import KeyedDiff
from csuhub.events import CameraDiscovered, CameraStateChanged
from csuhub.protocols import CameraDriver

if TYPE_CHECKING:
    from csuhub.hub import Hub

_LOGGER = logging.getLogger(__name__)

REMOVED = "removed"
DISABLED = "disabled"
DISCOVERED = "discovered"
CONNECTING = "connecting"
ONLINE = "online"
OFFLINE = "offline"


class CameraRegistry:
    def __init__(self, hub: Hub, *, health_interval: float = 30.0) -> None:
        self.hub = hub
        self.health_interval = health_interval
        self.drivers: dict[str, CameraDriver] = {}
        self.states: dict[str, str] = {}
        self._unsub: list[Any] = []

    async def start(self) -> None:
        self._unsub.append(self.hub.bus.listen(CameraDiscovered, self._on_discovered))
        for camera in self.hub.config.section("cameras", []):
            await self._add_configured(camera)

    async def stop(self) -> None:
        for undo in self._unsub:
            undo()
        self._unsub.clear()
        for camera_id, driver in list(self.drivers.items()):
            try:
                await driver.close()
            except Exception:
                _LOGGER.exception("camera %s: driver close failed", camera_id)
        self.drivers.clear()

    async def apply(self, diff: KeyedDiff, cameras: list[dict[str, Any]]) -> None:
        """Apply a reload: touch only the cameras that were added, removed or changed."""
        by_id = {c["id"]: c for c in cameras}
        for camera_id in [*diff.removed, *diff.changed]:
            await self._remove(camera_id)
        for camera_id in diff.removed:
            await self.set_state(camera_id, REMOVED, "removed from the configuration")
        for camera_id in [*diff.changed, *diff.added]:
            await self._add_configured(by_id[camera_id])

    async def _remove(self, camera_id: str) -> None:
        await self.hub.supervisor.cancel(f"camera-health:{camera_id}")
        driver = self.drivers.pop(camera_id, None)
        if driver is not None:
            try:
                await driver.close()
            except Exception:
                _LOGGER.exception("camera %s: driver close failed", camera_id)

    async def _add_configured(self, camera: dict[str, Any]) -> None:
        camera_id = camera["id"]
        if not camera.get("enabled", True):
            await self.hub.store.upsert_camera(
                camera_id,
                name=camera.get("name") or camera_id,
                driver=camera["driver"],
                state=DISABLED,
            )
            await self.set_state(camera_id, DISABLED, "disabled in the configuration")
            return
        spec = self.hub.registry.camera_drivers.get(camera["driver"])
        await self.hub.store.upsert_camera(
            camera_id,
            name=camera.get("name") or camera_id,
            driver=camera["driver"],
            state=CONNECTING,
        )
        if spec is None:
            await self.set_state(
                camera_id,
                OFFLINE,
                f"no camera driver named {camera['driver']!r} (see `csuhub plugins`)",
            )
            return
        try:
            options = spec.config_schema(camera.get("options", {}))
            driver = spec.factory(self.hub, camera_id, options)
            if not isinstance(driver, CameraDriver):
                raise TypeError(f"driver {spec.name!r} factory returned {type(driver).__name__}")
        except (vol.Invalid, Exception) as err:
            await self.set_state(camera_id, OFFLINE, f"driver setup failed: {err}")
            return
        self.drivers[camera_id] = driver
        await self.set_state(camera_id, CONNECTING)
        self.hub.supervisor.spawn(f"camera-health:{camera_id}", lambda: self._health(camera_id))

    async def _health(self, camera_id: str) -> None:
        """Connect, then check health periodically; back off exponentially while offline."""
        driver = self.drivers[camera_id]
        backoff = 1.0
        connected = False
        while True:
            try:
                if not connected:
                    await driver.connect()
                    connected = True
                healthy = await driver.check_health()
                reason = "" if healthy else "health check failed"
            except Exception as err:
                healthy, reason = False, f"{type(err).__name__}: {err}"
                connected = False
            await self.set_state(camera_id, ONLINE if healthy else OFFLINE, reason)
            if healthy:
                backoff = 1.0
                await asyncio.sleep(self.health_interval)
            else:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 300.0)

    async def set_state(self, camera_id: str, state: str, reason: str = "") -> None:
        old = self.states.get(camera_id)
        if old == state:
            return
        self.states[camera_id] = state
        await self.hub.store.set_camera_state(camera_id, state, reason)
        self.hub.bus.fire(
            CameraStateChanged(camera_id=camera_id, old_state=old, new_state=state, reason=reason)
        )

    async def _on_discovered(self, event: CameraDiscovered) -> None:
        for row in await self.hub.store.list_cameras():
            if row.ref == event.ref:
                return
        camera_id = _slug_for(event.ref)
        if camera_id in self.states:
            return
        await self.hub.store.upsert_camera(
            camera_id,
            name=str(event.info.get("name") or camera_id)[:200],
            driver=str(event.info.get("driver") or ""),
            state=DISCOVERED,
            ref=event.ref,
            address=event.address,
            info=event.info,
        )
        await self.set_state(camera_id, DISCOVERED)

    def summary(self) -> dict[str, str]:
        return dict(sorted(self.states.items()))


def _slug_for(ref: str) -> str:
    cleaned = "".join(ch if ch.isalnum() else "-" for ch in ref.lower()).strip("-")
    return ("disc-" + cleaned)[:63].rstrip("-")
