"""Answers kept while the database is unchanged: authenticated reads without SQL.

A wall of clients polls the camera list, the timelines and checks its token
at every request; each of those read the store, one query (and a trip to the
store's thread) at a time, and rebuilt the same JSON. The answers only change
when something is committed, so they are kept, each tagged with the
database's version at the time it was read, and served while that version is
current.

The version is ``(connection, total_changes, data_version)`` read on the
store's own thread: ``total_changes`` counts every row the hub's connection
wrote (any repository, any table), ``PRAGMA data_version`` changes when
another connection commits (the CLI revoking a token in another process).
Reading it is a trip to the store's thread, so requests share trips: a
request waits for the first probe that *ran after it arrived* (the store's
thread is serial: every commit finished before that moment is counted), and
every request that arrived before that probe ran takes the same answer.
Nothing is ever served from a version older than the request: a token
revoked, an account disabled, a camera's state written, a segment deleted by
retention is seen by the next request that arrives after the commit, whoever
committed it. There is no time-to-live to tune and no stale window.

A read that raced a commit (its version read before, its rows after) is
tagged with the older version and so thrown away at the next request: a
cache entry can be needlessly rebuilt, never wrongly kept.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import weakref
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

from aiohttp import web

V = TypeVar("V")

#: When the request reached the authentication middleware (``time.monotonic()``).
ARRIVED_KEY: web.RequestKey[float] = web.RequestKey("arrived", float)

#: What identifies one state of the database (see the module docstring).
Version = tuple[Any, int, int]


def _read_version(conn: sqlite3.Connection) -> tuple[float, Version]:
    ran = time.monotonic()  # before the counters: a commit after it may be missed, not one before
    data_version = conn.execute("PRAGMA data_version").fetchone()[0]
    return ran, (conn, conn.total_changes, int(data_version))


class ChangeProbe:
    """The database's version as of a moment, one trip to the store's thread
    shared by every request waiting on it."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self._last: tuple[float, Version] | None = None
        self._pending: asyncio.Future[tuple[float, Version]] | None = None

    async def version(self, since: float) -> Version:
        """The version read by a probe that ran at or after ``since`` (``time.monotonic()``)."""
        while True:
            last = self._last
            if last is not None and last[0] >= since:
                return last[1]
            pending = self._pending
            loop = asyncio.get_running_loop()
            if pending is None or pending.get_loop() is not loop:
                pending = self._pending = asyncio.ensure_future(self._probe())
            ran, version = await asyncio.shield(pending)
            if ran >= since:
                return version
            # that probe ran before the caller arrived: the next one will not

    async def _probe(self) -> tuple[float, Version]:
        try:
            # one turn of the loop first: the requests read in the same turn as the
            # caller enter before the probe runs, and share it
            await asyncio.sleep(0)
            result: tuple[float, Version] = await self._db.call(_read_version)
        finally:
            self._pending = None
        last = self._last
        if last is None or result[0] >= last[0]:
            self._last = result
        return result


_PROBES: weakref.WeakKeyDictionary[Any, ChangeProbe] = weakref.WeakKeyDictionary()


def probe_of(store: Any) -> ChangeProbe:
    """The store's probe (one per store object, gone with it)."""
    probe = _PROBES.get(store)
    if probe is None:
        probe = _PROBES[store] = ChangeProbe(store)
    return probe


async def current_version(store: Any, since: float | None = None) -> Version | None:
    """The store's version as of ``since`` (default: now); None when it cannot be
    read (a store without SQL, a closed one): then nothing is served from a cache."""
    try:
        return await probe_of(store).version(time.monotonic() if since is None else since)
    except Exception:
        return None


async def request_version(request: web.Request, store: Any) -> Version | None:
    """The version as of the request's arrival: the same probe answers the token
    check and the handler."""
    return await current_version(store, request.get(ARRIVED_KEY))


class Kept(Generic[V]):
    """Values by key, each valid for one database version; the least recently
    used go first past ``entries`` or ``size`` (the sum of the sizes given)."""

    def __init__(self, entries: int = 256, size: int = 64 * 1024 * 1024) -> None:
        self.entries = entries
        self.size = size
        self._values: OrderedDict[Hashable, tuple[Version, V, int]] = OrderedDict()
        self._used = 0

    def get(self, key: Hashable, version: Version) -> V | None:
        found = self._values.get(key)
        if found is None:
            return None
        if found[0] != version:  # tuples compare the connection by identity
            self._drop(key)
            return None
        self._values.move_to_end(key)
        return found[1]

    def peek(self, key: Hashable) -> tuple[Version, V] | None:
        """The value and the version it was kept under, whatever the current one:
        for values that can be checked otherwise (then ``put`` again)."""
        found = self._values.get(key)
        return None if found is None else (found[0], found[1])

    def put(self, key: Hashable, version: Version, value: V, size: int = 0) -> None:
        if size > self.size:
            return
        self._drop(key)
        self._values[key] = (version, value, size)
        self._used += size
        while len(self._values) > self.entries or self._used > self.size:
            self._drop(next(iter(self._values)))

    def clear(self) -> None:
        self._values.clear()
        self._used = 0

    def __len__(self) -> int:
        return len(self._values)

    def _drop(self, key: Hashable) -> None:
        found = self._values.pop(key, None)
        if found is not None:
            self._used -= found[2]
