"""Starts live video with the hub and stops it with the hub.

``hub.live`` is the :class:`~csuhub.live.manager.LiveManager`. Nothing
streams until a viewer asks: upstreams start with their first viewer. When
the hub stops, its viewers are told first (on ``HubStopping``, before the
web server waits for its open requests, so no live socket holds the
shutdown up), then every upstream's ffmpeg is stopped.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

from csuhub.events import HubStopping
from csuhub.live.manager import LiveManager


async def start_live(hub: Any, stack: AsyncExitStack) -> None:
    manager = LiveManager(hub)
    hub.live = manager
    unsubscribe = hub.bus.listen(HubStopping, lambda _event: manager.close_viewers())
    stack.callback(unsubscribe)
    stack.push_async_callback(manager.stop)
