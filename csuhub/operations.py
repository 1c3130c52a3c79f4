"""The hub's services beyond recording, started in their order by ``Hub.start``.

Why a module: each service (the audit's anchors and lifts, the logbook, the
incident desk and call lines, the walls, live video) has its own lifespan
function; the order between them is the one decision that belongs here, and
``hub.py`` stays about lifecycle alone.

* ``start_records`` runs right after the store opens, before plugins and
  cameras: the logbook must see a camera's very first failure.
* ``start_operations`` runs once cameras, recording and retention run: the
  desk links online cameras, the walls follow incidents, live video reads the
  cameras. Each pushes its own stop on the stack, so they stop in reverse.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from csuhub.incidents.lifespan import start_incidents
from csuhub.live.lifespan import start_live
from csuhub.logbook.listener import start_logbook
from csuhub.security.lifespan import start_security
from csuhub.walls.lifespan import start_walls

if TYPE_CHECKING:
    from csuhub.hub import Hub

__all__ = ["start_operations", "start_records"]


async def start_records(hub: Hub, stack: AsyncExitStack) -> None:
    await start_security(hub, stack)  # audit anchors, lift expiry
    await start_logbook(hub, stack)  # camera failures and returns


async def start_operations(hub: Hub, stack: AsyncExitStack) -> None:
    await start_incidents(hub, stack)  # the desk, then the call lines
    await start_walls(hub, stack)  # after the desk: the spotlight follows incidents
    await start_live(hub, stack)
