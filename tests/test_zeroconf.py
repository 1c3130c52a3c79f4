"""mDNS discovery and hub advertising, only inside network namespaces the tests make.

Multicast never leaves them: the explicit-``interfaces`` path runs in a loopback-only
namespace, the default path (every interface, what ``csuhub discover`` uses) in a
hub/camera pair joined by a veth, against the zeroconf this venv resolved.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol
import zeroconf
from csuhub_zeroconf import HUB_TYPE, SCHEMA, _text, interface_choice
from hypothesis import given
from hypothesis import strategies as st
from peers import netns
from zeroconf import InterfaceChoice, IPVersion
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from csuhub.events import CameraStateChanged
from csuhub.testing import make_hub

needs_netns = pytest.mark.skipif(not netns.available(), reason="needs root and iproute2")


@needs_netns
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
                "_example-vendor._tcp.local.",
                "Sample 7._example-vendor._tcp.local.",
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
    sample = seen["mdns:Sample 7._example-vendor._tcp.local."]
    assert sample["driver"] == "example_vendor"  # the example vendor plugin declared this type
    assert len(pending) == 2


def test_interfaces_default_to_zeroconfs_all_enum() -> None:
    """zeroconf >= 0.13x refuses the string "all" with a TypeError: the default must be
    the enum, and named addresses a list (the CLI's single ``interface`` included)."""
    assert interface_choice(SCHEMA({})) is InterfaceChoice.All
    assert interface_choice(SCHEMA({"interfaces": []})) is InterfaceChoice.All
    assert interface_choice(SCHEMA({"interface": "10.0.0.2"})) == ["10.0.0.2"]
    both = SCHEMA({"interfaces": ["10.0.0.2", "10.0.0.3"], "interface": "10.0.0.2"})
    assert interface_choice(both) == ["10.0.0.2", "10.0.0.3"]


@given(st.one_of(st.text(max_size=30), st.integers(), st.none(), st.lists(st.text(max_size=5))))
def test_interface_options_accept_only_ipv4_addresses(value: Any) -> None:
    """Site-file input: anything but a dotted IPv4 address is a clean ``vol.Invalid``."""
    for options in ({"interface": value}, {"interfaces": [value]}):
        try:
            checked = SCHEMA(options)
        except vol.Invalid:
            continue
        address = checked.get("interface") or checked["interfaces"][0]
        assert socket.inet_aton(address) and address.count(".") == 3


@given(st.one_of(st.text(), st.binary()), st.integers(min_value=0, max_value=300))
def test_text_from_the_network_is_bounded_and_printable(value: str | bytes, limit: int) -> None:
    cleaned = _text(value, limit)
    assert len(cleaned) <= limit and cleaned.isprintable()


def _camera_service(address: str) -> AsyncServiceInfo:
    return AsyncServiceInfo(
        "_rtsp._tcp.local.",
        "Pont de Fives._rtsp._tcp.local.",
        addresses=[socket.inet_aton(address)],
        port=554,
        properties={"path": "/live"},
        server="cam-fives.local.",
    )


@needs_netns
def test_default_path_cli_discover_finds_a_camera(tmp_path: Path) -> None:
    """``csuhub discover --source zeroconf`` with no ``--interface``, as a user types it:
    run as a real process in the hub's namespace, the camera advertising from the other
    end of a veth. With zeroconf 0.154 this exited 1 with ``TypeError: choice must be a
    list or InterfaceChoice, got 'all'``."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }

    async def scenario(net: netns.NetnsPair) -> tuple[int, str, str]:
        with netns.entered(net.cam):  # its sockets stay in the camera's namespace
            camera_zc = AsyncZeroconf(interfaces=[net.cam_ip], ip_version=IPVersion.V4Only)
        service = _camera_service(net.cam_ip)
        await camera_zc.async_register_service(service)
        try:
            proc = await asyncio.create_subprocess_exec(
                *netns.exec_args(net.hub),
                sys.executable,
                "-m",
                "csuhub",
                "discover",
                "--source",
                "zeroconf",
                "--timeout",
                "4",
                "--json",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 60)
        finally:
            await camera_zc.async_unregister_service(service)
            await camera_zc.async_close()
        return proc.returncode or 0, out.decode(), err.decode()

    with netns.NetnsPair() as net:
        rc, out, err = asyncio.run(scenario(net))
    assert rc == 0 and "Traceback" not in err, err
    lines = [json.loads(line) for line in out.splitlines()]
    found = [line for line in lines if line["event"] == "camera_found"]
    assert [f["ref"] for f in found] == ["mdns:Pont de Fives._rtsp._tcp.local."], (out, err)
    assert found[0]["address"] == net.cam_ip and found[0]["driver"] == "rtsp"
    assert lines[-1]["event"] == "scan_done" and lines[-1]["found"] == 1


@needs_netns
def test_default_path_hub_discovers_and_advertises(tmp_path: Path) -> None:
    """A hub whose site names ``source: zeroconf`` without options listens on every
    interface: it finds a camera across the veth, and the camera's side finds the hub."""

    async def scenario(net: netns.NetnsPair) -> tuple[dict[str, Any], list[str]]:
        with netns.entered(net.cam):
            camera_zc = AsyncZeroconf(interfaces=[net.cam_ip], ip_version=IPVersion.V4Only)
        service = _camera_service(net.cam_ip)
        await camera_zc.async_register_service(service)
        config = {
            "hub": {"name": "CSU Defaut", "web": {"host": "127.0.0.1", "port": 0}},
            "discovery": [{"source": "zeroconf", "timeout": 3}],
        }
        found: list[str] = []
        try:
            with netns.entered(net.hub):
                async with make_hub(tmp_path / "hub", config, web=True) as hub:
                    for _ in range(100):
                        if hub.discovery.seen:
                            break
                        await asyncio.sleep(0.05)
                    seen = {ref: event.info for ref, event in hub.discovery.seen.items()}
                    browser = AsyncServiceBrowser(
                        camera_zc.zeroconf,
                        [HUB_TYPE],
                        handlers=[
                            lambda zeroconf, service_type, name, state_change: found.append(name)
                        ],
                    )
                    for _ in range(60):
                        if found:
                            break
                        await asyncio.sleep(0.05)
                    await browser.async_cancel()
        finally:
            await camera_zc.async_unregister_service(service)
            await camera_zc.async_close()
        return seen, found

    with netns.NetnsPair() as net:
        seen, found = asyncio.run(scenario(net))
    camera = seen["mdns:Pont de Fives._rtsp._tcp.local."]
    assert camera["driver_options"] == {"host": net.cam_ip, "port": 554}
    assert found and found[0].startswith("CSU Defaut"), f"zeroconf {zeroconf.__version__}"


@needs_netns
@pytest.mark.parametrize("source", ["zeroconf", "onvif"])
def test_discover_on_an_interface_that_does_not_exist_is_a_clean_error(source: str) -> None:
    """A source that cannot open its sockets was a traceback from ``csuhub discover``;
    it is one line naming the source and the cause, exit 1 (run in a namespace with only
    ``lo``, so nothing can leave this machine even if the bind succeeded)."""
    with netns.LoopbackNetns() as net:
        result = subprocess.run(
            [
                *netns.exec_args(net.name),
                sys.executable,
                "-m",
                "csuhub",
                "discover",
                "--source",
                source,
                "--interface",
                "10.9.9.9",
                "--timeout",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode in (1, 2), (result.returncode, result.stdout, result.stderr)
    assert source in result.stderr
