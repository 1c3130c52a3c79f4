"""The recording index: segments and the gaps between them.

Indexing is the hot path (one row per camera per segment, forever), so
:class:`IndexWriter` makes it cheap without changing what it records:

* segments handed in together are written in one transaction (one fsync):
  while the store's thread commits one batch, the next accumulates. Each
  segment of a batch is its own savepoint, so one bad row fails alone (a
  segment alone in its transaction needs none: the rollback is its own);
* the gap before a segment needs the camera's last recorded end. Asked of
  SQLite it is a scan of the camera's footage (milliseconds at 30 days); the
  writer keeps each camera's latest start and end in memory instead, read
  from the database once, and trusts them only while nothing else wrote: no
  other statement on this connection (``total_changes``) and no commit by
  another process (``PRAGMA data_version``, a CLI sweep). An out-of-order
  segment, starting before the newest one, still asks the database;
* a path indexed twice is caught by the UNIQUE index, not a lookup first.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING

from csuhub.store.holds import strongest
from csuhub.store.records import Gap, NewSegment, Segment, StoreError

if TYPE_CHECKING:
    from csuhub.store.db import Database

_LOGGER = logging.getLogger(__name__)

#: Per camera: the latest start and the latest end indexed (None: no footage).
Latest = tuple[float, float | None]


def _segment(row: sqlite3.Row) -> Segment:
    return Segment(
        row["id"],
        row["camera_id"],
        row["start"],
        row["end"],
        row["duration"],
        row["size"],
        row["path"],
        row["sha256"],
        row["status"],
        bool(row["hold"]),
        row["hold_reason"],
    )


def _gap(row: sqlite3.Row) -> Gap:
    return Gap(row["id"], row["camera_id"], row["start"], row["end"], row["reason"])


# -- SQL, on the store's thread --------------------------------------------------------


def insert_gap(
    conn: sqlite3.Connection, camera_id: str, start: float, end: float, reason: str
) -> Gap:
    cur = conn.execute(
        "INSERT INTO gaps(camera_id, start, end, reason, created_at) VALUES(?,?,?,?,?)",
        (camera_id, start, end, reason, time.time()),
    )
    return Gap(int(cur.lastrowid or 0), camera_id, start, end, reason)


def select_segments(
    conn: sqlite3.Connection, camera_id: str, lo: float, hi: float, limit: int
) -> list[Segment]:
    rows = conn.execute(
        "SELECT * FROM segments WHERE camera_id=? AND end > ? AND start < ? ORDER BY start LIMIT ?",
        (camera_id, lo, hi, limit),
    ).fetchall()
    return [_segment(r) for r in rows]


def select_segment(conn: sqlite3.Connection, segment_id: int) -> Segment | None:
    row = conn.execute("SELECT * FROM segments WHERE id=?", (segment_id,)).fetchone()
    return None if row is None else _segment(row)


def select_gaps(conn: sqlite3.Connection, camera_id: str, lo: float, hi: float) -> list[Gap]:
    rows = conn.execute(
        "SELECT * FROM gaps WHERE camera_id=? AND end > ? AND start < ? ORDER BY start",
        (camera_id, lo, hi),
    ).fetchall()
    return [_gap(r) for r in rows]


def last_end(conn: sqlite3.Connection, camera_id: str) -> float | None:
    row = conn.execute("SELECT MAX(end) FROM segments WHERE camera_id=?", (camera_id,)).fetchone()
    return None if row[0] is None else float(row[0])


def camera_known(conn: sqlite3.Connection, camera_id: str) -> bool:
    row = conn.execute(
        "SELECT EXISTS(SELECT 1 FROM cameras WHERE id=?)"
        " OR EXISTS(SELECT 1 FROM segments WHERE camera_id=?)"
        " OR EXISTS(SELECT 1 FROM gaps WHERE camera_id=?)"
        " OR EXISTS(SELECT 1 FROM destructions WHERE camera_id=?)",
        (camera_id, camera_id, camera_id, camera_id),
    ).fetchone()
    return bool(row[0])


def footage_version(conn: sqlite3.Connection, camera_id: str) -> int:
    """How many writes the camera's footage records have had (migration 9's
    triggers count them): unchanged, so is everything a timeline shows."""
    row = conn.execute(
        "SELECT version FROM footage_versions WHERE camera_id=?", (camera_id,)
    ).fetchone()
    return 0 if row is None else int(row[0])


def segment_paths(conn: sqlite3.Connection, camera_id: str | None) -> dict[str, int]:
    if camera_id is None:
        rows = conn.execute("SELECT path, id FROM segments").fetchall()
    else:
        rows = conn.execute(
            "SELECT path, id FROM segments WHERE camera_id=?", (camera_id,)
        ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def set_status(conn: sqlite3.Connection, segment_ids: list[int], status: str) -> None:
    conn.executemany("UPDATE segments SET status=? WHERE id=?", [(status, i) for i in segment_ids])


def recorded_cameras(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute("SELECT DISTINCT camera_id FROM segments ORDER BY camera_id").fetchall()
    return [r[0] for r in rows]


def _latest(conn: sqlite3.Connection, camera_id: str) -> Latest:
    """The camera's latest start and end: two index look-ups."""
    row = conn.execute(
        "SELECT (SELECT MAX(start) FROM segments WHERE camera_id=?1), "
        "(SELECT MAX(end) FROM segments WHERE camera_id=?1)",
        (camera_id,),
    ).fetchone()
    return (float("-inf") if row[0] is None else row[0]), row[1]


def _end_before(conn: sqlite3.Connection, camera_id: str, start: float) -> float | None:
    """The last end of the footage that started before ``start`` (an out-of-order
    segment: what the gap before it is measured from)."""
    return conn.execute(
        "SELECT MAX(end) FROM segments WHERE camera_id=? AND start < ?", (camera_id, start)
    ).fetchone()[0]


def insert_segment(
    conn: sqlite3.Connection, new: NewSegment, latest: dict[str, Latest]
) -> tuple[int, Gap | None]:
    """Index one segment and the gap before it (inside the caller's transaction);
    ``latest`` is the writer's per-camera cache, read or filled and then updated."""
    camera_id, start, end = new.camera_id, new.start, new.end
    known = latest.get(camera_id)
    if known is None:
        known = latest[camera_id] = _latest(conn, camera_id)
    previous_end = known[1] if start > known[0] else _end_before(conn, camera_id, start)
    # footage recorded inside an active hold (an open incident, a requisition
    # reaching into the present) is held from its first second
    level, label = strongest(conn, camera_id, start, end)
    cur = conn.execute(
        "INSERT INTO segments(camera_id, start, end, duration, size, path, sha256, "
        "status, indexed_at, hold, hold_reason) VALUES(?,?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT(path) DO NOTHING",
        (
            camera_id,
            start,
            end,
            end - start,
            new.size,
            new.path,
            new.sha256,
            new.status,
            time.time(),
            level,
            label,
        ),
    )
    if cur.rowcount == 0:  # indexed already (a recovery seeing a file twice)
        row = conn.execute("SELECT id FROM segments WHERE path=?", (new.path,)).fetchone()
        return int(row[0]), None
    latest[camera_id] = (
        max(known[0], start),
        end if known[1] is None else max(known[1], end),
    )
    gap = None
    if (
        new.gap_reason is not None
        and previous_end is not None
        and start - previous_end > new.gap_tolerance
    ):
        gap = insert_gap(conn, camera_id, previous_end, start, new.gap_reason)
    return int(cur.lastrowid or 0), gap


# -- the group-committing writer ---------------------------------------------------------

Waiting = tuple[NewSegment, "Future[tuple[int, Gap | None]]"]


class IndexWriter:
    """Segments to index, written in batches on the store's thread."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._waiting: list[Waiting] = []
        self._scheduled = False
        #: the per-camera cache, and the state of the database it describes
        self._latest: dict[str, Latest] = {}
        #: (connection, data_version, total_changes): both counters restart with a new
        #: connection, so a reopened store must not match the old one's state
        self._seen: tuple[sqlite3.Connection, int, int] | None = None

    def submit(self, new: NewSegment) -> Future[tuple[int, Gap | None]]:
        """Queue a segment, from any thread; the future is its (id, gap)."""
        future: Future[tuple[int, Gap | None]] = Future()
        with self._lock:
            self._waiting.append((new, future))
            schedule, self._scheduled = not self._scheduled, True
        if schedule:
            try:
                self.db.submit(self._flush).add_done_callback(self._flush_done)
            except BaseException:
                with self._lock:
                    batch, self._waiting, self._scheduled = self._waiting, [], False
                for _, waiting in batch:
                    if waiting is not future:
                        waiting.set_exception(RuntimeError("store closed"))
                raise
        return future

    async def add(self, new: NewSegment) -> tuple[int, Gap | None]:
        return await asyncio.wrap_future(self.submit(new))

    def _flush_done(self, done: Future[None]) -> None:
        """A flush that never ran (the store closed first) answers what waits on it,
        and lets the next segment schedule a flush again."""
        # _flush answers its own batch; only a flush that did not run is handled here
        if not done.cancelled() and not isinstance(done.exception(), StoreError):
            return
        with self._lock:
            batch, self._waiting, self._scheduled = self._waiting, [], False
        for _, future in batch:
            if future.set_running_or_notify_cancel():
                future.set_exception(StoreError("the store closed before the segment was indexed"))

    def _flush(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            batch, self._waiting, self._scheduled = self._waiting, [], False
        batch = [(new, future) for new, future in batch if future.set_running_or_notify_cancel()]
        if not batch:
            return
        results: list[tuple[int, Gap | None] | Exception] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # read inside the write lock: no other process can commit until ours
                # does, so this is also the version after our COMMIT (our own
                # commits never change it)
                version = conn.execute("PRAGMA data_version").fetchone()[0]
                if (conn, version, conn.total_changes) != self._seen:  # conn: by identity
                    self._latest.clear()
                latest = dict(self._latest)
                if len(batch) == 1:
                    # alone in its transaction (the usual case: staggered cameras close
                    # apart), a failure undoes only this segment without a savepoint:
                    # the transaction is rolled back and the segment's future fails
                    results.append(insert_segment(conn, batch[0][0], latest))
                else:
                    for new, _ in batch:
                        results.append(self._one(conn, new, latest))
                seen = conn, version, conn.total_changes
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except BaseException as err:
            self._latest.clear()
            self._seen = None
            for _, future in batch:
                future.set_exception(err)
            if not isinstance(err, Exception):
                raise
            return
        self._latest, self._seen = latest, seen
        for (_, future), result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    @staticmethod
    def _one(
        conn: sqlite3.Connection, new: NewSegment, latest: dict[str, Latest]
    ) -> tuple[int, Gap | None] | Exception:
        """One segment in its own savepoint: a failure undoes it alone."""
        before = latest.get(new.camera_id)
        conn.execute("SAVEPOINT segment")
        try:
            result = insert_segment(conn, new, latest)
        except Exception as err:
            conn.execute("ROLLBACK TO segment")
            conn.execute("RELEASE segment")
            if before is None:
                latest.pop(new.camera_id, None)
            else:
                latest[new.camera_id] = before
            _LOGGER.debug("indexing %s failed: %s", new.path, err)
            return err
        conn.execute("RELEASE segment")
        return result


class SegmentRepository:
    """The index's reads and writes, off the event loop."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.writer = IndexWriter(db)

    async def add(self, new: NewSegment) -> tuple[int, Gap | None]:
        return await self.writer.add(new)

    def submit(self, new: NewSegment) -> Future[tuple[int, Gap | None]]:
        return self.writer.submit(new)

    async def add_gap(self, camera_id: str, start: float, end: float, reason: str) -> Gap:
        return await self.db.call(insert_gap, camera_id, start, end, reason)

    async def segments(
        self,
        camera_id: str,
        start: float | None = None,
        end: float | None = None,
        *,
        limit: int = 100_000,
    ) -> list[Segment]:
        return await self.db.call(select_segments, camera_id, *_bounds(start, end), limit)

    async def segment(self, segment_id: int) -> Segment | None:
        return await self.db.call(select_segment, segment_id)

    async def gaps(
        self, camera_id: str, start: float | None = None, end: float | None = None
    ) -> list[Gap]:
        return await self.db.call(select_gaps, camera_id, *_bounds(start, end))

    async def last_end(self, camera_id: str) -> float | None:
        return await self.db.call(last_end, camera_id)

    async def camera_known(self, camera_id: str) -> bool:
        return await self.db.call(camera_known, camera_id)

    async def footage_version(self, camera_id: str) -> int:
        return await self.db.call(footage_version, camera_id)

    async def paths(self, camera_id: str | None = None) -> dict[str, int]:
        return await self.db.call(segment_paths, camera_id)

    async def set_status(self, segment_ids: list[int], status: str) -> None:
        await self.db.call(set_status, segment_ids, status)

    async def cameras(self) -> list[str]:
        return await self.db.call(recorded_cameras)


def _bounds(start: float | None, end: float | None) -> tuple[float, float]:
    return (
        start if start is not None else float("-inf"),
        end if end is not None else float("inf"),
    )
