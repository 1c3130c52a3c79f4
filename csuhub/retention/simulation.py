"""The holds a dry run's policies would place or release, kept in memory only.

A dry run must say what the real sweep would destroy, and write nothing. A
policy places and releases holds while it plans (``incident_preservation``
holds an open incident's footage); skipping those writes made a dry run list
footage the real sweep keeps, and miss footage a release lets go. So the
:class:`~csuhub.api.PolicyStore` facade records them here instead, and the
dry run's selection works out each segment's hold from the stored holds and
these (never from the stored ``segments.hold`` flag alone). Nothing here
touches the store's tables or the files.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from csuhub.store.holds import Hold
from csuhub.store.records import Segment

if TYPE_CHECKING:
    from csuhub.services import HubServices

#: segments read per query when a dry run walks a camera its simulated holds touch
PAGE = 5000

#: rounds of ``oldest_unheld`` asking again for what the simulated holds cover
ROUNDS = 8

PLACE = "place"
RELEASE = "release"


@dataclass(slots=True)
class SimulatedHold:
    """One hold a policy would place, or one stored hold it would release, with the
    footage that changes because of it (``segments``/``bytes``: kept from, or freed
    for, the sweep's expiries; each segment counted once)."""

    action: str
    camera_id: str
    start: float
    end: float
    level: int
    kind: str
    ref: str
    reason: str
    actor: str
    segments: int = 0
    bytes: int = 0
    counted: set[int] = field(default_factory=set, repr=False)

    def covers(self, start: float, end: float) -> bool:
        return self.end > start and self.start < end

    def count(self, segment_id: int, size: int) -> None:
        if segment_id not in self.counted:
            self.counted.add(segment_id)
            self.segments += 1
            self.bytes += size

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "camera_id": self.camera_id,
            "start": self.start,
            "end": self.end,
            "kind": self.kind,
            "ref": self.ref,
            "reason": self.reason,
            "actor": self.actor,
            "segments": self.segments,
            "bytes": self.bytes,
        }


class DryRunHolds:
    """The holds of one dry run, in the order the policies asked for them."""

    def __init__(self) -> None:
        self.entries: list[SimulatedHold] = []
        #: (kind, ref) of the stored holds a policy would release
        self.released: set[tuple[str, str]] = set()
        self._ids = itertools.count(-1, -1)  # never a stored hold's id

    def place(
        self,
        cameras: Iterable[str],
        start: float,
        end: float,
        *,
        level: int,
        kind: str,
        ref: str,
        reason: str,
        actor: str,
    ) -> None:
        for camera_id in cameras:
            self.entries.append(
                SimulatedHold(PLACE, camera_id, start, end, level, kind, ref, reason, actor)
            )

    def release(self, kind: str, ref: str, stored: Sequence[Hold], actor: str) -> None:
        """As the store does: every active hold of (kind, ref), the stored ones and
        those this dry run placed already."""
        self.entries = [
            e for e in self.entries if not (e.action == PLACE and (e.kind, e.ref) == (kind, ref))
        ]
        if (kind, ref) in self.released:
            return
        self.released.add((kind, ref))
        for hold in stored:
            self.entries.append(
                SimulatedHold(
                    RELEASE,
                    hold.camera_id,
                    hold.start,
                    hold.end,
                    hold.level,
                    kind,
                    ref,
                    hold.reason,
                    actor,
                )
            )

    def holds(self, kind: str, stored: Sequence[Hold], now: float) -> list[Hold]:
        """The active holds of ``kind`` as the policy would see them after its writes."""
        out = [h for h in stored if (h.kind, h.ref) not in self.released]
        for entry in self.entries:
            if entry.action == PLACE and entry.kind == kind:
                out.append(
                    Hold(
                        next(self._ids),
                        entry.camera_id,
                        entry.start,
                        entry.end,
                        entry.level,
                        entry.kind,
                        entry.ref,
                        entry.reason,
                        now,
                        entry.actor,
                        None,
                        None,
                    )
                )
        return out

    def affects(self, camera_id: str, level: int) -> bool:
        """Whether an expiry of the camera up to hold ``level`` can see a difference."""
        return any(e.camera_id == camera_id and e.level > level for e in self.entries)

    def report(self) -> list[dict[str, Any]]:
        return [e.as_dict() for e in self.entries]

    async def summary(
        self, hub: HubServices, camera_id: str, before: float, max_level: int
    ) -> dict[str, Any] | None:
        """What the real sweep would take for one expiry, as ``expired_summary``
        answers it, with this dry run's holds applied: each segment that ended by
        ``before`` goes when the strongest hold over it, stored (less the released)
        or simulated, is at most ``max_level``. Walks the camera's footage up to
        ``before``, so only for a camera :meth:`affects`."""
        stored = await hub.store.retention.holds(camera_id=camera_id)
        kept = [e for e in self.entries if e.camera_id == camera_id and e.action == PLACE]
        freed = [e for e in self.entries if e.camera_id == camera_id and e.action == RELEASE]
        count = size = 0
        first = last = 0.0
        async for seg in _walk(hub, camera_id, None, before):
            if seg.end > before:
                continue
            now_level = _strongest(stored, seg.start, seg.end, set())
            then_level = max(
                _strongest(stored, seg.start, seg.end, self.released),
                max((e.level for e in kept if e.covers(seg.start, seg.end)), default=0),
            )
            if then_level <= max_level:
                first = seg.start if not count else min(first, seg.start)
                last = max(last, seg.end)
                count += 1
                size += seg.size
                if now_level > max_level:
                    _credit(freed, seg.id, seg.start, seg.end, seg.size, max_level)
            elif now_level <= max_level:
                _credit(kept, seg.id, seg.start, seg.end, seg.size, max_level)
        if not count:
            return None
        return {"segments": count, "bytes": size, "from": first, "to": last}

    async def oldest_unheld(
        self,
        hub: HubServices,
        need: int,
        cutoffs: dict[str, float],
        default_cutoff: float,
    ) -> tuple[dict[str, float], int]:
        """The store's ``oldest_unheld`` as if the holds placed so far had been: the
        bytes they cover do not count, so ask again for that much more (a few
        rounds: each can reach more covered footage). Holds simulated as released
        are not counted as unheld (the real sweep may then take older footage)."""
        retention = hub.store.retention
        extra = covered = 0
        befores, found = await retention.oldest_unheld(need, cutoffs, default_cutoff)
        for _ in range(ROUNDS):
            covered = await self._covered_unheld(hub, befores)
            if found - covered >= need or found < need + extra or covered == extra:
                break
            extra = covered
            befores, found = await retention.oldest_unheld(need + extra, cutoffs, default_cutoff)
        else:
            covered = await self._covered_unheld(hub, befores)
        return befores, max(found - covered, 0)

    async def _covered_unheld(self, hub: HubServices, befores: dict[str, float]) -> int:
        """Bytes of unheld footage, ended by each camera's ``befores``, that a
        simulated placement covers (each segment once)."""
        total = 0
        for camera_id, before in befores.items():
            seen: set[int] = set()
            for entry in self.entries:
                if entry.action != PLACE or entry.camera_id != camera_id:
                    continue
                async for seg in _walk(hub, camera_id, entry.start, min(entry.end, before)):
                    if seg.end <= before and not seg.hold and seg.id not in seen:
                        seen.add(seg.id)
                        total += seg.size
        return total


async def _walk(
    hub: HubServices, camera_id: str, low: float | None, high: float
) -> AsyncIterator[Segment]:
    """The camera's segments overlapping [low, high), a page at a time, each once."""
    seen: set[int] = set()
    while True:
        page = await hub.store.segments(camera_id, low, high, limit=PAGE)
        fresh = [s for s in page if s.id not in seen]
        if not fresh:
            return
        for seg in fresh:
            seen.add(seg.id)
            yield seg
        if len(page) < PAGE:
            return
        low = page[-1].start


def _strongest(
    holds: Sequence[Hold], start: float, end: float, released: set[tuple[str, str]]
) -> int:
    return max(
        (
            h.level
            for h in holds
            if h.end > start and h.start < end and (h.kind, h.ref) not in released
        ),
        default=0,
    )


def _credit(
    entries: Sequence[SimulatedHold],
    segment_id: int,
    start: float,
    end: float,
    size: int,
    max_level: int,
) -> None:
    """Count the segment for the first simulated hold over it that makes the difference."""
    for entry in entries:
        if entry.level > max_level and entry.covers(start, end):
            entry.count(segment_id, size)
            return
