"""PTZ over the camera's ONVIF PTZ service (the ``PtzDriver`` methods).

A mixin of :class:`csuhub_onvif.driver.OnvifCamera`: it moves the camera
through the first media profile that carries a PTZ configuration, and clamps
every value it sends, so that no input, however it got past the API, makes a
full-speed move. The hub, not the driver, schedules a continuous move's stop.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from csuhub_onvif.errors import NoPtzProfile, OnvifOperationError
from csuhub_onvif.untrusted import as_float, clean_text

if TYPE_CHECKING:
    from csuhub_onvif.driver import Profile


class OnvifPtz:
    """The PTZ methods; the driver gives ``profiles``, ``_call`` and ``_require``."""

    if TYPE_CHECKING:
        profiles: list[Profile]

        async def _call(self, operation: str, coro: Any) -> Any: ...

        def _require(self) -> Any: ...

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
                "PanTilt": {"x": unit(pan), "y": unit(tilt)},
                "Zoom": {"x": unit(zoom)},
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
                "PanTilt": {"x": unit(pan), "y": unit(tilt)},
                "Zoom": {"x": unit(zoom, 0.0)},
            },
        }
        await self._call("AbsoluteMove", service.AbsoluteMove(request))

    async def ptz_relative(self, pan: float, tilt: float, zoom: float = 0.0) -> None:
        """Move by a translation in the generic space (a fraction of the range)."""
        service, token = await self._ptz()
        request = {
            "ProfileToken": token,
            "Translation": {
                "PanTilt": {"x": unit(pan), "y": unit(tilt)},
                "Zoom": {"x": unit(zoom)},
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
            "pan": as_float(getattr(pan_tilt, "x", None)),
            "tilt": as_float(getattr(pan_tilt, "y", None)),
            "zoom": as_float(getattr(zoom, "x", None)),
            "pan_tilt_status": clean_text(getattr(moves, "PanTilt", None), 16),
            "zoom_status": clean_text(getattr(moves, "Zoom", None), 16),
        }

    async def ptz_home(self) -> None:
        service, token = await self._ptz()
        await self._call("GotoHomePosition", service.GotoHomePosition({"ProfileToken": token}))

    async def ptz_presets(self) -> list[dict[str, str]]:
        service, token = await self._ptz()
        answer = await self._call("GetPresets", service.GetPresets({"ProfileToken": token}))
        presets = []
        for item in (answer or [])[:100]:
            preset_token = clean_text(getattr(item, "token", None), 64)
            if preset_token:
                presets.append(
                    {
                        "token": preset_token,
                        "name": clean_text(getattr(item, "Name", None), 64) or "",
                    }
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
        made = clean_text(
            answer if isinstance(answer, str) else getattr(answer, "PresetToken", None)
        )
        if made is None:
            raise OnvifOperationError("SetPreset", "the camera returned no preset token")
        return made[:64]

    async def ptz_remove_preset(self, preset: str) -> None:
        service, token = await self._ptz()
        await self._call(
            "RemovePreset", service.RemovePreset({"ProfileToken": token, "PresetToken": preset})
        )


def unit(value: float, low: float = -1.0) -> float:
    """Clamp to [low, 1]; a non-finite value is a bug upstream, never a full-speed move
    (``min(1.0, nan)`` is 1.0)."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"PTZ value {value!r} is not a finite number")
    return max(low, min(1.0, number))
