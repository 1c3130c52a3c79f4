"""mDNS discovery and hub advertising, inside a loopback-only network namespace."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from csuhub_zeroconf import HUB_TYPE
from peers import netns
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from csuhub.events import CameraStateChanged
from csuhub.testing import make_hub

pytestmark = pytest.mark.skipif(not netns.available(), reason="needs root and iproute2")


def test_zeroconf_finds_cameras_and_advertises_the_hub(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[str], dict[str, Any], list[str]]:
        camera_zc = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
        services = [
            AsyncServiceInfo(
                "_rtsp._tcp.local.",
                "Porte des Postes._rtsp._tcp.local.",
                addresses=[socket.inet_aton("127.0.0.21")],
                port=554,
                properties={"path": "/live", "model": "X\x00\x01" + "A" * 240},
                server="cam21.local.",
            ),
            AsyncServiceInfo(
                "_acme-cam._tcp.local.",
                "ACME 7._acme-cam._tcp.local.",
                addresses=[socket.inet_aton("127.0.0.22")],
                port=8080,
                server="cam22.local.",
            ),
        ]
        for info in services:
            await camera_zc.async_register_service(info)
        config = {
            "hub": {"name": "CSU Test", "web": {"host": "127.0.0.1", "port": 0}},
            "discovery": [
                {"source": "zeroconf", "timeout": 2, "options": {"interfaces": ["127.0.0.1"]}}
            ],
        }
        pending: list[str] = []
        try:
            async with make_hub(tmp_path / "hub", config, web=True) as hub:
                hub.bus.listen(
                    CameraStateChanged,
                    lambda e: (
                        pending.append(e.camera_id) if e.new_state == "pending_adoption" else None
                    ),
                )
                for _ in range(60):
                    if len(hub.discovery.seen) >= 2:
                        break
                    await asyncio.sleep(0.05)
                seen = {ref: event.info for ref, event in hub.discovery.seen.items()}
                await asyncio.sleep(0.3)
                # a browser elsewhere on the network finds the hub
                found: list[str] = []
                browser = AsyncServiceBrowser(
                    camera_zc.zeroconf,
                    [HUB_TYPE],
                    handlers=[
                        lambda zeroconf, service_type, name, state_change: found.append(name)
                    ],
                )
                for _ in range(40):
                    if found:
                        break
                    await asyncio.sleep(0.05)
                await browser.async_cancel()
                hub_info = AsyncServiceInfo(HUB_TYPE, found[0]) if found else None
                if hub_info is not None:
                    await hub_info.async_request(camera_zc.zeroconf, 2000)
                    assert hub_info.port == hub.web.port
                await hub.bus.drain()
        finally:
            for info in services:
                await camera_zc.async_unregister_service(info)
            await camera_zc.async_close()
        return found, seen, pending

    with netns.LoopbackNetns() as net, netns.entered(net.name):
        found, seen, pending = asyncio.run(scenario())
    assert found and found[0].startswith("CSU Test")
    rtsp = seen["mdns:Porte des Postes._rtsp._tcp.local."]
    assert rtsp["driver_options"] == {"host": "127.0.0.21", "port": 554}
    assert rtsp["driver"] == "rtsp"
    assert len(rtsp["properties"]["model"]) <= 200 and "\x00" not in rtsp["properties"]["model"]
    acme = seen["mdns:ACME 7._acme-cam._tcp.local."]
    assert acme["driver"] == "acme"  # the example vendor plugin declared this type
    assert len(pending) == 2
