"""Logging what a peer does wrong once, not once per packet.

A misconfigured PBX retransmits, and a hostile source floods: a line that
logged every refused datagram would fill the disk and hide everything else.

* ``what`` is a fixed text chosen by the code (never a peer's words: those go
  in ``detail``, in the message only), so the kinds are few; the counts of
  each kind are kept for health and tests, at most :data:`MAX_KINDS` of them.
* Each (what, source) is logged the first time, then at most once per
  :data:`WINDOW` seconds with the number of repeats in between; the table is
  bounded, and when full the oldest keys are forgotten.
* Sources are many when spoofed, so all lines together are capped at
  :data:`MAX_LINES` per :data:`RATE_WINDOW` seconds; what the cap held back
  is summed up in one line when the next window starts (or at :meth:`flush`):
  "M refusals from K sources suppressed".
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable

WINDOW = 300.0
MAX_KEYS = 1024
MAX_KINDS = 64
RATE_WINDOW = 60.0
MAX_LINES = 20
#: distinct suppressed sources counted exactly; beyond, "at least"
MAX_SUPPRESSED_SOURCES = 4096
OTHER = "other"


class OnceLog:
    def __init__(
        self,
        logger: logging.Logger,
        *,
        window: float = WINDOW,
        rate_window: float = RATE_WINDOW,
        max_lines: int = MAX_LINES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._window = window
        self._rate_window = rate_window
        self._max_lines = max_lines
        self._clock = clock
        self._seen: OrderedDict[tuple[str, str], list[float]] = OrderedDict()
        #: every occurrence counted by kind, logged or not (tests and health read it)
        self.counts: dict[str, int] = {}
        self._window_start = clock()
        self._lines = 0
        self._suppressed = 0
        self._suppressed_sources: set[str] = set()

    def note(
        self, what: str, source: str, detail: str = "", *, level: int = logging.WARNING
    ) -> bool:
        """Count one occurrence; log it if it is the first of its window and
        the line budget allows. Returns whether it was logged."""
        kind = what if what in self.counts or len(self.counts) < MAX_KINDS else OTHER
        self.counts[kind] = self.counts.get(kind, 0) + 1
        now = self._clock()
        self._roll(now)
        key = (what, source)
        entry = self._seen.get(key)
        if entry is not None and now - entry[0] < self._window:
            entry[1] += 1
            return False
        if self._lines >= self._max_lines:
            self._suppressed += 1
            if len(self._suppressed_sources) < MAX_SUPPRESSED_SOURCES:
                self._suppressed_sources.add(source)
            return False
        self._lines += 1
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

    def note_window(self) -> None:
        """Start a new rate window if the current one is over (a timer's tick)."""
        self._roll(self._clock())

    def _roll(self, now: float) -> None:
        if now - self._window_start >= self._rate_window:
            self.flush()
            self._window_start = now
            self._lines = 0

    def flush(self) -> None:
        """Log the summary of what the line cap held back, if anything."""
        if not self._suppressed:
            return
        sources = len(self._suppressed_sources)
        at_least = "at least " if sources >= MAX_SUPPRESSED_SOURCES else ""
        self._logger.warning(
            "%d refusals from %s%d sources suppressed (at most %d lines per %g s)",
            self._suppressed,
            at_least,
            sources,
            self._max_lines,
            self._rate_window,
        )
        self._suppressed = 0
        self._suppressed_sources.clear()
