"""Logging what a peer does wrong once, not once per packet.

A misconfigured PBX retransmits, and a hostile source floods: a line that
logged every refused datagram would fill the disk and hide everything else.
Each (what, source) is logged the first time, then at most once per
:data:`WINDOW` seconds with the number of repeats in between; the table is
bounded, and when full the oldest keys are forgotten (so at worst a source is
logged again, never more than once per window).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

WINDOW = 300.0
MAX_KEYS = 1024


class OnceLog:
    def __init__(self, logger: logging.Logger, *, window: float = WINDOW) -> None:
        self._logger = logger
        self._window = window
        self._seen: OrderedDict[tuple[str, str], list[float]] = OrderedDict()
        #: every refusal counted, logged or not (tests and health read it)
        self.counts: dict[str, int] = {}

    def note(
        self, what: str, source: str, detail: str = "", *, level: int = logging.WARNING
    ) -> bool:
        """Count one occurrence; log it if it is the first of its window.
        Returns whether it was logged."""
        self.counts[what] = self.counts.get(what, 0) + 1
        key = (what, source)
        now = time.monotonic()
        entry = self._seen.get(key)
        if entry is not None and now - entry[0] < self._window:
            entry[1] += 1
            return False
        repeats = int(entry[1]) if entry else 0
        self._seen[key] = [now, 0]
        self._seen.move_to_end(key)
        while len(self._seen) > MAX_KEYS:
            self._seen.popitem(last=False)
        more = f" ({repeats} more since last logged)" if repeats else ""
        self._logger.log(
            level, "%s from %s%s%s", what, source, f": {detail}" if detail else "", more
        )
        return True
