"""PTZ requests: one schema for their parameters, and no move without an end.

The API and ``csuhub cameras ptz`` both go through ``PtzMoves``. Two rules:

* **Parameters are checked once, here**, by one voluptuous schema per action
  that names the field it refuses. Numbers are real numbers (not booleans, not
  strings), finite, and within their range: ``NaN`` compares false with
  everything, so ``pan: NaN`` clamped to 1.0 and ``duration: NaN`` passed
  ``if duration:`` and never ended.
* **Every continuous move ends by itself.** A move's stop is scheduled on the
  event loop, independently of the request that asked for it, after its
  ``duration`` or, without one, after the camera's dead-man delay
  (``ptz_deadman``, 3 s by default). A client that vanishes, a handler that is
  cancelled or a lost ``stop`` cannot leave a camera turning. A new move on the
  same camera replaces the pending stop (a joystick re-sends its move), and
  ``stop`` cancels it and stops at once. A move whose stop ran or was cancelled
  while the move itself was still on its way (the camera may take it after
  the stop) is stopped again as soon as it has been sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import Any

import voluptuous as vol

from csuhub.protocols import PtzUnsupported

_LOGGER = logging.getLogger(__name__)

#: Without a ``duration``, a continuous move stops after this many seconds
#: unless the driver declares its own ``ptz_deadman`` (the ONVIF option).
DEFAULT_DEADMAN = 3.0
#: The longest ``duration`` a move may ask for.
MAX_DURATION = 60.0
#: How long the stops sent at shutdown may take, all cameras together.
STOP_TIMEOUT = 2.0

ACTIONS = (
    "move",
    "stop",
    "absolute",
    "relative",
    "home",
    "status",
    "presets",
    "preset",
    "set_preset",
    "remove_preset",
)


class PtzRequestError(ValueError):
    """A PTZ request refused before it reaches the camera; ``field`` is what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


def _real(low: float, high: float, *, low_open: bool = False) -> Any:
    def validate(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise vol.Invalid("must be a number (not text, not true/false)")
        number = float(value)
        if not math.isfinite(number):
            raise vol.Invalid("must be a finite number")
        if number < low or number > high or (low_open and number == low):
            left = "(" if low_open else "["
            raise vol.Invalid(f"must be in {left}{low:g}, {high:g}]")
        return number

    return validate


def _token(value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        raise vol.Invalid("must be a preset token of 1 to 64 characters")
    if not value.isprintable():
        raise vol.Invalid("must not contain control characters")
    return value


UNIT = _real(-1.0, 1.0)
ZOOM = _real(0.0, 1.0)
DURATION = _real(0.0, MAX_DURATION, low_open=True)

_AXES = {vol.Optional("pan", default=0.0): UNIT, vol.Optional("tilt", default=0.0): UNIT}
SCHEMAS: dict[str, vol.Schema] = {
    "move": vol.Schema(
        {**_AXES, vol.Optional("zoom", default=0.0): UNIT, vol.Optional("duration"): DURATION}
    ),
    "relative": vol.Schema({**_AXES, vol.Optional("zoom", default=0.0): UNIT}),
    "absolute": vol.Schema({**_AXES, vol.Optional("zoom", default=0.0): ZOOM}),
    "stop": vol.Schema({}),
    "home": vol.Schema({}),
    "status": vol.Schema({}),
    "presets": vol.Schema({}),
    "preset": vol.Schema({vol.Required("preset"): _token}),
    "set_preset": vol.Schema({vol.Optional("name"): _token, vol.Optional("preset"): _token}),
    "remove_preset": vol.Schema({vol.Required("preset"): _token}),
}


def validate(request: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(action, parameters)`` of a PTZ request, or ``PtzRequestError`` naming the field.

    Unknown fields are refused too: ``durration: 2`` must not become a move
    that stops only at the dead-man delay.
    """
    if not isinstance(request, dict):
        raise PtzRequestError("", "a PTZ request is a JSON object")
    action = request.get("action")
    if action not in ACTIONS:
        raise PtzRequestError("action", f"must be one of {', '.join(ACTIONS)}")
    params = {k: v for k, v in request.items() if k != "action"}
    try:
        return action, SCHEMAS[action](params)
    except vol.MultipleInvalid as err:
        first = err.errors[0]
        field = ".".join(map(str, first.path)) or "request"
        message = "not allowed for this action" if "extra keys" in first.msg else first.msg
        raise PtzRequestError(field, message) from None


def has_ptz(driver: Any) -> bool:
    return callable(getattr(driver, "ptz_stop", None))


def deadman_of(driver: Any) -> float:
    value = getattr(driver, "ptz_deadman", DEFAULT_DEADMAN)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return DEFAULT_DEADMAN
    return min(max(float(value), 0.1), MAX_DURATION)


class PtzMoves:
    """Runs PTZ requests and owns the pending stop of every moving camera."""

    def __init__(self) -> None:
        # camera -> (its pending stop, the driver that stop goes to)
        self._stops: dict[str, tuple[asyncio.Task[None], Any]] = {}

    def moving(self) -> list[str]:
        return sorted(cam for cam, (task, _) in self._stops.items() if not task.done())

    async def run(self, camera_id: str, driver: Any, action: str, params: dict[str, Any]) -> Any:
        """Do one validated request. Raises ``PtzUnsupported`` for a camera without PTZ."""
        if not has_ptz(driver):
            raise PtzUnsupported("this camera's driver has no PTZ")
        if action == "move":
            return await self._move(camera_id, driver, params)
        if action == "stop":
            self._cancel(camera_id)
            await driver.ptz_stop()
            return None
        self._cancel(camera_id)  # every other motion command ends a continuous move
        if action == "absolute":
            await driver.ptz_absolute(params["pan"], params["tilt"], params["zoom"])
        elif action == "relative":
            await _optional(driver, "ptz_relative")(params["pan"], params["tilt"], params["zoom"])
        elif action == "home":
            await driver.ptz_home()
        elif action == "status":
            return await _optional(driver, "ptz_status")()
        elif action == "presets":
            return await driver.ptz_presets()
        elif action == "preset":
            await driver.ptz_goto_preset(params["preset"])
        elif action == "set_preset":
            token = await _optional(driver, "ptz_set_preset")(
                params.get("name"), params.get("preset")
            )
            return {"preset": token}
        elif action == "remove_preset":
            await _optional(driver, "ptz_remove_preset")(params["preset"])
        return None

    async def _move(self, camera_id: str, driver: Any, params: dict[str, Any]) -> dict[str, Any]:
        seconds = params.get("duration") or deadman_of(driver)
        # the stop is armed before the move is sent: if the move call hangs or
        # fails half-way, the camera is still stopped on time
        self._arm(camera_id, driver, seconds)
        try:
            await driver.ptz_move(params["pan"], params["tilt"], params["zoom"])
        except BaseException:
            self._arm(camera_id, driver, 0.0)
            raise
        if camera_id not in self._stops:
            # While the move was on its way, its stop was sent (a slow camera, a short
            # duration) or cancelled by a ``stop`` or another command: the camera may
            # have taken the move after them, and nothing would end it. Stop it now.
            self._arm(camera_id, driver, 0.0)
        return {"stops_in": seconds, "deadman": "duration" not in params}

    def _arm(self, camera_id: str, driver: Any, delay: float) -> None:
        self._cancel(camera_id)
        task = asyncio.get_running_loop().create_task(
            self._stop_later(camera_id, driver, delay), name=f"ptz-stop:{camera_id}"
        )
        self._stops[camera_id] = (task, driver)

    def _cancel(self, camera_id: str) -> None:
        entry = self._stops.pop(camera_id, None)
        if entry is not None and entry[0] is not asyncio.current_task():
            entry[0].cancel()

    async def _stop_later(self, camera_id: str, driver: Any, delay: float) -> None:
        started = time.monotonic()
        await asyncio.sleep(delay)
        try:
            await driver.ptz_stop()
        except Exception as err:  # the camera failed us; it must not fail the hub
            _LOGGER.warning("camera %s: PTZ stop after %.1f s failed: %s", camera_id, delay, err)
        else:
            _LOGGER.debug(
                "camera %s: PTZ stopped after %.1f s", camera_id, time.monotonic() - started
            )
        finally:
            entry = self._stops.get(camera_id)
            if entry is not None and entry[0] is asyncio.current_task():
                self._stops.pop(camera_id, None)

    async def wait(self, camera_id: str) -> None:
        """Until the camera's pending stop (if any) has been sent (the CLI waits for it)."""
        entry = self._stops.get(camera_id)
        if entry is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await entry[0]

    async def stop_all(self) -> None:
        """Stop every moving camera now, within ``STOP_TIMEOUT`` (hub shutdown)."""
        pending = [(cam, self._stops[cam][1]) for cam in self.moving()]
        for cam, _ in pending:
            self._cancel(cam)
        if not pending:
            return
        stops = [driver.ptz_stop() for _, driver in pending]
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                results = await asyncio.gather(*stops, return_exceptions=True)
        except TimeoutError:
            _LOGGER.warning("PTZ: cameras did not confirm their stop within %.0f s", STOP_TIMEOUT)
            return
        for (cam, _), result in zip(pending, results, strict=True):
            if isinstance(result, Exception):
                _LOGGER.warning("camera %s: PTZ stop at shutdown failed: %s", cam, result)


def _optional(driver: Any, method: str) -> Any:
    func = getattr(driver, method, None)
    if not callable(func):
        raise PtzUnsupported(f"this camera's driver cannot do {method.removeprefix('ptz_')}")
    return func
