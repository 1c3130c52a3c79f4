"""Example Vendor cameras for csuhub: the sample vendor plugin.

"Example Vendor" is a fictitious camera family made up for this sample; no
real manufacturer or product is meant, and every name here says so (driver
``example_vendor``, manufacturer "Example Vendor (csuhub sample)"), so that a
site file or discovery never mistakes it for a real vendor's driver. Its
cameras answer ``GET /status`` with JSON ``{"model": ..., "serial": ...,
"ok": true}`` and stream H.264 at ``rtsp://host:rtsp_port/live/<profile>``.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import aiohttp
import voluptuous as vol
from aiohttp import web

from csuhub.api import (
    CameraDriverSpec,
    DiscoveredCamera,
    StreamSource,
    cv,
    endpoint,
    hookimpl,
    hub_of,
)

#: what site files write: ``driver: example_vendor``
DRIVER = "example_vendor"
#: what the cameras report, and what discovery claims
MANUFACTURER = "Example Vendor (csuhub sample)"
#: a DNS-SD service type (its label at most 15 characters)
ZEROCONF_TYPE = "_example-vendor._tcp.local."

OPTIONS = vol.Schema(
    {
        vol.Required("host"): cv.host,
        vol.Optional("http_port", default=80): cv.port,
        vol.Optional("rtsp_port", default=554): cv.port,
        vol.Optional("username", default=""): str,
        vol.Optional("password", default=""): str,
        vol.Optional("timeout", default=5.0): cv.duration,
    }
)


def basic_auth(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


class ExampleVendorError(Exception):
    pass


class ExampleVendorCamera:
    """A CameraDriver for one Example Vendor camera."""

    def __init__(self, hub: Any, camera_id: str, options: dict[str, Any]) -> None:
        self.camera_id = camera_id
        self.options = options
        self._session: aiohttp.ClientSession | None = None
        self.status: dict[str, Any] = {}

    async def connect(self) -> None:
        headers = {}
        if self.options["username"]:
            headers["Authorization"] = basic_auth(
                self.options["username"], self.options["password"]
            )
        timeout = aiohttp.ClientTimeout(total=self.options["timeout"])
        self._session = aiohttp.ClientSession(headers=headers, timeout=timeout)

    async def _get_status(self) -> dict[str, Any]:
        if self._session is None:
            raise ExampleVendorError("not connected")
        url = f"http://{self.options['host']}:{self.options['http_port']}/status"
        async with self._session.get(url) as resp:
            if resp.status == 401:
                raise ExampleVendorError("camera refused the credentials")
            resp.raise_for_status()
            data = await resp.json()
        if not isinstance(data, dict):
            raise ExampleVendorError("camera sent a status that is not a JSON object")
        # device data is untrusted: keep known keys, bounded
        return {k: str(data.get(k, ""))[:100] for k in ("model", "serial", "firmware")} | {
            "ok": data.get("ok") is True
        }

    async def describe(self) -> dict[str, Any]:
        self.status = await self._get_status()
        return {"manufacturer": MANUFACTURER, **self.status}

    async def stream(self, profile: str = "main") -> StreamSource:
        o = self.options
        cred = ""
        if o["username"]:
            cred = f"{quote(o['username'], safe='')}:{quote(o['password'], safe='')}@"
        return StreamSource(
            url=f"rtsp://{cred}{o['host']}:{o['rtsp_port']}/live/{quote(profile, safe='')}",
            input_options={"rtsp_transport": "tcp"},
            codec="h264",
        )

    async def check_health(self) -> bool:
        self.status = await self._get_status()
        return bool(self.status["ok"])

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


@hookimpl
def register_camera_drivers(hub: Any) -> list[CameraDriverSpec]:
    return [
        CameraDriverSpec(
            name=DRIVER,
            factory=ExampleVendorCamera,
            config_schema=OPTIONS,
            description="Example Vendor HTTP cameras (csuhub's sample vendor plugin, fictitious)",
            zeroconf_types=(ZEROCONF_TYPE,),
        )
    ]


@hookimpl
def driver_for_discovery(hub: Any, camera: DiscoveredCamera) -> str | None:
    manufacturer = str(camera.info.get("manufacturer", "")).casefold()
    return DRIVER if manufacturer.startswith("example vendor") else None


@endpoint("camera.read")
async def example_cameras(request: web.Request) -> web.Response:
    """Which cameras this plugin drives, and what they last reported."""
    hub = hub_of(request)
    cameras = {
        camera_id: {"state": hub.cameras.states.get(camera_id), **driver.status}
        for camera_id, driver in hub.cameras.drivers.items()
        if isinstance(driver, ExampleVendorCamera)
    }
    return web.json_response({"cameras": cameras})


@hookimpl
def register_web_routes(hub: Any) -> list[Any]:
    return [web.get("/cameras", example_cameras)]
