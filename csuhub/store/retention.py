"""Retention's repository: holds, sweeps, the deletion journal, the destruction
register and incidents, off the event loop.

The SQL and the reasoning that keeps sweeps and holds from racing are in
:mod:`csuhub.store.holds` and :mod:`csuhub.store.sweeps`; this module runs it
on the store's thread, each write that must be atomic in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import csuhub.store.holds as hold_sql
import csuhub.store.sweeps as sweep_sql
from csuhub.store.holds import FOREVER, LEGAL, PRESERVE, STRONGEST_HOLD, Hold, place_holds
from csuhub.store.sweeps import Marked, MarkRequest

if TYPE_CHECKING:
    from csuhub.store.db import Database

__all__ = [
    "FOREVER",
    "LEGAL",
    "PRESERVE",
    "STRONGEST_HOLD",
    "Hold",
    "MarkRequest",
    "Marked",
    "RetentionStore",
    "place_holds",
]


class RetentionStore:
    """Retention's SQL, run on the store's thread."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- holds -----------------------------------------------------------------------

    async def place(
        self,
        cameras: list[str],
        start: float,
        end: float,
        *,
        level: int,
        kind: str,
        ref: str,
        reason: str,
        actor: str,
    ) -> dict[str, dict[str, Any]]:
        return await self.db.transaction(
            lambda conn: place_holds(
                conn,
                cameras,
                start,
                end,
                level=level,
                kind=kind,
                ref=ref,
                reason=reason,
                actor=actor,
            )
        )

    async def release(self, kind: str, ref: str, actor: str) -> dict[str, Any]:
        return await self.db.transaction(hold_sql.release_holds, kind, ref, actor)

    async def holds(
        self, *, active: bool = True, kind: str | None = None, camera_id: str | None = None
    ) -> list[Hold]:
        return await self.db.call(hold_sql.select_holds, active, kind, camera_id)

    async def mark_alerted(self, hold_ids: list[int]) -> None:
        await self.db.call(hold_sql.mark_alerted, hold_ids)

    # -- sweeps and the deletion journal -------------------------------------------------

    async def begin_sweep(self, origin: str) -> int:
        return await self.db.call(sweep_sql.begin_sweep, origin)

    async def end_sweep(self, sweep_id: int, state: str = "done") -> None:
        await self.db.call(sweep_sql.end_sweep, sweep_id, state)

    async def unfinished_sweeps(self) -> list[int]:
        """Sweeps that never finished, or rows still marked (a crash mid-sweep)."""
        return await self.db.call(sweep_sql.unfinished_sweeps)

    async def mark(
        self,
        sweep_id: int,
        expiries: Sequence[MarkRequest],
        *,
        limit: int,
        exclude: Iterable[int] = (),
    ) -> tuple[list[Marked], int]:
        """Mark, in one transaction, up to ``limit`` segments over ``expiries`` taken in
        order: a batch spans cameras, so a sweep costs one commit per ``limit`` rows and
        not one per camera. Returns the marked rows and how many leading expiries have
        nothing left to mark (the next call starts after them)."""
        return await self.db.transaction(sweep_sql.mark, sweep_id, expiries, limit, list(exclude))

    async def candidates(
        self, request: MarkRequest, limit: int, exclude: Iterable[int] = ()
    ) -> list[tuple[int, float, float, str]]:
        """What ``mark`` would take next for ``request``, leaving out ``exclude``
        (for the ``retention_hold`` hook to veto)."""
        return await self.db.call(sweep_sql.candidates, request, limit, list(exclude))

    async def mark_ids(
        self, sweep_id: int, approved: Sequence[tuple[MarkRequest, Sequence[int]]]
    ) -> list[Marked]:
        """Mark exactly the given rows (those the ``retention_hold`` hook let go), in
        one transaction, each only if its request's rule still allows it (a hold
        placed since the hook was asked wins)."""
        return await self.db.transaction(sweep_sql.mark_ids, sweep_id, approved)

    async def marked(self, sweep_id: int) -> list[Marked]:
        return await self.db.call(sweep_sql.marked, sweep_id)

    async def destroyed(
        self, sweep_id: int, ids: list[int], register: list[dict[str, Any]]
    ) -> None:
        """Delete the rows whose files are gone and add them to the register, atomically."""
        await self.db.transaction(sweep_sql.destroyed, sweep_id, ids, register)

    async def unmark(self, sweep_id: int, ids: list[int]) -> None:
        """Give rows back (their file could not be unlinked): they stay indexed, with
        the strongest hold over them now (one placed while they were marked skipped
        them, and must not be lost with the mark)."""
        await self.db.transaction(sweep_sql.unmark, sweep_id, ids)

    async def sweeps(self, limit: int = 20) -> list[dict[str, Any]]:
        return await self.db.call(sweep_sql.select_sweeps, limit)

    # -- what the policies look at -------------------------------------------------------

    async def oldest_unheld(
        self, need: int, cutoffs: dict[str, float], default_cutoff: float
    ) -> tuple[dict[str, float], int]:
        """Walk unheld footage oldest first (ending by each camera's cutoff) until
        ``need`` bytes; returns, per camera, the end time to sweep up to, and the
        bytes found."""
        return await self.db.call(sweep_sql.oldest_unheld, need, cutoffs, default_cutoff)

    async def expired_summary(
        self, camera_id: str, before: float, max_level: int
    ) -> dict[str, Any] | None:
        """What ``mark`` would take for one criterion, without marking (a dry run)."""
        return await self.db.call(sweep_sql.expired_summary, camera_id, before, max_level)

    async def overview(self) -> dict[str, dict[str, Any]]:
        """Per camera: footage, oldest and newest, and what is held."""
        return await self.db.call(sweep_sql.overview)

    # -- the destruction register ----------------------------------------------------------

    async def destructions(
        self,
        camera_id: str | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> list[dict[str, Any]]:
        return await self.db.call(sweep_sql.select_destructions, camera_id, start, end)

    async def record_kept(self, sweep_id: int, kept: list[dict[str, Any]]) -> None:
        """Register expired footage a sweep kept because a ``retention_hold`` plugin
        vetoed it or failed (one row per camera and reason), in one transaction."""
        if kept:
            await self.db.transaction(sweep_sql.record_kept, sweep_id, kept)

    async def kept(
        self, camera_id: str | None = None, sweep_id: int | None = None
    ) -> list[dict[str, Any]]:
        """The register's other half: what sweeps kept past expiry, and why."""
        return await self.db.call(sweep_sql.select_kept, camera_id, sweep_id)

    # -- incidents (what retention needs of them) ---------------------------------------------

    async def open_incident(
        self, reference: str, cameras: list[str], start: float, end: float | None, title: str = ""
    ) -> int:
        return await self.db.call(hold_sql.open_incident, reference, cameras, start, end, title)

    async def close_incident(self, incident_id: int, end: float | None = None) -> bool:
        return await self.db.call(hold_sql.close_incident, incident_id, end)

    async def incidents(self) -> list[dict[str, Any]]:
        return await self.db.call(hold_sql.select_incidents)
