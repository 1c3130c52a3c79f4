"""How many live sockets one principal, and the hub, may hold open.

Why caps: each live socket holds a viewer (a send queue, three tasks) and may
start an ffmpeg process per camera stream; a leaked or hostile token
opening hundreds would cost the hub and the cameras. A kiosk needs one
socket per tile of its wall's screens, and some slack for a reload (the old
page's sockets close a moment after the new page's open): a wall account
may hold ``per_tile`` times its walls' tiles; anyone else ``per_principal``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from csuhub.security.permissions import Principal
from csuhub.walls.parse import named_walls


class LiveGate:
    """The open live sockets, per principal and in all."""

    def __init__(self, manager: Any) -> None:
        #: the ``LiveManager``: its settings are read at each socket
        self.manager = manager
        self.total = 0
        self.per: Counter[tuple[str, str]] = Counter()

    @staticmethod
    def key(principal: Principal) -> tuple[str, str]:
        return principal.kind, principal.name

    def cap(self, hub: Any, principal: Principal) -> int:
        walls = named_walls(principal)
        manager = getattr(hub, "walls", None)
        if not walls or manager is None:
            return int(self.manager.settings.per_principal)
        tiles = sum(
            len(screen.tiles)
            for wall_id, wall in manager.walls.items()
            if wall_id in walls
            for screen in wall.screens.values()
        )
        return int(max(self.manager.settings.per_principal, self.manager.settings.per_tile * tiles))

    def enter(self, hub: Any, principal: Principal) -> str | None:
        """Count a socket in, or say why not (nothing counted then)."""
        key = self.key(principal)
        limit = self.manager.settings.max_sockets
        if self.total >= limit:
            return f"too many live streams on this hub ({limit}); try again later"
        cap = self.cap(hub, principal)
        if self.per[key] >= cap:
            return f"too many live streams open for {principal.name} ({cap}); close one first"
        self.total += 1
        self.per[key] += 1
        return None

    def leave(self, principal: Principal) -> None:
        key = self.key(principal)
        self.total -= 1
        self.per[key] -= 1
        if self.per[key] <= 0:
            del self.per[key]
