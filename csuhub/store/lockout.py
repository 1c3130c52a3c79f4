"""Failed-login counters, per account (``user:<name>``) and per client address
(``addr:<ip>``). How long a lock lasts is :mod:`csuhub.security.lockout`'s
policy; here a failure is counted and its lock set in one transaction, so two
concurrent failures cannot both read the old count."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from csuhub.store.audited import Entry, append

if TYPE_CHECKING:
    from csuhub.store.db import Database


@dataclass(frozen=True, slots=True)
class Counter:
    key: str
    failures: int
    last_failure: float
    locked_until: float


def read(conn: sqlite3.Connection, keys: tuple[str, ...]) -> list[Counter]:
    marks = ",".join("?" * len(keys))
    rows = conn.execute(
        f"SELECT key, failures, last_failure, locked_until FROM login_failures"
        f" WHERE key IN ({marks})",
        keys,
    ).fetchall()
    return [Counter(str(r[0]), int(r[1]), float(r[2]), float(r[3])) for r in rows]


def fail(
    conn: sqlite3.Connection,
    key: str,
    now: float,
    forget_after: float,
    lock_for: Callable[[int], float],
) -> Counter:
    row = conn.execute(
        "SELECT failures, last_failure FROM login_failures WHERE key=?", (key,)
    ).fetchone()
    failures = 1
    if row is not None and now - float(row[1]) < forget_after:
        failures = int(row[0]) + 1
    lock = lock_for(failures)
    locked_until = now + lock if lock > 0 else 0.0
    conn.execute(
        "INSERT INTO login_failures(key, failures, last_failure, locked_until) VALUES(?,?,?,?)"
        " ON CONFLICT(key) DO UPDATE SET failures=excluded.failures,"
        " last_failure=excluded.last_failure, locked_until=excluded.locked_until",
        (key, failures, now, locked_until),
    )
    return Counter(key, failures, now, locked_until)


def fail_audited(
    conn: sqlite3.Connection,
    key: str,
    now: float,
    forget_after: float,
    lock_for: Callable[[int], float],
    audit: Entry | None,
    lock_audit: Callable[[Counter], Entry] | None,
) -> Counter:
    counter = fail(conn, key, now, forget_after, lock_for)
    if audit is not None:
        append(conn, audit)
    if lock_audit is not None and counter.locked_until > now:
        append(conn, lock_audit(counter))
    return counter


def clear(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("DELETE FROM login_failures WHERE key=?", (key,))


class LoginFailureRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def read(self, *keys: str) -> list[Counter]:
        return await self.db.call(read, keys)

    async def fail(
        self,
        key: str,
        now: float,
        forget_after: float,
        lock_for: Callable[[int], float],
        *,
        audit: Entry | None = None,
        lock_audit: Callable[[Counter], Entry] | None = None,
    ) -> Counter:
        """Count one failure (the count restarts after ``forget_after`` seconds
        without one) and lock for ``lock_for(failures)`` seconds (0: no lock).
        ``audit`` (the failure) and ``lock_audit(counter)`` (a lock it placed)
        are written in the same transaction."""
        return await self.db.transaction(
            fail_audited, key, now, forget_after, lock_for, audit, lock_audit
        )

    async def clear(self, key: str) -> None:
        await self.db.call(clear, key)
