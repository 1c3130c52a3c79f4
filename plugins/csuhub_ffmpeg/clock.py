"""The media clock: one ffmpeg run's timeline placed on the wall clock.

Index times come from the media's own timestamps, anchored once per run, so
consecutive segments tile exactly; the rules that keep a misbehaving camera's
timeline from overlapping or reaching into the future live here, apart from
the process supervision that feeds them.
"""

from __future__ import annotations

import logging
from collections import deque

_LOGGER = logging.getLogger(__name__)

#: how far the media timeline may drift from the hub's clock before it is re-anchored
DRIFT = 0.5


class MediaClock:
    """Places one ffmpeg run's media timeline on the wall clock.

    ffmpeg lists a segment the moment the packet that opens the next one
    arrives, so ``received - end`` is the wall-clock time of media time 0 plus
    a small, positive latency: every estimate is an upper bound of the true
    anchor, and the smallest seen is the best. Every segment of the run is
    ``anchor + its own timestamps``, so consecutive segments tile exactly.

    The media timeline cannot always be trusted, so two rules hold whatever it
    says, and the anchor follows the estimates:

    * a segment never starts before the previous one ended (a camera whose
      timestamps jump back, an anchor corrected earlier): no overlap;
    * a segment never ends after it was listed (a forward jump, the first
      segment listed late behind ffmpeg's stream analysis): no future.

    Media that would end before the previous segment did (timestamps that
    went back) re-anchors at once on its own estimate.

    An estimate below the anchor moves it at once (the anchor was late: the
    next segment is shortened to where it really ends). The anchor moves
    later only when the smallest of the last three estimates is more than
    ``DRIFT`` away (a camera clock running slow, timestamps that jumped
    back): a hub briefly late reading the list is not drift. ``jumped`` then
    says by how much, so the gap it may leave can be explained.
    """

    def __init__(self, not_before: float, after: float | None = None) -> None:
        #: the process started then: no packet can be older
        self.not_before = not_before
        #: where the camera's previous segment ended (this run's or the last run's)
        self.last_end = after
        self.anchor: float | None = None
        self._recent: deque[float] = deque(maxlen=3)
        #: seconds the anchor moved later at the last placement (the media fell
        #: behind the hub's clock: footage lost, or timestamps that went back), else None
        self.jumped: float | None = None

    def place(self, received: float, start: float, end: float) -> tuple[float, float]:
        """The wall-clock (start, duration) of a segment listed at ``received``."""
        estimate = received - end
        self.jumped = None
        if self.anchor is None:
            self.anchor = max(estimate, self.not_before - start)
        elif estimate < self.anchor:
            self.anchor = estimate
            self._recent.clear()
        else:
            self._recent.append(estimate)
            best = min(self._recent)
            if len(self._recent) == self._recent.maxlen and best - self.anchor > DRIFT:
                _LOGGER.warning(
                    "media clock drifted %.3f s from the hub's: re-anchored", best - self.anchor
                )
                self.jumped = best - self.anchor
                self.anchor = best
                self._recent.clear()
        if self.last_end is not None and self.anchor + end <= self.last_end:
            # media that ends before the footage already indexed: the timestamps went
            # back (a camera's encoder or clock restarted); this estimate is all we have
            _LOGGER.warning("media clock went back %.3f s: re-anchored", estimate - self.anchor)
            self.jumped = estimate - self.anchor
            self.anchor = estimate
            self._recent.clear()
        wall_start = self.anchor + start
        if self.last_end is not None:
            wall_start = max(wall_start, self.last_end)
        wall_end = max(wall_start, min(self.anchor + end, received))
        self.last_end = wall_end
        return wall_start, wall_end - wall_start
