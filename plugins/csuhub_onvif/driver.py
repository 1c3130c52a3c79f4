"""The ONVIF camera driver (onvif-zeep-async).

Every answer from the camera is untrusted: text is bounded and printable,
stream URIs must be rtsp/rtsps/http/https, and a camera that answers garbage
to one operation (ipycam's PTZ presets do) fails that operation only, with a
clear ``OnvifOperationError``.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
import voluptuous as vol

from csuhub.api import PtzUnsupported, StreamSource, cv

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


class OnvifOperationError(Exception):
    """One ONVIF operation failed; the camera and the other operations are fine."""

    def __init__(self, operation: str, message: str) -> None:
        super().__init__(f"{operation}: {message}")
        self.operation = operation


class NoPtzProfile(OnvifOperationError, PtzUnsupported):
    """The camera has no media profile with a PTZ configuration: it cannot move."""


def _text(value: Any, limit: int = 100) -> str | None:
    if value is None:
        return None
    text = "".join(ch for ch in str(value) if ch.isprintable()).strip()
    return text[:limit] or None


def _uri(value: Any) -> str | None:
    text = _text(value, 1000)
    if text is None:
        return None
    try:
        return cv.stream_url(text)
    except vol.Invalid:
        return None


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


class OnvifCamera:
    """A CameraDriver for one ONVIF camera."""

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
            raise OnvifOperationError(operation, _explain(err)) from None

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
            "manufacturer": _text(getattr(info, "Manufacturer", None)),
            "model": _text(getattr(info, "Model", None)),
            "firmware": _text(getattr(info, "FirmwareVersion", None)),
            "serial": _text(getattr(info, "SerialNumber", None)),
            "hardware": _text(getattr(info, "HardwareId", None)),
        }
        try:
            interfaces = await self._call("GetNetworkInterfaces", devmgmt.GetNetworkInterfaces())
            for interface in interfaces or []:
                hw = getattr(getattr(interface, "Info", None), "HwAddress", None)
                if hw:
                    self.device["mac"] = _text(hw, 17)
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
                    token=_text(getattr(item, "token", None), 64) or "",
                    name=_text(getattr(item, "Name", None), 64) or "",
                    codec=_text(getattr(encoder, "Encoding", None), 16),
                    width=_int(getattr(resolution, "Width", None)),
                    height=_int(getattr(resolution, "Height", None)),
                    fps=_float(getattr(rate, "FrameRateLimit", None)),
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
                profile.stream_uri = _without_credentials(profile.camera_uri)
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
        uri = _uri(getattr(answer, "Uri", None))
        if uri is None or urlsplit(uri).scheme not in ("rtsp", "rtsps"):
            raise OnvifOperationError("GetStreamUri", "the camera sent no usable RTSP URI")
        return uri

    async def stream(self, profile: str = "main") -> StreamSource:
        uri = await self.stream_uri(profile)
        chosen = self._profile(profile)
        return StreamSource(
            url=_with_credentials(uri, self.options["username"], self.options["password"]),
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
        uri = _uri(getattr(answer, "Uri", None))
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

    # -- PTZ ----------------------------------------------------------------------

    async def _ptz(self) -> tuple[Any, str]:
        camera = self._require()
        profile = next((p for p in self.profiles if p.ptz), None)
        if profile is None:
            raise NoPtzProfile("PTZ", "this camera has no PTZ profile")
        service = await self._call("PTZ service", camera.create_ptz_service())
        return service, profile.token

    async def ptz_move(self, pan: float, tilt: float, zoom: float = 0.0) -> None:
        """Start a continuous move; the hub schedules its stop (``csuhub.cameras.ptz``)."""
        service, token = await self._ptz()
        request = {
            "ProfileToken": token,
            "Velocity": {
                "PanTilt": {"x": _unit(pan), "y": _unit(tilt)},
                "Zoom": {"x": _unit(zoom)},
            },
        }
        await self._call("ContinuousMove", service.ContinuousMove(request))

    async def ptz_stop(self) -> None:
        service, token = await self._ptz()
        await self._call(
            "Stop", service.Stop({"ProfileToken": token, "PanTilt": True, "Zoom": True})
        )

    async def ptz_absolute(self, pan: float, tilt: float, zoom: float = 0.0) -> None:
        service, token = await self._ptz()
        request = {
            "ProfileToken": token,
            "Position": {
                "PanTilt": {"x": _unit(pan), "y": _unit(tilt)},
                "Zoom": {"x": _unit(zoom, 0.0)},
            },
        }
        await self._call("AbsoluteMove", service.AbsoluteMove(request))

    async def ptz_relative(self, pan: float, tilt: float, zoom: float = 0.0) -> None:
        """Move by a translation in the generic space (a fraction of the range)."""
        service, token = await self._ptz()
        request = {
            "ProfileToken": token,
            "Translation": {
                "PanTilt": {"x": _unit(pan), "y": _unit(tilt)},
                "Zoom": {"x": _unit(zoom)},
            },
        }
        await self._call("RelativeMove", service.RelativeMove(request))

    async def ptz_status(self) -> dict[str, Any]:
        """Where the camera points, and whether it moves (as far as it says)."""
        service, token = await self._ptz()
        answer = await self._call("GetStatus", service.GetStatus({"ProfileToken": token}))
        position = getattr(answer, "Position", None)
        pan_tilt = getattr(position, "PanTilt", None)
        zoom = getattr(position, "Zoom", None)
        moves = getattr(answer, "MoveStatus", None)
        return {
            "pan": _float(getattr(pan_tilt, "x", None)),
            "tilt": _float(getattr(pan_tilt, "y", None)),
            "zoom": _float(getattr(zoom, "x", None)),
            "pan_tilt_status": _text(getattr(moves, "PanTilt", None), 16),
            "zoom_status": _text(getattr(moves, "Zoom", None), 16),
        }

    async def ptz_home(self) -> None:
        service, token = await self._ptz()
        await self._call("GotoHomePosition", service.GotoHomePosition({"ProfileToken": token}))

    async def ptz_presets(self) -> list[dict[str, str]]:
        service, token = await self._ptz()
        answer = await self._call("GetPresets", service.GetPresets({"ProfileToken": token}))
        presets = []
        for item in (answer or [])[:100]:
            preset_token = _text(getattr(item, "token", None), 64)
            if preset_token:
                presets.append(
                    {"token": preset_token, "name": _text(getattr(item, "Name", None), 64) or ""}
                )
        return presets

    async def ptz_goto_preset(self, preset: str) -> None:
        service, token = await self._ptz()
        await self._call(
            "GotoPreset", service.GotoPreset({"ProfileToken": token, "PresetToken": preset})
        )

    async def ptz_set_preset(self, name: str | None = None, preset: str | None = None) -> str:
        """Save the current position as a preset (``preset``: overwrite that one);
        returns the preset's token, as the camera gives it."""
        service, token = await self._ptz()
        request: dict[str, Any] = {"ProfileToken": token}
        if name:
            request["PresetName"] = name
        if preset:
            request["PresetToken"] = preset
        answer = await self._call("SetPreset", service.SetPreset(request))
        made = _text(answer if isinstance(answer, str) else getattr(answer, "PresetToken", None))
        if made is None:
            raise OnvifOperationError("SetPreset", "the camera returned no preset token")
        return made[:64]

    async def ptz_remove_preset(self, preset: str) -> None:
        service, token = await self._ptz()
        await self._call(
            "RemovePreset", service.RemovePreset({"ProfileToken": token, "PresetToken": preset})
        )


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _unit(value: float, low: float = -1.0) -> float:
    """Clamp to [low, 1]; a non-finite value is a bug upstream, never a full-speed move
    (``min(1.0, nan)`` is 1.0)."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"PTZ value {value!r} is not a finite number")
    return max(low, min(1.0, number))


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _without_credentials(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    return urlunsplit((parts.scheme, _hostport(parts), parts.path, parts.query, ""))


def _hostport(parts: Any) -> str:
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    return f"{netloc}:{parts.port}" if parts.port else netloc


def _with_credentials(uri: str, user: str, password: str) -> str:
    if not user:
        return uri
    parts = urlsplit(uri)
    host = parts.hostname or ""
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def _explain(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    lowered = text.lower()
    if "not authorized" in lowered or "notauthorized" in lowered or "401" in lowered:
        return "unauthorized: the camera refused the credentials"
    if "connect" in lowered and ("refused" in lowered or "cannot" in lowered):
        return f"connection refused ({text[:200]})"
    return f"{type(err).__name__}: {text[:300]}"


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
