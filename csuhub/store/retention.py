"""Holds, sweeps, the deletion journal, the destruction register and incidents.

The safety of retention rests on SQLite transactions, not on Python locks, so
that the hub's sweeper and a CLI in another process cannot race:

* a sweep *marks* rows (``segments.sweep_id``) in one transaction, only rows
  whose hold level the criterion allows and that no other sweep has marked;
* a hold sets ``segments.hold`` in one transaction, and can never claim a
  marked row: those are reported as being destroyed;
* the sweep then unlinks the marked files and deletes the rows, writing the
  register in the same transaction as the delete.

A crash between mark and delete leaves marked rows; start-up recovery
finishes the sweep (the decision was committed, the files may be half gone).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from csuhub.store import Store

#: Hold levels: what a hold wins over.
PRESERVE = 1  # the retention period (incidents, flagged footage), not the legal cap
LEGAL = 2  # everything: footage under a judicial requisition (CSI L252-5)

#: An open-ended hold (an incident still running) ends here.
FOREVER = 1e15

#: The strongest active hold over (camera, start, end): its level and its label.
STRONGEST_HOLD = (
    "SELECT level, kind || ' ' || ref FROM holds WHERE released_at IS NULL "
    "AND camera_id=? AND end > ? AND start < ? ORDER BY level DESC, id LIMIT 1"
)


@dataclass(frozen=True, slots=True)
class Hold:
    id: int
    camera_id: str
    start: float
    end: float
    level: int
    kind: str
    ref: str
    reason: str
    created_at: float
    created_by: str
    released_at: float | None
    alerted_at: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "camera_id": self.camera_id,
            "start": self.start,
            "end": None if self.end >= FOREVER else self.end,
            "level": "legal" if self.level >= LEGAL else "preserve",
            "kind": self.kind,
            "ref": self.ref,
            "reason": self.reason,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "released_at": self.released_at,
        }


@dataclass(frozen=True, slots=True)
class Marked:
    """A segment a sweep has committed to destroy."""

    id: int
    camera_id: str
    start: float
    end: float
    size: int
    path: str
    policy: str


@dataclass(frozen=True, slots=True)
class MarkRequest:
    """One expiry of a sweep's plan: a camera's footage that ended by ``before`` and
    whose hold level is at most ``max_level`` goes, under ``policy``."""

    camera_id: str
    before: float
    max_level: int
    policy: str


def _marked(conn: sqlite3.Connection, sweep_id: int) -> list[Marked]:
    """The rows a sweep has marked and not yet destroyed (the deletion journal)."""
    return [
        Marked(*r)
        for r in conn.execute(
            "SELECT id, camera_id, start, end, size, path, sweep_policy FROM segments "
            "WHERE sweep_id=?",
            (sweep_id,),
        )
    ]


def _exclusion(conn: sqlite3.Connection, ids: list[int]) -> str:
    """Load ``ids`` into a temporary table; returns the SQL condition leaving them out."""
    if not ids:
        return ""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS sweep_exclude(id INTEGER PRIMARY KEY)")
    conn.execute("DELETE FROM sweep_exclude")
    conn.executemany("INSERT OR IGNORE INTO sweep_exclude(id) VALUES(?)", [(i,) for i in ids])
    return " AND id NOT IN (SELECT id FROM sweep_exclude)"


def _hold(row: sqlite3.Row) -> Hold:
    return Hold(
        row["id"],
        row["camera_id"],
        row["start"],
        row["end"],
        row["level"],
        row["kind"],
        row["ref"],
        row["reason"],
        row["created_at"],
        row["created_by"],
        row["released_at"],
        row["alerted_at"],
    )


def place_holds(
    conn: sqlite3.Connection,
    cameras: Iterable[str],
    start: float,
    end: float,
    *,
    level: int,
    kind: str,
    ref: str,
    reason: str,
    actor: str,
) -> dict[str, dict[str, Any]]:
    """Insert holds and flag the segments (inside the caller's transaction).

    Returns, per camera, what the hold now covers and which indexed segments were
    already committed to destruction by a sweep (they cannot be held any more)."""
    now = time.time()
    result: dict[str, dict[str, Any]] = {}
    for camera_id in cameras:
        conn.execute(
            "INSERT INTO holds(camera_id, start, end, level, kind, ref, reason, created_at, "
            "created_by) VALUES(?,?,?,?,?,?,?,?,?)",
            (camera_id, start, end, level, kind, ref, reason, now, actor),
        )
        conn.execute(
            "UPDATE segments SET hold=?, hold_reason=? WHERE camera_id=? AND end > ? "
            "AND start < ? AND sweep_id IS NULL AND hold < ?",
            (level, f"{kind} {ref}", camera_id, start, end, level),
        )
        row = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0), COALESCE(SUM(sweep_id IS NOT NULL), 0) "
            "FROM segments WHERE camera_id=? AND end > ? AND start < ?",
            (camera_id, start, end),
        ).fetchone()
        result[camera_id] = {
            "segments": row[0] - row[2],
            "bytes": row[1],
            "being_destroyed": row[2],
        }
    return result


def release_holds(conn: sqlite3.Connection, kind: str, ref: str, actor: str) -> dict[str, Any]:
    """Release every active hold of (kind, ref) and recompute the segments' flags."""
    rows = conn.execute(
        "SELECT * FROM holds WHERE kind=? AND ref=? AND released_at IS NULL", (kind, ref)
    ).fetchall()
    now = time.time()
    conn.execute(
        "UPDATE holds SET released_at=?, released_by=? WHERE kind=? AND ref=? "
        "AND released_at IS NULL",
        (now, actor, kind, ref),
    )
    unheld = 0
    for row in rows:
        affected = conn.execute(
            "SELECT id, start, end FROM segments WHERE camera_id=? AND end > ? AND start < ? "
            "AND hold > 0",
            (row["camera_id"], row["start"], row["end"]),
        ).fetchall()
        updates = []
        for seg_id, seg_start, seg_end in affected:
            strongest = conn.execute(
                STRONGEST_HOLD, (row["camera_id"], seg_start, seg_end)
            ).fetchone()
            updates.append((*(strongest or (0, None)), seg_id))
        conn.executemany("UPDATE segments SET hold=?, hold_reason=? WHERE id=?", updates)
        unheld += len(updates)
    return {"holds": len(rows), "segments_rechecked": unheld}


class RetentionStore:
    """Retention's SQL, run on the store's thread."""

    def __init__(self, store: Store) -> None:
        self.store = store

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
        return await self.store.transaction(
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
        return await self.store.transaction(lambda conn: release_holds(conn, kind, ref, actor))

    async def holds(
        self, *, active: bool = True, kind: str | None = None, camera_id: str | None = None
    ) -> list[Hold]:
        def run() -> list[Hold]:
            sql = "SELECT * FROM holds WHERE 1=1"
            args: list[Any] = []
            if active:
                sql += " AND released_at IS NULL"
            if kind is not None:
                sql += " AND kind=?"
                args.append(kind)
            if camera_id is not None:
                sql += " AND camera_id=?"
                args.append(camera_id)
            return [_hold(r) for r in self.store.conn.execute(sql + " ORDER BY id", args)]

        return await self.store._run(run)

    async def mark_alerted(self, hold_ids: list[int]) -> None:
        def run() -> None:
            self.store.conn.executemany(
                "UPDATE holds SET alerted_at=? WHERE id=?", [(time.time(), i) for i in hold_ids]
            )

        await self.store._run(run)

    # -- sweeps and the deletion journal -------------------------------------------------

    async def begin_sweep(self, origin: str) -> int:
        def run() -> int:
            cur = self.store.conn.execute(
                "INSERT INTO sweeps(started_at, origin) VALUES(?, ?)", (time.time(), origin)
            )
            return int(cur.lastrowid or 0)

        return await self.store._run(run)

    async def end_sweep(self, sweep_id: int, state: str = "done") -> None:
        def run() -> None:
            self.store.conn.execute(
                "UPDATE sweeps SET finished_at=?, state=? WHERE id=?",
                (time.time(), state, sweep_id),
            )

        await self.store._run(run)

    async def unfinished_sweeps(self) -> list[int]:
        """Sweeps that never finished, or rows still marked (a crash mid-sweep)."""

        def run() -> list[int]:
            ids = {
                int(r[0])
                for r in self.store.conn.execute("SELECT id FROM sweeps WHERE state='running'")
            }
            ids |= {
                int(r[0])
                for r in self.store.conn.execute(
                    "SELECT DISTINCT sweep_id FROM segments WHERE sweep_id IS NOT NULL"
                )
            }
            return sorted(ids)

        return await self.store._run(run)

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
        excluded = list(exclude)

        def run(conn: sqlite3.Connection) -> tuple[list[Marked], int]:
            extra = _exclusion(conn, excluded)
            remaining = limit
            exhausted = 0
            for request in expiries:
                cur = conn.execute(
                    "UPDATE segments SET sweep_id=?, sweep_policy=? WHERE id IN ("
                    "SELECT id FROM segments WHERE camera_id=? AND end <= ? AND hold <= ? "
                    f"AND sweep_id IS NULL{extra} ORDER BY end LIMIT ?)",
                    (
                        sweep_id,
                        request.policy,
                        request.camera_id,
                        request.before,
                        request.max_level,
                        remaining,
                    ),
                )
                if cur.rowcount >= remaining:
                    break  # the batch is full; this expiry may have more
                remaining -= cur.rowcount
                exhausted += 1
            return _marked(conn, sweep_id), exhausted

        return await self.store.transaction(run)

    async def candidates(
        self, request: MarkRequest, limit: int, exclude: Iterable[int] = ()
    ) -> list[tuple[int, float, float, str]]:
        """What ``mark`` would take next for ``request``, leaving out ``exclude``
        (for the ``retention_hold`` hook to veto)."""
        excluded = list(exclude)

        def run() -> list[tuple[int, float, float, str]]:
            extra = _exclusion(self.store.conn, excluded)
            return [
                (int(r[0]), r[1], r[2], r[3])
                for r in self.store.conn.execute(
                    "SELECT id, start, end, path FROM segments WHERE camera_id=? AND end <= ? "
                    f"AND hold <= ? AND sweep_id IS NULL{extra} ORDER BY end LIMIT ?",
                    (request.camera_id, request.before, request.max_level, limit),
                )
            ]

        return await self.store._run(run)

    async def mark_ids(
        self, sweep_id: int, approved: Sequence[tuple[MarkRequest, Sequence[int]]]
    ) -> list[Marked]:
        """Mark exactly the given rows (those the ``retention_hold`` hook let go), in
        one transaction, each only if its request's rule still allows it (a hold
        placed since the hook was asked wins)."""

        def run(conn: sqlite3.Connection) -> list[Marked]:
            for request, ids in approved:
                conn.executemany(
                    "UPDATE segments SET sweep_id=?, sweep_policy=? WHERE id=? AND camera_id=? "
                    "AND end <= ? AND hold <= ? AND sweep_id IS NULL",
                    [
                        (
                            sweep_id,
                            request.policy,
                            seg_id,
                            request.camera_id,
                            request.before,
                            request.max_level,
                        )
                        for seg_id in ids
                    ],
                )
            return _marked(conn, sweep_id)

        return await self.store.transaction(run)

    async def marked(self, sweep_id: int) -> list[Marked]:
        return await self.store._run(lambda: _marked(self.store.conn, sweep_id))

    async def destroyed(
        self, sweep_id: int, ids: list[int], register: list[dict[str, Any]]
    ) -> None:
        """Delete the rows whose files are gone and add them to the register, atomically."""

        def run(conn: sqlite3.Connection) -> None:
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS sweep_done(id INTEGER PRIMARY KEY)")
            conn.execute("DELETE FROM sweep_done")
            conn.executemany("INSERT INTO sweep_done(id) VALUES(?)", [(i,) for i in ids])
            conn.execute(
                "DELETE FROM segments WHERE sweep_id=? AND id IN (SELECT id FROM sweep_done)",
                (sweep_id,),
            )
            conn.executemany(
                "INSERT INTO destructions(camera_id, day, policy, segments, bytes, seconds, "
                "footage_start, footage_end, first_destroyed_at, last_destroyed_at) "
                "VALUES(:camera_id, :day, :policy, :segments, :bytes, :seconds, :start, "
                ":end, :at, :at) ON CONFLICT(camera_id, day, policy) DO UPDATE SET "
                "segments = segments + excluded.segments, bytes = bytes + excluded.bytes, "
                "seconds = seconds + excluded.seconds, "
                "footage_start = MIN(footage_start, excluded.footage_start), "
                "footage_end = MAX(footage_end, excluded.footage_end), "
                "last_destroyed_at = excluded.last_destroyed_at",
                register,
            )
            conn.execute(
                "UPDATE sweeps SET segments = segments + ?, bytes = bytes + ? WHERE id=?",
                (sum(r["segments"] for r in register), sum(r["bytes"] for r in register), sweep_id),
            )

        await self.store.transaction(run)

    async def unmark(self, sweep_id: int, ids: list[int]) -> None:
        """Give rows back (their file could not be unlinked): they stay indexed, with
        the strongest hold over them now (one placed while they were marked skipped
        them, and must not be lost with the mark)."""

        def run(conn: sqlite3.Connection) -> None:
            updates = []
            for seg_id in ids:
                row = conn.execute(
                    "SELECT camera_id, start, end FROM segments WHERE id=? AND sweep_id=?",
                    (seg_id, sweep_id),
                ).fetchone()
                if row is None:
                    continue
                strongest = conn.execute(STRONGEST_HOLD, tuple(row)).fetchone()
                updates.append((*(strongest or (0, None)), seg_id))
            conn.executemany(
                "UPDATE segments SET sweep_id=NULL, sweep_policy=NULL, hold=?, hold_reason=? "
                "WHERE id=?",
                updates,
            )

        await self.store.transaction(run)

    async def sweeps(self, limit: int = 20) -> list[dict[str, Any]]:
        def run() -> list[dict[str, Any]]:
            return [
                dict(r)
                for r in self.store.conn.execute(
                    "SELECT * FROM sweeps ORDER BY id DESC LIMIT ?", (limit,)
                )
            ]

        return await self.store._run(run)

    # -- what the policies look at -------------------------------------------------------

    async def oldest_unheld(
        self, need: int, cutoffs: dict[str, float], default_cutoff: float
    ) -> tuple[dict[str, float], int]:
        """Walk unheld footage oldest first (ending by each camera's cutoff) until
        ``need`` bytes; returns, per camera, the end time to sweep up to, and the
        bytes found."""

        def run() -> tuple[dict[str, float], int]:
            found = 0
            befores: dict[str, float] = {}
            cursor = self.store.conn.execute(
                "SELECT camera_id, end, size FROM segments WHERE hold = 0 AND sweep_id IS NULL "
                "ORDER BY start"
            )
            while found < need:
                rows = cursor.fetchmany(2000)
                if not rows:
                    break
                for camera_id, end, size in rows:
                    if end > cutoffs.get(camera_id, default_cutoff):
                        continue
                    befores[camera_id] = max(befores.get(camera_id, end), end)
                    found += size
                    if found >= need:
                        break
            cursor.close()
            return befores, found

        return await self.store._run(run)

    async def expired_summary(
        self, camera_id: str, before: float, max_level: int
    ) -> dict[str, Any] | None:
        """What ``mark`` would take for one criterion, without marking (a dry run)."""

        def run() -> dict[str, Any] | None:
            row = self.store.conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0), MIN(start), MAX(end) FROM segments "
                "WHERE camera_id=? AND end <= ? AND hold <= ? AND sweep_id IS NULL",
                (camera_id, before, max_level),
            ).fetchone()
            if not row[0]:
                return None
            return {"segments": row[0], "bytes": row[1], "from": row[2], "to": row[3]}

        return await self.store._run(run)

    async def overview(self) -> dict[str, dict[str, Any]]:
        """Per camera: footage, oldest and newest, and what is held."""

        def run() -> dict[str, dict[str, Any]]:
            out: dict[str, dict[str, Any]] = {}
            for r in self.store.conn.execute(
                "SELECT camera_id, COUNT(*), COALESCE(SUM(size),0), MIN(start), MAX(end), "
                "COALESCE(SUM(hold = 1), 0), COALESCE(SUM(CASE WHEN hold = 1 THEN size END), 0), "
                "COALESCE(SUM(hold = 2), 0), COALESCE(SUM(CASE WHEN hold = 2 THEN size END), 0) "
                "FROM segments GROUP BY camera_id"
            ):
                out[r[0]] = {
                    "segments": r[1],
                    "bytes": r[2],
                    "oldest": r[3],
                    "newest": r[4],
                    "preserved": {"segments": r[5], "bytes": r[6]},
                    "legal_hold": {"segments": r[7], "bytes": r[8]},
                }
            return out

        return await self.store._run(run)

    # -- the destruction register ----------------------------------------------------------

    async def destructions(
        self,
        camera_id: str | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> list[dict[str, Any]]:
        def run() -> list[dict[str, Any]]:
            sql = "SELECT * FROM destructions WHERE footage_end > ? AND footage_start < ?"
            args: list[Any] = [
                start if start is not None else float("-inf"),
                end if end is not None else float("inf"),
            ]
            if camera_id is not None:
                sql += " AND camera_id=?"
                args.append(camera_id)
            return [
                dict(r)
                for r in self.store.conn.execute(sql + " ORDER BY camera_id, day, policy", args)
            ]

        return await self.store._run(run)

    async def record_kept(self, sweep_id: int, kept: list[dict[str, Any]]) -> None:
        """Register expired footage a sweep kept because a ``retention_hold`` plugin
        vetoed it or failed (one row per camera and reason), in one transaction."""
        if not kept:
            return

        def run(conn: sqlite3.Connection) -> None:
            now = time.time()
            conn.executemany(
                "INSERT INTO retention_kept(sweep_id, camera_id, reason, failure, segments, "
                "footage_start, footage_end, kept_at) VALUES(?,?,?,?,?,?,?,?)",
                [
                    (
                        sweep_id,
                        k["camera_id"],
                        k["reason"],
                        int(bool(k["failure"])),
                        k["segments"],
                        k["footage_start"],
                        k["footage_end"],
                        now,
                    )
                    for k in kept
                ],
            )

        await self.store.transaction(run)

    async def kept(
        self, camera_id: str | None = None, sweep_id: int | None = None
    ) -> list[dict[str, Any]]:
        """The register's other half: what sweeps kept past expiry, and why."""

        def run() -> list[dict[str, Any]]:
            sql = "SELECT * FROM retention_kept WHERE 1=1"
            args: list[Any] = []
            if camera_id is not None:
                sql += " AND camera_id=?"
                args.append(camera_id)
            if sweep_id is not None:
                sql += " AND sweep_id=?"
                args.append(sweep_id)
            return [dict(r) for r in self.store.conn.execute(sql + " ORDER BY id", args)]

        return await self.store._run(run)

    # -- incidents (what retention needs of them) ---------------------------------------------

    async def open_incident(
        self, reference: str, cameras: list[str], start: float, end: float | None, title: str = ""
    ) -> int:
        def run() -> int:
            cur = self.store.conn.execute(
                "INSERT INTO incidents(reference, title, cameras, start, end, opened_at) "
                "VALUES(?,?,?,?,?,?)",
                (reference, title, json.dumps(cameras), start, end, time.time()),
            )
            return int(cur.lastrowid or 0)

        return await self.store._run(run)

    async def close_incident(self, incident_id: int, end: float | None = None) -> bool:
        def run() -> bool:
            now = time.time()
            cur = self.store.conn.execute(
                "UPDATE incidents SET closed_at=?, end=COALESCE(end, ?) WHERE id=? "
                "AND closed_at IS NULL",
                (now, end if end is not None else now, incident_id),
            )
            return cur.rowcount > 0

        return await self.store._run(run)

    async def incidents(self) -> list[dict[str, Any]]:
        def run() -> list[dict[str, Any]]:
            rows = self.store.conn.execute("SELECT * FROM incidents ORDER BY id").fetchall()
            return [{**dict(r), "cameras": json.loads(r["cameras"])} for r in rows]

        return await self.store._run(run)
