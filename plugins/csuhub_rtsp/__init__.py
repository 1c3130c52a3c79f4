"""Generic RTSP cameras: a URL template with credentials, probed with OPTIONS/DESCRIBE.

For cameras without ONVIF. ``url`` may contain ``{host}``, ``{port}``,
``{username}`` and ``{password}`` (quoted for the URL), e.g.
``rtsp://{username}:{password}@{host}:{port}/Streaming/Channels/101``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

import voluptuous as vol

from csuhub.api import CameraDriverSpec, StreamSource, cv, hookimpl
from csuhub_rtsp.rtsp import RtspClient, RtspError


def _template(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 500:
        raise vol.Invalid("expected an RTSP URL template")
    try:
        sample = value.format(host="h.example", port=554, username="u", password="p")  # noqa: S106
    except (KeyError, IndexError, ValueError) as err:
        raise vol.Invalid(
            f"unknown placeholder {err}; use {{host}}, {{port}}, {{username}}, {{password}}"
        ) from None
    if urlsplit(sample).scheme not in ("rtsp", "rtsps"):
        raise vol.Invalid("the URL must start with rtsp:// or rtsps://")
    cv.stream_url(sample)
    return value


OPTIONS = vol.Schema(
    {
        vol.Required("url"): _template,
        vol.Optional("host", default=""): str,
        vol.Optional("port", default=554): cv.port,
        vol.Optional("username", default=""): str,
        vol.Optional("password", default=""): str,
        vol.Optional("sub_url"): _template,
        vol.Optional("transport", default="tcp"): vol.In(["tcp", "udp"]),
        vol.Optional("timeout", default=5.0): cv.duration,
    }
)


class RtspCamera:
    """A CameraDriver for a plain RTSP camera."""

    def __init__(self, hub: Any, camera_id: str, options: dict[str, Any]) -> None:
        self.camera_id = camera_id
        self.options = options
        self.last_error: RtspError | None = None
        self.info: dict[str, Any] = {}

    def url(self, profile: str = "main") -> str:
        o = self.options
        template = o.get("sub_url") if profile == "sub" and o.get("sub_url") else o["url"]
        url = template.format(
            host=o["host"],
            port=o["port"],
            username=quote(o["username"], safe=""),
            password=quote(o["password"], safe=""),
        )
        return cv.stream_url(url)

    async def connect(self) -> None:
        await self.check()

    async def check(self) -> dict[str, Any]:
        client = RtspClient(self.url(), timeout=self.options["timeout"])
        try:
            await client.options()
            stream = await client.describe()
        except RtspError as err:
            self.last_error = err
            raise
        self.last_error = None
        self.info = {
            "codec": stream.codec,
            "width": stream.width,
            "height": stream.height,
            "fps": stream.fps,
        }
        return self.info

    async def describe(self) -> dict[str, Any]:
        info = await self.check()
        return {"profiles": [{"name": "main", **info}]}

    async def stream(self, profile: str = "main") -> StreamSource:
        return StreamSource(
            url=self.url(profile),
            input_options={"rtsp_transport": self.options["transport"]},
            codec=self.info.get("codec"),
        )

    async def check_health(self) -> bool:
        await self.check()
        return True

    async def close(self) -> None:
        return None


@hookimpl
def register_camera_drivers(hub: Any) -> list[CameraDriverSpec]:
    return [
        CameraDriverSpec(
            name="rtsp",
            factory=RtspCamera,
            config_schema=OPTIONS,
            description="Generic RTSP camera (URL template; OPTIONS/DESCRIBE health probe)",
            zeroconf_types=("_rtsp._tcp.local.",),
        )
    ]
