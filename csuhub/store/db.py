"""The SQLite database: its one thread, its connection, transactions and migrations.

Every statement runs on one dedicated thread that owns the connection, so the
event loop never blocks on disk and writes are serialised without locks in
Python. ``synchronous=FULL`` because audit records and the recording index
must survive a power cut, not only a crash; WAL keeps that cheap.

Repositories write their SQL as plain functions of a connection and run them
with :meth:`Database.call` (one statement or several reads) or
:meth:`Database.transaction` (all or nothing, ``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from csuhub.store.migrations import LATEST, MIGRATIONS
from csuhub.store.records import StoreError

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")

#: The store's file in a data directory: its presence is what "hub data" means.
DATABASE = "csuhub.db"


class Database:
    """One SQLite file, reached from its own thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    # -- lifecycle ------------------------------------------------------------

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="csuhub-store")
        await asyncio.get_running_loop().run_in_executor(self._executor, self._open_sync)

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
        executor = self._executor
        if executor is None:
            return
        await asyncio.get_running_loop().run_in_executor(executor, self._close_sync)
        executor.shutdown(wait=True)
        self._executor = None

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.execute("PRAGMA optimize")
            self._conn.close()
            self._conn = None

    # -- running SQL ------------------------------------------------------------

    def submit(self, func: Callable[..., T], *args: Any) -> Future[T]:
        """Queue ``func(conn, *args)`` on the store's thread, from any thread: the
        recorder's hashing threads hand a segment straight to the store with it,
        without a detour through the event loop."""
        executor = self._executor
        if executor is None:
            raise StoreError("store is not open")
        return executor.submit(self._with_conn, func, args)

    def _with_conn(self, func: Callable[..., T], args: tuple[Any, ...]) -> T:
        if self._conn is None:
            raise StoreError("store is not open")
        return func(self._conn, *args)

    async def call(self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func(conn, *args)`` on the store's thread and return its result
        (autocommit: each write statement is its own transaction)."""
        return await asyncio.wrap_future(self.submit(func, *args))

    async def transaction(self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func(conn, *args)`` as one write transaction (``BEGIN IMMEDIATE``), on
        the store's thread: all or nothing, and serialised against other processes."""
        return await self.call(in_transaction, func, *args)

    async def schema_version(self) -> int:
        return int(await self.call(_pragma, "user_version"))

    async def journal_mode(self) -> str:
        return str(await self.call(_pragma, "journal_mode"))


def in_transaction(conn: sqlite3.Connection, func: Callable[..., T], *args: Any) -> T:
    """``func(conn, *args)`` between ``BEGIN IMMEDIATE`` and ``COMMIT``, rolled back on
    any exception (on the store's thread)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = func(conn, *args)
    except BaseException:
        # SQLite may have rolled back already (disk full, I/O error): a second
        # ROLLBACK would raise and hide the real error
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def _pragma(conn: sqlite3.Connection, name: str) -> Any:
    return conn.execute(f"PRAGMA {name}").fetchone()[0]


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
