"""A camera driver for hub tests that need cameras online (or down) without
video: incidents link online cameras, walls show them, call lines rank them.
Option ``down: true`` makes the camera unreachable."""

from __future__ import annotations

from typing import Any

import voluptuous as vol

from csuhub.api import CameraDriverSpec, hookimpl


class StillDriver:
    """A camera that answers its health checks as its options say."""

    def __init__(self, hub: Any, camera_id: str, options: dict[str, Any]) -> None:
        self.down = bool(options.get("down"))

    async def connect(self) -> None:
        if self.down:
            raise ConnectionError("unreachable")

    async def describe(self) -> dict[str, Any]:
        return {}

    async def stream(self, profile: str = "main") -> Any:
        raise NotImplementedError

    async def check_health(self) -> bool:
        return not self.down

    async def close(self) -> None:
        pass


class StillPlugin:
    """Registers the ``still`` camera driver."""

    @hookimpl
    def register_camera_drivers(self, hub: Any) -> list[CameraDriverSpec]:
        return [
            CameraDriverSpec(
                name="still",
                factory=StillDriver,
                config_schema=vol.Schema({vol.Optional("down", default=False): bool}),
            )
        ]
