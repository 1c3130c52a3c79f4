"""The ONVIF camera driver (onvif-zeep-async).

Connection, device information, media profiles, stream and snapshot URIs.
Every answer from the camera is untrusted (``untrusted.py`` reads it), and a
camera that answers garbage to one operation fails that operation only, with
a clear ``OnvifOperationError`` (``errors.py``). PTZ is in ``ptz.py``.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import voluptuous as vol

from csuhub.api import StreamSource, cv
from csuhub_onvif.errors import NoPtzProfile, OnvifOperationError, explain
from csuhub_onvif.ptz import OnvifPtz
from csuhub_onvif.untrusted import (
    as_float,
    as_int,
    clean_text,
    clean_uri,
    with_credentials,
    without_credentials,
)

__all__ = ["OPTIONS", "NoPtzProfile", "OnvifCamera", "OnvifOperationError", "Profile"]

_LOGGER = logging.getLogger(__name__)

#: WS-Security digests carry a timestamp: beyond this drift, authentication fails.
MAX_CLOCK_DRIFT = 5.0
MAX_SNAPSHOT = 8 * 1024 * 1024

OPTIONS = vol.Schema(
    {
        vol.Required("host"): cv.host,
        vol.Optional("port", default=80): cv.port,
        vol.Optional("username", default=""): str,
        vol.Optional("password", default=""): str,
        vol.Optional("profile", default="main"): vol.In(["main", "sub"]),
        vol.Optional("transport", default="tcp"): vol.In(["tcp", "udp"]),
        vol.Optional("timeout", default=10.0): cv.duration,
        # a continuous move without a duration stops after this (the dead-man)
        vol.Optional("ptz_deadman", default=3.0): vol.All(cv.duration, vol.Range(0.1, 60.0)),
    }
)


@dataclass
class Profile:
    token: str
    name: str
    codec: str | None
    width: int | None
    height: int | None
    fps: float | None
    ptz: bool
    stream_uri: str | None = None  # for the register: without credentials
    # the URI as the camera sent it (what ``stream_uri()`` answers); never shown
    camera_uri: str | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "name": self.name,
            "codec": self.codec,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "ptz": self.ptz,
            "stream_uri": self.stream_uri,
        }


class OnvifCamera(OnvifPtz):
    """A CameraDriver (and PtzDriver, :mod:`csuhub_onvif.ptz`) for one ONVIF camera."""

    def __init__(self, hub: Any, camera_id: str, options: dict[str, Any]) -> None:
        self.camera_id = camera_id
        self.options = options
        self._camera: Any = None
        self.profiles: list[Profile] = []
        self.device: dict[str, Any] = {}
        self.clock_drift: float | None = None
        self.ptz_deadman: float = options.get("ptz_deadman", 3.0)

    # -- connection ---------------------------------------------------------------

    async def _call(self, operation: str, coro: Any) -> Any:
        try:
            return await asyncio.wait_for(coro, self.options["timeout"])
        except TimeoutError:
            raise OnvifOperationError(operation, "the camera did not answer in time") from None
        except OnvifOperationError:
            raise
        except Exception as err:  # zeep Fault, XML errors, transport errors
            raise OnvifOperationError(operation, explain(err)) from None

    async def connect(self) -> None:
        from onvif import ONVIFCamera  # onvif-zeep-async; imported lazily (WSDL loading)

        o = self.options
        # "" not None for no credentials (None breaks the library); no on-disk WSDL cache
        camera = ONVIFCamera(
            o["host"], o["port"], o["username"] or "", o["password"] or "", no_cache=True
        )
        try:
            await self._call("connect", camera.update_xaddrs())
            self._camera = camera
            await self._read_device()
            await self._read_profiles()
        except BaseException:
            await _close(camera)
            self._camera = None
            raise

    async def _read_device(self) -> None:
        devmgmt = await self._call("device service", self._camera.create_devicemgmt_service())
        info = await self._call("GetDeviceInformation", devmgmt.GetDeviceInformation())
        self.device = {
            "manufacturer": clean_text(getattr(info, "Manufacturer", None)),
            "model": clean_text(getattr(info, "Model", None)),
            "firmware": clean_text(getattr(info, "FirmwareVersion", None)),
            "serial": clean_text(getattr(info, "SerialNumber", None)),
            "hardware": clean_text(getattr(info, "HardwareId", None)),
        }
        try:
            interfaces = await self._call("GetNetworkInterfaces", devmgmt.GetNetworkInterfaces())
            for interface in interfaces or []:
                hw = getattr(getattr(interface, "Info", None), "HwAddress", None)
                if hw:
                    self.device["mac"] = clean_text(hw, 17)
                    break
        except OnvifOperationError as err:
            _LOGGER.debug("camera %s: %s", self.camera_id, err)
        try:
            caps = await self._call("GetCapabilities", devmgmt.GetCapabilities({"Category": "All"}))
            self.device["capabilities"] = sorted(
                name
                for name in ("Analytics", "Device", "Events", "Imaging", "Media", "PTZ")
                if getattr(caps, name, None) is not None
            )
        except OnvifOperationError as err:
            _LOGGER.debug("camera %s: %s", self.camera_id, err)
        await self._check_clock(devmgmt)

    async def _check_clock(self, devmgmt: Any) -> None:
        try:
            answer = await self._call("GetSystemDateAndTime", devmgmt.GetSystemDateAndTime())
            utc = answer.UTCDateTime
            camera_time = dt.datetime(
                utc.Date.Year,
                utc.Date.Month,
                utc.Date.Day,
                utc.Time.Hour,
                utc.Time.Minute,
                utc.Time.Second,
                tzinfo=dt.UTC,
            )
        except (OnvifOperationError, AttributeError, TypeError, ValueError) as err:
            _LOGGER.debug("camera %s: clock unreadable: %s", self.camera_id, err)
            return
        self.clock_drift = (camera_time - dt.datetime.now(dt.UTC)).total_seconds()
        if abs(self.clock_drift) > MAX_CLOCK_DRIFT:
            _LOGGER.warning(
                "camera %s: clock is %.0f s off; WS-Security authentication may fail "
                "(set the camera's NTP)",
                self.camera_id,
                self.clock_drift,
            )

    async def _read_profiles(self) -> None:
        media = await self._call("media service", self._camera.create_media_service())
        answer = await self._call("GetProfiles", media.GetProfiles())
        profiles = []
        for item in (answer or [])[:16]:
            encoder = getattr(item, "VideoEncoderConfiguration", None)
            resolution = getattr(encoder, "Resolution", None)
            rate = getattr(encoder, "RateControl", None)
            profiles.append(
                Profile(
                    token=clean_text(getattr(item, "token", None), 64) or "",
                    name=clean_text(getattr(item, "Name", None), 64) or "",
                    codec=clean_text(getattr(encoder, "Encoding", None), 16),
                    width=as_int(getattr(resolution, "Width", None)),
                    height=as_int(getattr(resolution, "Height", None)),
                    fps=as_float(getattr(rate, "FrameRateLimit", None)),
                    ptz=getattr(item, "PTZConfiguration", None) is not None,
                )
            )
        self.profiles = [p for p in profiles if p.token]
        if not self.profiles:
            raise OnvifOperationError("GetProfiles", "the camera has no media profile")
        self._media = media
        for profile in self.profiles:  # kept for the register (credentials never in them)
            try:
                profile.camera_uri = await self._profile_uri(profile)
                profile.stream_uri = without_credentials(profile.camera_uri)
            except OnvifOperationError as err:
                _LOGGER.debug("camera %s: %s", self.camera_id, err)

    def _profile(self, which: str) -> Profile:
        """``main`` is the largest profile, ``sub`` the smallest (or a token by name)."""
        for profile in self.profiles:
            if profile.token == which or profile.name == which:
                return profile
        ordered = sorted(self.profiles, key=lambda p: (p.width or 0) * (p.height or 0))
        return ordered[0] if which == "sub" else ordered[-1]

    def _require(self) -> Any:
        if self._camera is None:
            raise OnvifOperationError("connect", "not connected")
        return self._camera

    # -- CameraDriver ----------------------------------------------------------------

    async def describe(self) -> dict[str, Any]:
        self._require()
        return {
            **self.device,
            "clock_drift_s": self.clock_drift,
            "profiles": [p.as_dict() for p in self.profiles],
        }

    async def stream_uri(self, profile: str = "main") -> str:
        self._require()
        chosen = self._profile(profile)
        if chosen.camera_uri is None:
            chosen.camera_uri = await self._profile_uri(chosen)
        return chosen.camera_uri

    async def _profile_uri(self, chosen: Profile) -> str:
        request = {
            "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
            "ProfileToken": chosen.token,
        }
        answer = await self._call("GetStreamUri", self._media.GetStreamUri(request))
        uri = clean_uri(getattr(answer, "Uri", None))
        if uri is None or urlsplit(uri).scheme not in ("rtsp", "rtsps"):
            raise OnvifOperationError("GetStreamUri", "the camera sent no usable RTSP URI")
        return uri

    async def stream(self, profile: str = "main") -> StreamSource:
        uri = await self.stream_uri(profile)
        chosen = self._profile(profile)
        return StreamSource(
            url=with_credentials(uri, self.options["username"], self.options["password"]),
            input_options={"rtsp_transport": self.options["transport"]},
            codec=(chosen.codec or "").lower() or None,
            width=chosen.width,
            height=chosen.height,
            fps=chosen.fps,
        )

    async def snapshot_uri(self, profile: str = "main") -> str:
        self._require()
        chosen = self._profile(profile)
        answer = await self._call(
            "GetSnapshotUri", self._media.GetSnapshotUri({"ProfileToken": chosen.token})
        )
        uri = clean_uri(getattr(answer, "Uri", None))
        if uri is None or urlsplit(uri).scheme not in ("http", "https"):
            raise OnvifOperationError("GetSnapshotUri", "the camera sent no usable HTTP URI")
        return uri

    async def snapshot(self, profile: str = "main") -> bytes:
        """One JPEG, with HTTP Basic then Digest authentication as the camera asks."""
        uri = await self.snapshot_uri(profile)
        user, password = self.options["username"], self.options["password"]
        timeout = aiohttp.ClientTimeout(total=self.options["timeout"])
        headers = {"Authorization": _basic(user, password)} if user else {}
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(uri, headers=headers) as resp:
                if (
                    resp.status == 401
                    and user
                    and "digest" in resp.headers.get("WWW-Authenticate", "").lower()
                ):
                    return await self._digest_snapshot(uri, user, password, timeout)
                return await _jpeg(resp)

    async def _digest_snapshot(
        self, uri: str, user: str, password: str, timeout: aiohttp.ClientTimeout
    ) -> bytes:
        middleware = aiohttp.DigestAuthMiddleware(login=user, password=password)
        async with aiohttp.ClientSession(timeout=timeout, middlewares=(middleware,)) as session:
            async with session.get(uri) as resp:
                return await _jpeg(resp)

    async def check_health(self) -> bool:
        camera = self._require()
        devmgmt = await self._call("device service", camera.create_devicemgmt_service())
        await self._call("GetSystemDateAndTime", devmgmt.GetSystemDateAndTime())
        return True

    async def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            await _close(camera)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


async def _jpeg(resp: aiohttp.ClientResponse) -> bytes:
    if resp.status == 401:
        raise OnvifOperationError("snapshot", "unauthorized: the camera refused the credentials")
    if resp.status != 200:
        raise OnvifOperationError("snapshot", f"the camera answered HTTP {resp.status}")
    data = await resp.content.read(MAX_SNAPSHOT + 1)
    if len(data) > MAX_SNAPSHOT:
        raise OnvifOperationError("snapshot", "the image is larger than 8 MiB")
    if not data.startswith(b"\xff\xd8"):
        raise OnvifOperationError("snapshot", "the camera did not send a JPEG")
    return data


async def _close(camera: Any) -> None:
    try:
        await camera.close()
    except Exception as err:  # closing a half-open camera must never raise
        _LOGGER.debug("closing ONVIF camera: %s", err)
