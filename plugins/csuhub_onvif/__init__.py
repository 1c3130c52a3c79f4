"""ONVIF for csuhub: WS-Discovery source and the ONVIF camera driver.

Registered through the ``csuhub`` entry point like any third-party plugin.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import voluptuous as vol

from csuhub.api import CameraDriverSpec, DiscoveredCamera, DiscoverySourceSpec, hookimpl
from csuhub_onvif import wsdiscovery

SOURCE_SCHEMA = vol.Schema(
    {
        # the local address to send from (which interface); default: the OS's choice
        vol.Optional("interface"): vol.All(str, vol.Match(r"^\d{1,3}(\.\d{1,3}){3}$")),
        vol.Optional("ttl", default=1): vol.All(int, vol.Range(min=1, max=8)),
    }
)


class OnvifDiscovery:
    """A DiscoverySource: multicast WS-Discovery Probe, results as they arrive."""

    def __init__(self, hub: Any, options: dict[str, Any]) -> None:
        self.interface = options.get("interface")
        self.ttl = options["ttl"]
        self.stats = wsdiscovery.ScanStats()
        # the last refused replies (host, why), bounded: a hostile flood cannot grow it
        self.refused: deque[tuple[str, str]] = deque(maxlen=100)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def scan(self, timeout: float) -> AsyncIterator[DiscoveredCamera]:
        self.stats = wsdiscovery.ScanStats()
        async for match in wsdiscovery.probe(
            timeout,
            interface=self.interface,
            ttl=self.ttl,
            stats=self.stats,
            on_refused=lambda host, why: self.refused.append((host, why)),
        ):
            yield to_discovered(match)


def to_discovered(match: wsdiscovery.ProbeMatch) -> DiscoveredCamera:
    service = urlsplit(match.xaddrs[0])
    port = service.port or (443 if service.scheme == "https" else 80)
    return DiscoveredCamera(
        ref=match.ref,
        address=match.address,
        source="onvif",
        name=match.name,
        driver="onvif",
        info={
            "manufacturer": None,
            "hardware": match.hardware,
            "location_scope": match.location,
            "xaddrs": list(match.xaddrs),
            "scopes": list(match.scopes),
            "driver_options": {"host": match.address, "port": port},
        },
    )


@hookimpl
def register_discovery_sources(hub: Any) -> list[DiscoverySourceSpec]:
    return [
        DiscoverySourceSpec(
            name="onvif",
            factory=OnvifDiscovery,
            config_schema=SOURCE_SCHEMA,
            description="ONVIF WS-Discovery (multicast 239.255.255.250:3702)",
        )
    ]


@hookimpl
def register_camera_drivers(hub: Any) -> list[CameraDriverSpec]:
    from csuhub_onvif.driver import OPTIONS, OnvifCamera

    return [
        CameraDriverSpec(
            name="onvif",
            factory=OnvifCamera,
            config_schema=OPTIONS,
            description="ONVIF Profile S/T cameras (device, media, PTZ; WS-Security)",
            zeroconf_types=("_onvif._tcp.local.",),
        )
    ]


@hookimpl(trylast=True)  # a generic driver: vendor plugins answer first
def driver_for_discovery(hub: Any, camera: DiscoveredCamera) -> str | None:
    return "onvif" if camera.source == "onvif" or camera.info.get("xaddrs") else None
