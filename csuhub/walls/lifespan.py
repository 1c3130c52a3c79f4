"""Starts the walls with the hub: the manager is ``hub.walls``, started after
the incident desk (the spotlight follows its events) and stopped before it."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

from csuhub.walls.manager import WallManager


async def start_walls(hub: Any, stack: AsyncExitStack) -> None:
    """Build the manager, restore the walls' state, follow incidents and reloads."""
    manager = WallManager(hub)
    hub.walls = manager
    await manager.start()
    stack.push_async_callback(manager.stop)
