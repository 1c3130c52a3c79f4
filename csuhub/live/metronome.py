"""One timer that wakes many periodic checks at the same instants.

Why: every live socket checks its credential again every ``recheck``
seconds, and every watched upstream looks every second at whether the
database changed (for masks drawn meanwhile). Each on its own timer, 64
sockets and 4 upstreams woke the loop about ten times a second at scattered
instants, each wake a trip to the store's thread for the database's version
(``csuhub.web.cache``). Woken together, they share one trip
(``ChangeProbe`` serves every caller of the same turn), one timer fires
instead of 68, and the checks stay as frequent as before: a member is woken
at every multiple of the period on the loop's clock, so never more than a
period passes between two of its checks.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable


class Metronome:
    """Sets each member's event at every multiple of ``period()`` seconds of
    the loop's clock; the timer runs only while there are members."""

    def __init__(self, period: Callable[[], float]) -> None:
        #: read at each tick: a setting changed at run time applies from the next
        self.period = period
        self._members: set[asyncio.Event] = set()
        self._timer: asyncio.TimerHandle | None = None
        self.ticks = 0

    def join(self, event: asyncio.Event) -> Callable[[], None]:
        """Set ``event`` at each tick from now on; returns what leaves."""
        self._members.add(event)
        if self._timer is None:
            self._schedule()

        def leave() -> None:
            self._members.discard(event)
            if not self._members and self._timer is not None:
                self._timer.cancel()
                self._timer = None

        return leave

    def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        period = max(self.period(), 0.001)
        now = loop.time()
        at = (math.floor(now / period) + 1) * period
        self._timer = loop.call_at(at, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self.ticks += 1
        for event in self._members:
            event.set()
        if self._members:
            self._schedule()

    @property
    def members(self) -> int:
        return len(self._members)
