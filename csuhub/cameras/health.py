"""Health checks of one driven camera: connect, check periodically, and say why not.

A camera that fails is checked again with a capped exponential backoff, so one
that comes back is noticed (and recorded again) within ``MAX_HEALTH_BACKOFF``.
A camera refusing the credentials is asked again only after 1, 2, 5, then
every 10 times ``CameraManager.auth_backoff``: each try is two connections,
and retrying every few seconds locks accounts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from csuhub.backoff import AUTH_STEPS, Backoff, SteppedBackoff
from csuhub.cameras.model import DEGRADED, OFFLINE, ONLINE
from csuhub.events import CameraRetryScheduled
from csuhub.protocols import CameraDriver

if TYPE_CHECKING:
    from csuhub.cameras.manager import CameraManager

_LOGGER = logging.getLogger(__name__)

#: Health checks back off while a camera fails, up to this: a camera that comes
#: back is noticed (and recorded again) within this long.
MAX_HEALTH_BACKOFF = 10.0
#: A camera refusing the credentials is asked again after these multiples of
#: ``CameraManager.auth_backoff`` (60 s: 1, 2, 5, then every 10 min).
AUTH_BACKOFF_STEPS = AUTH_STEPS
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


class HealthCheck:
    """The health loop of one camera (a supervised task, ``camera-health:<id>``)."""

    def __init__(self, cameras: CameraManager, camera_id: str, driver: CameraDriver) -> None:
        self.cameras = cameras
        self.hub = cameras.hub
        self.camera_id = camera_id
        self.driver = driver
        self.backoff = Backoff(1.0, MAX_HEALTH_BACKOFF)
        #: multiples of ``cameras.auth_backoff``, read at each refusal
        self.refusals = SteppedBackoff(1.0, AUTH_BACKOFF_STEPS)

    async def run(self) -> None:
        """Connect, then check periodically; back off exponentially while it fails."""
        connected = False
        while True:
            started = time.monotonic()
            retry_after = None
            unauthorized = False
            try:
                if not connected:
                    await self.driver.connect()
                    connected = True
                    await self._store_device()
                healthy = await self.driver.check_health()
                reason = "" if healthy else "health check failed"
            except Exception as err:
                healthy, reason = False, _reason(err)
                retry_after = getattr(err, "retry_after", None)
                unauthorized = getattr(err, "kind", None) == "unauthorized"
                connected = False
                with contextlib.suppress(Exception):
                    await self.driver.close()
            elapsed = time.monotonic() - started
            if healthy and elapsed > SLOW_CHECK:
                state, reason = DEGRADED, f"slow to answer ({elapsed:.1f}s)"
            else:
                state = ONLINE if healthy else OFFLINE
            if unauthorized:
                wait = self.cameras.auth_backoff * self.refusals.next()
                await self._refused(reason, wait)
                await asyncio.sleep(wait)
                continue
            self.refusals.reset()
            await self.cameras.set_state(self.camera_id, state, reason)
            if healthy:
                self.backoff.reset()
                await self._seen()
                await asyncio.sleep(self.cameras.health_interval)
            elif isinstance(retry_after, int | float) and retry_after > 0:
                # reachable but busy (503 while it prepares its stream): not a reason to
                # back off; ask again when it says, bounded by the backoff cap
                await asyncio.sleep(min(float(retry_after), MAX_HEALTH_BACKOFF))
            else:
                await asyncio.sleep(self.backoff.next())

    async def _seen(self) -> None:
        """Note a healthy check; store it at most every ``LAST_SEEN_EVERY``."""
        now = time.time()
        self.cameras.last_seen[self.camera_id] = now
        saved = self.cameras.seen_saved
        tick = time.monotonic()  # a clock step must not stop the writes
        if tick - saved.get(self.camera_id, -LAST_SEEN_EVERY) >= LAST_SEEN_EVERY:
            saved[self.camera_id] = tick
            await self.hub.store.upsert_camera(self.camera_id, last_seen=now)

    async def _store_device(self) -> None:
        """Keep what the device says it is (maker, model, firmware, serial, profiles,
        stream URIs) in the register, written only when it changed.

        The register must say which device was adopted: a swapped camera or a
        firmware update shows here. A driver that cannot describe itself costs
        nothing but this record.
        """
        camera_id = self.camera_id
        try:
            async with asyncio.timeout(DESCRIBE_TIMEOUT):
                described = await self.driver.describe()
            dumped = json.dumps(described, default=str)
        except Exception as err:
            _LOGGER.debug("camera %s: describe failed: %s", camera_id, err)
            return
        device: Any = json.loads(dumped) if len(dumped) <= MAX_DEVICE_INFO else None
        if not isinstance(device, dict):
            _LOGGER.warning("camera %s: device description unusable or too large", camera_id)
            return
        volatile = {k: device.pop(k) for k in VOLATILE_DEVICE_KEYS if k in device}
        if device == self.cameras.device_saved.get(camera_id):
            return
        self.cameras.device_saved[camera_id] = dict(device)
        await self.hub.store.upsert_camera(
            camera_id, device={**device, **volatile, "read_at": time.time()}
        )

    async def _refused(self, reason: str, wait: float) -> None:
        """The camera refused the credentials: offline, saying when the next try is."""
        camera_id = self.camera_id
        retry_at = time.time() + wait
        at = time.strftime("%H:%M:%S", time.localtime(retry_at))
        said = f"{reason}; next try at {at} (in {_human(wait)})"
        if self.cameras.states.get(camera_id) == OFFLINE:
            # same state, new reason: stored (``cameras show``), not a state change
            await self.hub.store.set_camera_state(camera_id, OFFLINE, said)
        else:
            await self.cameras.set_state(camera_id, OFFLINE, said)
        _LOGGER.warning("camera %s: %s", camera_id, said)
        self.hub.bus.fire(
            CameraRetryScheduled(
                camera_id=camera_id, reason=reason, retry_in=wait, retry_at=retry_at
            )
        )


def _human(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    return f"{seconds / 60:.3g} min"


def _reason(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return text if len(text) < 300 else text[:297] + "..."
