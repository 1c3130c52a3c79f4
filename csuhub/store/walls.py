"""The walls' live state (SQL, on the store's thread): one row per wall (its
version, the incidents waiting for a spotlight screen and those an operator
or a timeout took off one) and one per screen
(its state as the walls' JSON, and the fingerprint of its site-file
declaration). A change and its audit entry are one transaction
(``csuhub.store.audited``), so the audit never tells of a wall the store lost.

Rows come out as plain dicts: ``csuhub.walls`` makes its model from them.

The ``waiting`` column holds a JSON list (the waiting incidents), or, once a
wall has released incidents, ``{"waiting": [...], "released": {"<id>":
<priority>}}``: the object is read back as both, the old list as it was, so
no migration is needed and an older row reads the same.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from csuhub.store.audited import Entry, append

if TYPE_CHECKING:
    from csuhub.store.db import Database


@dataclass(frozen=True, slots=True)
class ScreenRow:
    """A screen's state to write: its JSON (``ScreenState.as_dict``) and declaration."""

    screen: str
    declared: str
    state: str


def load(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """Every stored wall: ``{wall: {version, waiting, released, screens: {screen:
    {declared, state}}}}``."""
    walls: dict[str, dict[str, Any]] = {}
    for row in conn.execute("SELECT wall, version, waiting FROM wall_state"):
        waiting, released = _queues(row["waiting"])
        walls[row["wall"]] = {
            "version": int(row["version"]),
            "waiting": waiting,
            "released": released,
            "screens": {},
        }
    for row in conn.execute("SELECT wall, screen, declared, state FROM wall_screens"):
        wall = walls.setdefault(
            row["wall"], {"version": 0, "waiting": [], "released": {}, "screens": {}}
        )
        try:
            state = json.loads(row["state"])
        except ValueError:  # a damaged row: the site file's declaration takes over
            state = None
        wall["screens"][row["screen"]] = {"declared": row["declared"], "state": state}
    return walls


def _queues(text: str) -> tuple[list[Any], dict[int, int]]:
    """The ``waiting`` column: the waiting list and the released incidents
    (id -> the priority it had when released); a damaged value is empty."""
    try:
        found = json.loads(text)
    except ValueError:
        return [], {}
    if isinstance(found, list):
        return found, {}
    if not isinstance(found, dict):
        return [], {}
    waiting = found.get("waiting")
    released: dict[int, int] = {}
    raw = found.get("released")
    for key, value in raw.items() if isinstance(raw, dict) else ():
        try:
            released[int(key)] = int(value)
        except (TypeError, ValueError):
            continue
    return (waiting if isinstance(waiting, list) else []), released


def _queues_text(waiting: Sequence[int], released: Mapping[int, int]) -> str:
    if not released:
        return json.dumps(list(waiting))
    return json.dumps(
        {"waiting": list(waiting), "released": {str(k): int(v) for k, v in released.items()}}
    )


def save(
    conn: sqlite3.Connection,
    wall: str,
    version: int,
    waiting: Sequence[int],
    screens: Sequence[ScreenRow],
    entries: Sequence[Entry],
    released: Mapping[int, int] | None = None,
) -> None:
    """The wall's version, waiting list and released incidents, the changed
    screens, and their entries."""
    now = time.time()
    conn.execute(
        "INSERT INTO wall_state(wall, version, waiting, updated_at) VALUES(?, ?, ?, ?) "
        "ON CONFLICT(wall) DO UPDATE SET version=excluded.version, "
        "waiting=excluded.waiting, updated_at=excluded.updated_at",
        (wall, version, _queues_text(waiting, released or {}), now),
    )
    for screen in screens:
        conn.execute(
            "INSERT INTO wall_screens(wall, screen, declared, state, version, updated_at) "
            "VALUES(?, ?, ?, ?, ?, ?) ON CONFLICT(wall, screen) DO UPDATE SET "
            "declared=excluded.declared, state=excluded.state, version=excluded.version, "
            "updated_at=excluded.updated_at",
            (wall, screen.screen, screen.declared, screen.state, version, now),
        )
    for entry in entries:
        append(conn, entry)


def forget(conn: sqlite3.Connection, wall: str, keep: Sequence[str] | None) -> None:
    """Drop a wall the site no longer declares (``keep`` None), or its screens not in ``keep``."""
    if keep is None:
        conn.execute("DELETE FROM wall_screens WHERE wall=?", (wall,))
        conn.execute("DELETE FROM wall_state WHERE wall=?", (wall,))
        return
    marks = ",".join("?" for _ in keep)
    conn.execute(
        f"DELETE FROM wall_screens WHERE wall=? AND screen NOT IN ({marks})",
        (wall, *keep),
    )


class WallStore:
    """The walls' rows, over any store's ``Database``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def load(self) -> dict[str, dict[str, Any]]:
        return await self.db.call(load)

    async def save(
        self,
        wall: str,
        version: int,
        waiting: Sequence[int],
        screens: Sequence[ScreenRow],
        entries: Sequence[Entry] = (),
        released: Mapping[int, int] | None = None,
    ) -> None:
        await self.db.transaction(
            save,
            wall,
            version,
            list(waiting),
            list(screens),
            list(entries),
            dict(released or {}),
        )

    async def forget(self, wall: str, keep: Sequence[str] | None = None) -> None:
        await self.db.transaction(forget, wall, None if keep is None else list(keep))
