"""Discovered cameras and their adoption into the legal register.

A camera is *adopted* only with its prefectoral authorisation (reference and
expiry), a location and a district: through the site file, or through
``csuhub cameras adopt`` / ``POST /api/cameras/{id}/adopt``, which are audited.
Discovery only ever proposes (``discovered``, or ``pending_adoption`` when a
driver claims the device); it never records.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import voluptuous as vol

from csuhub.cameras.model import (
    ADOPTED,
    AUTH_EXPIRED,
    DISCOVERED,
    PENDING,
    REMOVED,
    AdoptionError,
    authorization_status,
)
from csuhub.config import validators as cv
from csuhub.events import CameraDiscovered
from csuhub.protocols import DiscoveredCamera
from csuhub.security.context import acting

if TYPE_CHECKING:
    from csuhub.cameras.manager import CameraManager

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


async def on_discovered(cameras: CameraManager, event: CameraDiscovered) -> None:
    """A device seen on the network: a known one gets its new address, a new one a
    row (``discovered``, or ``pending_adoption`` if a driver claims it)."""
    hub = cameras.hub
    async with cameras.lock:
        row = await hub.store.camera_by_ref(event.ref)
        if row is not None:
            if row.address != event.address:  # DHCP moved it: same camera, new address
                await hub.store.upsert_camera(row.id, address=event.address)
                if row.origin == "adopted" and "host" in row.options:
                    options = {**row.options, "host": event.address}
                    await hub.store.upsert_camera(row.id, options=options)
            await hub.store.upsert_camera(row.id, last_seen=time.time())
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
        driver = found.driver or hub.driver_for(found) or ""
        state = PENDING if driver and driver in hub.registry.camera_drivers else DISCOVERED
        await hub.store.upsert_camera(
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
        await cameras.set_state(
            camera_id, state, "" if state == PENDING else "no driver claims this camera"
        )


async def record_adoption(
    cameras: CameraManager, camera_id: str, request: dict[str, Any], *, actor: str
) -> None:
    """Validate and write the adoption to the register (no hub needs to be running).
    Audited: refused (with why), or started before the register changes and then
    concluded."""
    try:
        await _record_adoption(cameras, camera_id, request, actor=actor)
    except AdoptionError as err:
        await cameras.hub.store.audit_event(
            acting(actor), "camera.adopt", camera_id, outcome="refused", why=str(err)[:300]
        )
        raise


async def _record_adoption(
    cameras: CameraManager, camera_id: str, request: dict[str, Any], *, actor: str
) -> None:
    hub = cameras.hub
    try:
        data = ADOPT_SCHEMA(request)
    except vol.MultipleInvalid as err:
        raise AdoptionError(
            "; ".join(f"{'.'.join(map(str, e.path))}: {e.msg}" for e in err.errors)
        ) from None
    districts = hub.config.hub["districts"]
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
    async with cameras.lock:
        row = await hub.store.get_camera(camera_id)
        if row is None:
            raise AdoptionError(f"no camera {camera_id!r} (see `csuhub cameras list`)")
        if row.origin == "config":
            raise AdoptionError(f"{camera_id} is declared in the site file; edit it there")
        if row.origin == "adopted" and row.state != REMOVED:
            raise AdoptionError(f"{camera_id} is already adopted")
        driver = data.get("driver") or row.driver
        if not driver or driver not in hub.registry.camera_drivers:
            raise AdoptionError(
                f"no camera driver {driver!r} is available for {camera_id}; "
                f"give one of: {', '.join(hub.registry.camera_drivers.names())}"
            )
        options = {**row.info.get("driver_options", {}), **data["options"]}
        auth = data["authorization"]
        # on record before the register changes (a crash between leaves the intent)
        who = acting(actor)
        started = await hub.store.audit_event(
            who,
            "camera.adopt",
            camera_id,
            reason=data["reason"],
            outcome="started",
            authorization=auth["reference"],
            expires=str(auth["expires"]),
            district=data["location"]["district"],
            driver=driver,
        )
        await hub.store.upsert_camera(
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
        await hub.store.audit_event(
            who, "camera.adopt", camera_id, reason=data["reason"], ref=started
        )
        await cameras.set_state(camera_id, ADOPTED, f"adopted by {actor}")


def _slug_for(ref: str) -> str:
    """A camera id for a discovered device's reference (``urn:uuid:...`` → ``disc-...``)."""
    cleaned = "".join(ch if ch.isalnum() else "-" for ch in ref.lower())
    cleaned = "-".join(part for part in cleaned.split("-") if part)
    for prefix in ("urn-uuid-", "urn-"):
        if cleaned.startswith(prefix):
            cleaned = cleaned[len(prefix) :]
    return ("disc-" + cleaned)[:63].rstrip("-")
