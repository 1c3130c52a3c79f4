"""The store: SQLite in WAL mode, reached only through this package.

All SQL lives here. Every call runs on one dedicated thread that owns the
connection, so the event loop never blocks on disk and writes are serialised
without locks in Python. ``synchronous=FULL`` because audit records and the
recording index must survive a power cut, not only a crash; WAL keeps that
cheap.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from csuhub.store.migrations import LATEST, MIGRATIONS
from csuhub.store.retention import STRONGEST_HOLD

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")


class StoreError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    ts: float
    actor: str
    action: str
    target: str | None
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CameraRow:
    """One camera of the register (see ``csuhub.cameras.registry`` for the states)."""

    id: str
    name: str
    driver: str
    ref: str | None
    address: str | None
    state: str
    state_reason: str
    info: dict[str, Any]
    created_at: float
    updated_at: float
    origin: str = "config"
    options: dict[str, Any] = field(default_factory=dict)
    location: dict[str, Any] = field(default_factory=dict)
    authorization_ref: str | None = None
    authorization_issued: str | None = None
    authorization_expires: str | None = None
    authorization_status: str = "missing"
    adopted_at: float | None = None
    adopted_by: str | None = None
    last_seen: float | None = None
    device: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "driver": self.driver,
            "ref": self.ref,
            "address": self.address,
            "state": self.state,
            "state_reason": self.state_reason,
            "origin": self.origin,
            "location": self.location,
            "authorization": {
                "reference": self.authorization_ref,
                "issued": self.authorization_issued,
                "expires": self.authorization_expires,
                "status": self.authorization_status,
            },
            "adopted_at": self.adopted_at,
            "adopted_by": self.adopted_by,
            "last_seen": self.last_seen,
            "info": self.info,
            "device": self.device,
            "updated_at": self.updated_at,
        }


#: Columns ``upsert_camera`` may set, and which of them hold JSON.
CAMERA_COLUMNS = {
    "name",
    "driver",
    "ref",
    "address",
    "state",
    "state_reason",
    "info",
    "origin",
    "options",
    "location",
    "authorization_ref",
    "authorization_issued",
    "authorization_expires",
    "authorization_status",
    "adopted_at",
    "adopted_by",
    "last_seen",
    "device",
}
JSON_COLUMNS = {"info", "options", "location", "device"}


@dataclass(frozen=True, slots=True)
class Segment:
    id: int
    camera_id: str
    start: float
    end: float
    duration: float
    size: int
    path: str
    sha256: str | None
    status: str
    hold: bool
    hold_reason: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "camera_id": self.camera_id,
            "start": self.start,
            "end": self.end,
            "duration": self.duration,
            "size": self.size,
            "path": self.path,
            "sha256": self.sha256,
            "status": self.status,
            "hold": self.hold,
            "hold_reason": self.hold_reason,
        }


@dataclass(frozen=True, slots=True)
class Gap:
    id: int
    camera_id: str
    start: float
    end: float
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "camera_id": self.camera_id,
            "start": self.start,
            "end": self.end,
            "duration": self.end - self.start,
            "reason": self.reason,
        }


#: The store's file in a data directory: its presence is what "hub data" means.
DATABASE = "csuhub.db"


class Store:
    """Async facade over one SQLite database file."""

    def __init__(self, path: Path) -> None:
        from csuhub.store.requisitions import RequisitionStore
        from csuhub.store.retention import RetentionStore

        self.path = path
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self.retention = RetentionStore(self)
        self.requisitions = RequisitionStore(self)

    # -- lifecycle ------------------------------------------------------------

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="csuhub-store")
        await self._run(self._open_sync)

    def _open_sync(self) -> None:
        """A file that is not a database (corrupted, truncated, a directory) or
        cannot be opened is a ``StoreError`` naming it, not a bare sqlite3 error."""
        try:
            self._open_checked()
        except sqlite3.DatabaseError as err:
            self._abandon()
            raise StoreError(f"{self.path}: not a usable csuhub database ({err})") from None
        except StoreError:
            self._abandon()
            raise

    def _abandon(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _open_checked(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn = conn
        conn.row_factory = sqlite3.Row
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise StoreError(f"cannot enable WAL on {self.path} (got {mode})")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        self._migrate(conn)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        if current > LATEST:
            raise StoreError(
                f"{self.path} has schema version {current}, newer than this csuhub ({LATEST}); "
                "upgrade csuhub"
            )
        for version, description, sql in MIGRATIONS:
            if version <= current:
                continue
            _LOGGER.info("store: migrating to version %d (%s)", version, description)
            try:
                conn.execute("BEGIN IMMEDIATE")
                for statement in _split_sql(sql):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={int(version)}")
                conn.execute("COMMIT")
            except Exception:
                conn.execute("ROLLBACK")
                raise

    async def close(self) -> None:
        if self._executor is None:
            return
        await self._run(self._close_sync)
        self._executor.shutdown(wait=True)
        self._executor = None

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.execute("PRAGMA optimize")
            self._conn.close()
            self._conn = None

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise StoreError("store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)

    async def transaction(self, func: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``func(conn)`` as one write transaction (``BEGIN IMMEDIATE``), on the
        store's thread: all or nothing, and serialised against other processes."""

        def run() -> T:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = func(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await self._run(run)

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("store is not open")
        return self._conn

    async def schema_version(self) -> int:
        return await self._run(lambda: self.conn.execute("PRAGMA user_version").fetchone()[0])

    async def journal_mode(self) -> str:
        return await self._run(lambda: self.conn.execute("PRAGMA journal_mode").fetchone()[0])

    # -- metadata -------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        def run() -> str | None:
            row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
            return None if row is None else str(row[0])

        return await self._run(run)

    async def set_meta(self, key: str, value: str) -> None:
        await self._run(
            lambda: self.conn.execute(
                "INSERT INTO meta(key, value) VALUES(?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, value),
            )
        )

    # -- audit trail ------------------------------------------------------------

    async def audit(
        self, actor: str, action: str, target: str | None = None, /, **details: Any
    ) -> int:
        """Append to the audit trail; returns the record id once it is durable.

        The first three are positional-only so that any detail name is free
        (a PTZ ``action``, an export ``target``...).
        """
        payload = json.dumps(details, sort_keys=True, default=str)

        def run() -> int:
            cur = self.conn.execute(
                "INSERT INTO audit_log(ts, actor, action, target, details) VALUES(?,?,?,?,?)",
                (time.time(), actor, action, target, payload),
            )
            return int(cur.lastrowid or 0)

        return await self._run(run)

    async def audit_records(
        self, *, target: str | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        def run() -> list[AuditRecord]:
            if target is None:
                rows = self.conn.execute(
                    "SELECT * FROM audit_log ORDER BY id DESC LIMIT ?", (limit,)
                ).fetchall()
            else:
                rows = self.conn.execute(
                    "SELECT * FROM audit_log WHERE target=? ORDER BY id DESC LIMIT ?",
                    (target, limit),
                ).fetchall()
            return [
                AuditRecord(
                    r["id"], r["ts"], r["actor"], r["action"], r["target"], json.loads(r["details"])
                )
                for r in rows
            ]

        return await self._run(run)

    # -- segment index and gaps --------------------------------------------------

    async def add_segment(
        self,
        camera_id: str,
        *,
        start: float,
        end: float,
        size: int,
        path: str,
        sha256: str | None,
        status: str = "ok",
        gap_reason: str | None = None,
        gap_tolerance: float = 0.25,
    ) -> tuple[int, Gap | None]:
        """Index a segment; if it starts later than the camera's last recorded end
        (beyond ``gap_tolerance``), record the gap in the same transaction.

        A gap is only recorded with a known interruption (``gap_reason``), and then any
        hole beyond the media clock's precision is real: a recorder killed and back
        within a second still lost that second (a 1.5 s tolerance once hid it)."""

        def run() -> tuple[int, Gap | None]:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                existing = conn.execute("SELECT id FROM segments WHERE path=?", (path,)).fetchone()
                if existing is not None:
                    conn.execute("COMMIT")
                    return int(existing[0]), None
                gap = None
                row = conn.execute(
                    "SELECT MAX(end) FROM segments WHERE camera_id=? AND start < ?",
                    (camera_id, start),
                ).fetchone()
                last_end = row[0]
                if (
                    gap_reason is not None
                    and last_end is not None
                    and (start - last_end > gap_tolerance)
                ):
                    cur = conn.execute(
                        "INSERT INTO gaps(camera_id, start, end, reason, created_at) "
                        "VALUES(?,?,?,?,?)",
                        (camera_id, last_end, start, gap_reason, time.time()),
                    )
                    gap = Gap(int(cur.lastrowid or 0), camera_id, last_end, start, gap_reason)
                # footage recorded inside an active hold (an open incident, a requisition
                # reaching into the present) is held from its first second
                held = conn.execute(STRONGEST_HOLD, (camera_id, start, end)).fetchone()
                cur = conn.execute(
                    "INSERT INTO segments(camera_id, start, end, duration, size, path, sha256, "
                    "status, indexed_at, hold, hold_reason) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        camera_id,
                        start,
                        end,
                        end - start,
                        size,
                        path,
                        sha256,
                        status,
                        time.time(),
                        held[0] if held else 0,
                        held[1] if held else None,
                    ),
                )
                conn.execute("COMMIT")
                return int(cur.lastrowid or 0), gap
            except Exception:
                conn.execute("ROLLBACK")
                raise

        return await self._run(run)

    async def add_gap(self, camera_id: str, start: float, end: float, reason: str) -> Gap:
        def run() -> Gap:
            cur = self.conn.execute(
                "INSERT INTO gaps(camera_id, start, end, reason, created_at) VALUES(?,?,?,?,?)",
                (camera_id, start, end, reason, time.time()),
            )
            return Gap(int(cur.lastrowid or 0), camera_id, start, end, reason)

        return await self._run(run)

    async def segments(
        self,
        camera_id: str,
        start: float | None = None,
        end: float | None = None,
        *,
        limit: int = 100_000,
    ) -> list[Segment]:
        """Segments overlapping [start, end), in time order (indexed by camera and time)."""
        lo = start if start is not None else float("-inf")
        hi = end if end is not None else float("inf")

        def run() -> list[Segment]:
            rows = self.conn.execute(
                "SELECT * FROM segments WHERE camera_id=? AND end > ? AND start < ? "
                "ORDER BY start LIMIT ?",
                (camera_id, lo, hi, limit),
            ).fetchall()
            return [_segment(r) for r in rows]

        return await self._run(run)

    async def segment(self, segment_id: int) -> Segment | None:
        def run() -> Segment | None:
            row = self.conn.execute("SELECT * FROM segments WHERE id=?", (segment_id,)).fetchone()
            return None if row is None else _segment(row)

        return await self._run(run)

    async def gaps(
        self, camera_id: str, start: float | None = None, end: float | None = None
    ) -> list[Gap]:
        lo = start if start is not None else float("-inf")
        hi = end if end is not None else float("inf")

        def run() -> list[Gap]:
            rows = self.conn.execute(
                "SELECT * FROM gaps WHERE camera_id=? AND end > ? AND start < ? ORDER BY start",
                (camera_id, lo, hi),
            ).fetchall()
            return [_gap(r) for r in rows]

        return await self._run(run)

    async def last_segment_end(self, camera_id: str) -> float | None:
        def run() -> float | None:
            row = self.conn.execute(
                "SELECT MAX(end) FROM segments WHERE camera_id=?", (camera_id,)
            ).fetchone()
            return None if row[0] is None else float(row[0])

        return await self._run(run)

    async def camera_known(self, camera_id: str) -> bool:
        """Whether the register, the index, the gaps or the destruction register
        name the camera: one query, no rows fetched."""

        def run() -> bool:
            row = self.conn.execute(
                "SELECT EXISTS(SELECT 1 FROM cameras WHERE id=?)"
                " OR EXISTS(SELECT 1 FROM segments WHERE camera_id=?)"
                " OR EXISTS(SELECT 1 FROM gaps WHERE camera_id=?)"
                " OR EXISTS(SELECT 1 FROM destructions WHERE camera_id=?)",
                (camera_id, camera_id, camera_id, camera_id),
            ).fetchone()
            return bool(row[0])

        return await self._run(run)

    async def segment_paths(self, camera_id: str | None = None) -> dict[str, int]:
        """path -> id for every indexed segment (start-up reconciliation)."""

        def run() -> dict[str, int]:
            if camera_id is None:
                rows = self.conn.execute("SELECT path, id FROM segments").fetchall()
            else:
                rows = self.conn.execute(
                    "SELECT path, id FROM segments WHERE camera_id=?", (camera_id,)
                ).fetchall()
            return {r[0]: int(r[1]) for r in rows}

        return await self._run(run)

    async def set_segment_status(self, segment_ids: list[int], status: str) -> None:
        def run() -> None:
            self.conn.executemany(
                "UPDATE segments SET status=? WHERE id=?", [(status, i) for i in segment_ids]
            )

        await self._run(run)

    async def recorded_cameras(self) -> list[str]:
        def run() -> list[str]:
            return [
                r[0]
                for r in self.conn.execute(
                    "SELECT DISTINCT camera_id FROM segments ORDER BY camera_id"
                ).fetchall()
            ]

        return await self._run(run)

    # -- API tokens ---------------------------------------------------------------

    async def create_token(self, name: str, role: str, secret_hash: str) -> int:
        def run() -> int:
            try:
                cur = self.conn.execute(
                    "INSERT INTO api_tokens(name, role, secret_hash, created_at) VALUES(?,?,?,?)",
                    (name, role, secret_hash, time.time()),
                )
            except sqlite3.IntegrityError:
                raise StoreError(f"a token named {name!r} already exists") from None
            return int(cur.lastrowid or 0)

        return await self._run(run)

    async def token_by_hash(self, secret_hash: str) -> tuple[str, str] | None:
        """``(name, role)`` of an unrevoked token, or None."""

        def run() -> tuple[str, str] | None:
            row = self.conn.execute(
                "SELECT name, role FROM api_tokens WHERE secret_hash=? AND revoked_at IS NULL",
                (secret_hash,),
            ).fetchone()
            return None if row is None else (str(row[0]), str(row[1]))

        return await self._run(run)

    async def list_tokens(self) -> list[dict[str, Any]]:
        def run() -> list[dict[str, Any]]:
            rows = self.conn.execute(
                "SELECT name, role, created_at, revoked_at FROM api_tokens ORDER BY name"
            ).fetchall()
            return [dict(r) for r in rows]

        return await self._run(run)

    async def revoke_token(self, name: str) -> bool:
        def run() -> bool:
            cur = self.conn.execute(
                "UPDATE api_tokens SET revoked_at=? WHERE name=? AND revoked_at IS NULL",
                (time.time(), name),
            )
            return cur.rowcount > 0

        return await self._run(run)

    # -- cameras ----------------------------------------------------------------

    async def upsert_camera(self, camera_id: str, **fields: Any) -> None:
        """Insert or update a camera; only the given columns change on update.

        A new row needs ``name``, ``driver`` and ``state``.
        """
        unknown = set(fields) - CAMERA_COLUMNS
        if unknown:
            raise StoreError(f"unknown camera column(s): {', '.join(sorted(unknown))}")
        values = {
            k: json.dumps(v, sort_keys=True, default=str) if k in JSON_COLUMNS else v
            for k, v in fields.items()
        }
        now = time.time()

        def run() -> None:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                exists = conn.execute("SELECT 1 FROM cameras WHERE id=?", (camera_id,)).fetchone()
                if exists:
                    if values:
                        sets = ", ".join(f"{k}=?" for k in values)
                        conn.execute(
                            f"UPDATE cameras SET {sets}, updated_at=? WHERE id=?",
                            (*values.values(), now, camera_id),
                        )
                else:
                    row = {"name": camera_id, "driver": "", "state": "discovered", **values}
                    cols = ", ".join(row)
                    marks = ", ".join("?" for _ in row)
                    conn.execute(
                        f"INSERT INTO cameras(id, {cols}, created_at, updated_at) "
                        f"VALUES(?, {marks}, ?, ?)",
                        (camera_id, *row.values(), now, now),
                    )
                conn.execute("COMMIT")
            except Exception:
                conn.execute("ROLLBACK")
                raise

        await self._run(run)

    async def camera_by_ref(self, ref: str) -> CameraRow | None:
        def run() -> CameraRow | None:
            row = self.conn.execute("SELECT * FROM cameras WHERE ref=?", (ref,)).fetchone()
            return None if row is None else _camera(row)

        return await self._run(run)

    async def delete_camera(self, camera_id: str) -> bool:
        def run() -> bool:
            return self.conn.execute("DELETE FROM cameras WHERE id=?", (camera_id,)).rowcount > 0

        return await self._run(run)

    async def set_camera_state(self, camera_id: str, state: str, reason: str = "") -> str | None:
        """Set a camera's state; returns the previous state (None if unknown camera)."""

        def run() -> str | None:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT state FROM cameras WHERE id=?", (camera_id,)).fetchone()
                if row is not None:
                    conn.execute(
                        "UPDATE cameras SET state=?, state_reason=?, updated_at=? WHERE id=?",
                        (state, reason, time.time(), camera_id),
                    )
                conn.execute("COMMIT")
            except Exception:
                conn.execute("ROLLBACK")
                raise
            return None if row is None else str(row[0])

        return await self._run(run)

    async def list_cameras(self) -> list[CameraRow]:
        def run() -> list[CameraRow]:
            rows = self.conn.execute("SELECT * FROM cameras ORDER BY id").fetchall()
            return [_camera(r) for r in rows]

        return await self._run(run)

    async def get_camera(self, camera_id: str) -> CameraRow | None:
        def run() -> CameraRow | None:
            row = self.conn.execute("SELECT * FROM cameras WHERE id=?", (camera_id,)).fetchone()
            return None if row is None else _camera(row)

        return await self._run(run)


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


def _camera(row: sqlite3.Row) -> CameraRow:
    data = dict(row)
    for key in JSON_COLUMNS:
        data[key] = json.loads(data[key] or "{}")
    return CameraRow(**data)


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies whole."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
