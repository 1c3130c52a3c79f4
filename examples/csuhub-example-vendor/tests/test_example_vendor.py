"""The integrator's story, end to end, with csuhub's plugin test kit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import csuhub_example_vendor
import pytest
from aiohttp import web

from csuhub.api import CameraStateChanged, DiscoveredCamera
from csuhub.testing import api_token, make_plugin_manager, validate_plugin, wait_camera_state


def test_discovered_through_its_entry_point() -> None:
    pm = make_plugin_manager()
    record = pm.records["example-vendor"]
    assert str(record.state) == "loaded"
    assert record.distribution == "csuhub-example-vendor"
    assert set(record.hooks) == {
        "register_camera_drivers",
        "driver_for_discovery",
        "register_web_routes",
    }


def test_specs_pass_the_kit_checks() -> None:
    assert validate_plugin(csuhub_example_vendor) == []


@pytest.fixture
async def example_camera() -> AsyncIterator[dict[str, Any]]:
    """A real HTTP server on 127.0.0.1 playing an Example Vendor camera."""
    state = {"ok": True}

    async def status(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != csuhub_example_vendor.basic_auth("op", "s3cret"):
            return web.Response(status=401)
        return web.json_response({"model": "Sample-4K", "serial": "EX123", "ok": state["ok"]})

    app = web.Application()
    app.router.add_get("/status", status)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state["port"] = port
    state["runner"] = runner
    yield state
    await runner.cleanup()


async def test_camera_goes_online_then_offline(hub_factory: Any, example_camera: dict) -> None:
    config = {
        "cameras": [
            {
                "id": "cam-example-1",
                "driver": "example_vendor",
                "options": {
                    "host": "127.0.0.1",
                    "http_port": example_camera["port"],
                    "username": "op",
                    "password": "s3cret",
                    "timeout": "2s",
                },
            }
        ]
    }
    async with hub_factory(config, web=True, health_interval=0.05) as hub:
        await wait_camera_state(hub, "cam-example-1", "online", timeout=10)
        # the vendor's route, behind csuhub's authentication
        token = await api_token(hub, "viewer")
        async with aiohttp.ClientSession() as session:
            url = f"{hub.web.url}/plugins/example-vendor/cameras"
            async with session.get(url) as resp:
                assert resp.status == 401
            async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
                body = await resp.json()
        assert body["cameras"]["cam-example-1"]["serial"] == "EX123"
        # the camera reports a fault: the hub notices
        example_camera["ok"] = False
        offline = await hub.bus.wait_for(
            CameraStateChanged,
            match={"camera_id": "cam-example-1", "new_state": "offline"},
            timeout=10,
        )
        assert offline.reason == "health check failed"


async def test_wrong_credentials_keep_camera_offline(
    hub_factory: Any, example_camera: dict
) -> None:
    config = {
        "cameras": [
            {
                "id": "cam-example-2",
                "driver": "example_vendor",
                "options": {
                    "host": "127.0.0.1",
                    "http_port": example_camera["port"],
                    "username": "op",
                    "password": "wrong",
                },
            }
        ]
    }
    async with hub_factory(config) as hub:
        await wait_camera_state(hub, "cam-example-2", "offline", timeout=10)
        row = await hub.store.get_camera("cam-example-2")
        assert row is not None and "refused the credentials" in row.state_reason
        await asyncio.sleep(0)


async def test_selects_itself_for_its_own_discoveries_only(hub_factory: Any) -> None:
    async with hub_factory() as hub:

        def found(manufacturer: str) -> DiscoveredCamera:
            return DiscoveredCamera(
                ref="urn:uuid:1",
                address="127.0.0.1",
                source="onvif",
                info={"manufacturer": manufacturer},
            )

        assert hub.driver_for(found(csuhub_example_vendor.MANUFACTURER)) == "example_vendor"
        assert hub.driver_for(found("example vendor")) == "example_vendor"
        # a real vendor's camera is never claimed by the sample
        assert hub.driver_for(found("ACME Corp")) != "example_vendor"


def test_names_say_it_is_a_sample() -> None:
    """A real vendor could ship a driver called like a plausible brand; the sample
    must not take such a name (issue 11, "Distinct names")."""
    (spec,) = csuhub_example_vendor.register_camera_drivers(None)
    assert spec.name == "example_vendor"
    assert "sample" in csuhub_example_vendor.MANUFACTURER
    assert spec.zeroconf_types == ("_example-vendor._tcp.local.",)


async def test_stream_url_quotes_credentials(hub_factory: Any) -> None:
    driver = csuhub_example_vendor.ExampleVendorCamera(
        None,
        "c",
        csuhub_example_vendor.OPTIONS(
            {"host": "127.0.0.1", "username": "a@b", "password": "p/ss:w"}
        ),
    )
    stream = await driver.stream()
    assert stream.url == "rtsp://a%40b:p%2Fss%3Aw@127.0.0.1:554/live/main"
