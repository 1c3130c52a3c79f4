"""The audit trail (append-only, by trigger, and hash-chained) and the hub's metadata.

Every entry is chained to the one before it (:mod:`csuhub.audit.chain` says
how). :func:`append_event` reads the previous hash and inserts in one
transaction, its caller's when there is one, so an action and its entry commit
together; the store's single thread and ``BEGIN IMMEDIATE`` serialise appends
across threads and processes, so two entries never claim the same predecessor.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from csuhub.audit.actions import CLASSES, OUTCOMES, classify
from csuhub.audit.chain import COLUMNS, GENESIS, VerifyReport, details_text, entry_hash
from csuhub.audit.chain import verify_rows as _verify_rows
from csuhub.store.db import in_transaction
from csuhub.store.records import AuditRecord

if TYPE_CHECKING:
    from csuhub.security.permissions import Principal
    from csuhub.store.db import Database

_SELECT = "SELECT " + ", ".join(f'"{c}"' for c in COLUMNS) + " FROM audit_log"
_INSERT = (
    "INSERT INTO audit_log("
    + ", ".join(f'"{c}"' for c in COLUMNS)
    + ") VALUES("
    + ", ".join("?" * len(COLUMNS))
    + ")"
)
_NO_UPDATE = (
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
)


def append_event(
    conn: sqlite3.Connection,
    actor: str,
    action: str,
    target: str | None = None,
    *,
    role: str | None = None,
    via: str | None = None,
    source: str | None = None,
    reason: str | None = None,
    outcome: str = "ok",
    ref: int | None = None,
    params: Mapping[str, Any] | None = None,
    ts: float | None = None,
) -> int:
    """Append one chained entry and return its id. Call it inside the transaction
    of the action it records; outside one, it opens its own."""
    if outcome not in OUTCOMES:
        raise ValueError(f"audit outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
    cls = classify(action)
    if cls not in CLASSES:  # pragma: no cover - the table only holds classes
        raise ValueError(f"audit class {cls!r}")
    who = (role, via, source, reason, outcome, ref)
    if not conn.in_transaction:
        return in_transaction(conn, _insert, actor, action, target, cls, who, params, ts)
    return _insert(conn, actor, action, target, cls, who, params, ts)


def _insert(
    conn: sqlite3.Connection,
    actor: str,
    action: str,
    target: str | None,
    cls: str,
    who: tuple[str | None, str | None, str | None, str | None, str, int | None],
    params: Mapping[str, Any] | None,
    ts: float | None,
) -> int:
    role, via, source, reason, outcome, ref = who
    prev = _previous_hash(conn)
    seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name='audit_log'").fetchone()
    last = conn.execute("SELECT max(id) FROM audit_log").fetchone()[0] or 0
    new_id = max(int(seq[0]) if seq else 0, int(last)) + 1
    values = [
        new_id,
        float(time.time() if ts is None else ts),
        actor,
        role or None,
        via or None,
        source or None,
        action,
        target or None,
        details_text(params or {}),
        reason or None,
        outcome,
        None if ref is None else int(ref),
        cls,
        prev,
    ]
    conn.execute(_INSERT, (*values, entry_hash(values)))
    return new_id


def _previous_hash(conn: sqlite3.Connection) -> str:
    """The newest entry's hash; entries from before the chain are chained first."""
    row = conn.execute("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
    if row is None:
        return GENESIS
    if row[0] is not None:
        return str(row[0])
    chained = conn.execute(
        "SELECT hash FROM audit_log WHERE hash IS NOT NULL ORDER BY id DESC LIMIT 1"
    ).fetchone()
    if chained is None:
        return chain_legacy(conn)
    # an unhashed entry after the chain began was not written by the hub: verify
    # names it; the chain carries on from the last entry the hub wrote
    return str(chained[0])


def chain_legacy(conn: sqlite3.Connection) -> str:
    """Chain, once, the entries written before migration 7 (none has a hash yet),
    in id order, classifying their actions; returns the last hash. Runs in the
    caller's transaction, the no-update trigger lifted only inside it."""
    rows = conn.execute(
        "SELECT id, ts, actor, action, target, details FROM audit_log ORDER BY id"
    ).fetchall()
    conn.execute("DROP TRIGGER audit_log_no_update")
    prev = GENESIS
    for rid, ts, actor, action, target, details in rows:
        cls = classify(action)
        values = [rid, float(ts), actor, None, None, None, action, target, details]
        values += [None, "ok", None, cls, prev]
        digest = entry_hash(values)
        conn.execute(
            "UPDATE audit_log SET role=NULL, via=NULL, source=NULL, reason=NULL, "
            "outcome='ok', ref=NULL, class=?, prev_hash=?, hash=? WHERE id=?",
            (cls, prev, digest, rid),
        )
        prev = digest
    conn.execute(_NO_UPDATE)
    return prev


def verify(
    conn: sqlite3.Connection,
    anchors: Mapping[int, str],
    progress: Callable[[int], None] | None,
) -> VerifyReport:
    """Recompute the chain over one consistent snapshot of the table."""
    cur = conn.cursor()
    cur.row_factory = None  # plain tuples: the fastest rows sqlite3 makes
    conn.execute("BEGIN")
    try:
        any_hashed = cur.execute(
            "SELECT 1 FROM audit_log WHERE hash IS NOT NULL LIMIT 1"
        ).fetchone()
        if any_hashed is None:  # empty, or only entries from before the chain
            report = _verify_rows([], anchors)
            legacy = int(cur.execute("SELECT count(*) FROM audit_log").fetchone()[0])
            report.unchained_legacy = legacy
            if legacy:
                report.notes.append(
                    f"{legacy} entries predate the chain; the hub chains them "
                    "with its next audit entry"
                )
            return report
        cur.arraysize = 4096
        return _verify_rows(cur.execute(_SELECT + " ORDER BY id"), anchors, progress)
    finally:
        conn.execute("COMMIT")


def head(conn: sqlite3.Connection) -> tuple[int, str, float] | None:
    """The newest entry: (id, hash, ts), or None for an empty or unchained trail."""
    row = conn.execute(
        "SELECT id, hash, ts FROM audit_log WHERE hash IS NOT NULL ORDER BY id DESC LIMIT 1"
    ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]), float(row[2]))


def entries(
    conn: sqlite3.Connection,
    start: float | None = None,
    end: float | None = None,
    *,
    action: str | None = None,
    actor: str | None = None,
    target: str | None = None,
    limit: int | None = None,
    after: int | None = None,
    newest_first: bool = False,
) -> list[dict[str, Any]]:
    """Entries with every column, the hashed ones as stored (``details`` as text);
    ``after`` pages through a long range by id."""
    where: list[str] = []
    args: list[Any] = []
    for clause, value in (
        ("id > ?", after),
        ("ts >= ?", start),
        ("ts < ?", end),
        ("action = ?", action),
        ("actor = ?", actor),
        ("target = ?", target),
    ):
        if value is not None:
            where.append(clause)
            args.append(value)
    order = " ORDER BY id" + (" DESC" if newest_first else "")
    if where and limit is not None:
        # the ids first, from an index alone (it holds the id), then only the rows
        # sent: sorting the whole match with every column (the details, the
        # hashes) cost 70 ms for a day of one action over 1M entries, 10 this way
        sql = f"{_SELECT} WHERE id IN (SELECT id FROM audit_log WHERE {' AND '.join(where)}"
        sql += f"{order} LIMIT ?){order}"
        args.append(int(limit))
    else:
        sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "") + order
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
    cur = conn.cursor()
    cur.row_factory = None
    return [dict(zip(COLUMNS, row, strict=True)) for row in cur.execute(sql, args)]


def records(conn: sqlite3.Connection, target: str | None, limit: int) -> list[AuditRecord]:
    if target is None:
        rows = conn.execute("SELECT * FROM audit_log ORDER BY id DESC LIMIT ?", (limit,))
    else:
        rows = conn.execute(
            "SELECT * FROM audit_log WHERE target=? ORDER BY id DESC LIMIT ?", (target, limit)
        )
    return [
        AuditRecord(
            r["id"], r["ts"], r["actor"], r["action"], r["target"], json.loads(r["details"])
        )
        for r in rows
    ]


def last_target(conn: sqlite3.Connection, action: str) -> str | None:
    row = conn.execute(
        "SELECT target FROM audit_log WHERE action=? ORDER BY id DESC LIMIT 1", (action,)
    ).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return None if row is None else str(row[0])


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES(?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        (key, value),
    )


class AuditRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def append(
        self, actor: str, action: str, target: str | None = None, /, **details: Any
    ) -> int:
        """Append a chained entry with ``details`` as its parameters (a string
        ``reason`` among them is also the entry's stated reason); returns its id
        once it is durable."""
        reason = details.get("reason")
        return await self.db.transaction(
            _append_kw,
            actor,
            action,
            target,
            {"params": details, "reason": reason if isinstance(reason, str) else None},
        )

    async def event(
        self,
        who: Principal,
        action: str,
        target: str | None = None,
        /,
        *,
        reason: str | None = None,
        outcome: str = "ok",
        ref: int | None = None,
        **params: Any,
    ) -> int:
        """An entry naming the principal's role, session or token and address."""
        fields = {
            "role": who.role,
            "via": who.via,
            "source": who.source,
            "reason": reason,
            "outcome": outcome,
            "ref": ref,
            "params": params,
        }
        return await self.db.transaction(_append_kw, who.name, action, target, fields)

    async def records(self, *, target: str | None = None, limit: int = 100) -> list[AuditRecord]:
        """Newest first."""
        return await self.db.call(records, target, limit)

    async def entries(self, start: float | None = None, end: float | None = None, **kw: Any) -> Any:
        return await self.db.call(_entries_kw, start, end, kw)

    async def head(self) -> tuple[int, str, float] | None:
        return await self.db.call(head)

    async def verify(
        self, anchors: Mapping[int, str], progress: Callable[[int], None] | None = None
    ) -> VerifyReport:
        return await self.db.call(verify, anchors, progress)

    async def last_target(self, action: str) -> str | None:
        """The target of the newest record of ``action`` (the name the hub last
        started under is ``last_target("hub.start")``)."""
        return await self.db.call(last_target, action)

    async def get_meta(self, key: str) -> str | None:
        return await self.db.call(get_meta, key)

    async def set_meta(self, key: str, value: str) -> None:
        await self.db.call(set_meta, key, value)


def _append_kw(
    conn: sqlite3.Connection, actor: str, action: str, target: str | None, kw: dict[str, Any]
) -> int:
    return append_event(conn, actor, action, target, **kw)


def _entries_kw(
    conn: sqlite3.Connection, start: float | None, end: float | None, kw: dict[str, Any]
) -> list[dict[str, Any]]:
    return entries(conn, start, end, **kw)


def iter_entries(conn: sqlite3.Connection, start: float, end: float) -> Iterator[dict[str, Any]]:
    """Entries of [start, end) in id order, one at a time: for a writer running on
    the store's thread (the CLI export), so a year of entries is never one list."""
    cur = conn.cursor()
    cur.row_factory = None
    cur.arraysize = 1024
    for row in cur.execute(_SELECT + " WHERE ts >= ? AND ts < ? ORDER BY id", (start, end)):
        yield dict(zip(COLUMNS, row, strict=True))
