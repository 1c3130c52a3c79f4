"""The walls' live state (SQL, on the store's thread): one row per wall (its
version and the incidents waiting for a spotlight screen) and one per screen
(its state as the walls' JSON, and the fingerprint of its site-file
declaration). A change and its audit entry are one transaction
(``csuhub.store.audited``), so the audit never tells of a wall the store lost.

Rows come out as plain dicts: ``csuhub.walls`` makes its model from them.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
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
    """Every stored wall: ``{wall: {version, waiting, screens: {screen: {declared, state}}}}``."""
    walls: dict[str, dict[str, Any]] = {}
    for row in conn.execute("SELECT wall, version, waiting FROM wall_state"):
        walls[row["wall"]] = {
            "version": int(row["version"]),
            "waiting": _json_list(row["waiting"]),
            "screens": {},
        }
    for row in conn.execute("SELECT wall, screen, declared, state FROM wall_screens"):
        wall = walls.setdefault(row["wall"], {"version": 0, "waiting": [], "screens": {}})
        try:
            state = json.loads(row["state"])
        except ValueError:  # a damaged row: the site file's declaration takes over
            state = None
        wall["screens"][row["screen"]] = {"declared": row["declared"], "state": state}
    return walls


def _json_list(text: str) -> list[Any]:
    try:
        found = json.loads(text)
    except ValueError:
        return []
    return found if isinstance(found, list) else []


def save(
    conn: sqlite3.Connection,
    wall: str,
    version: int,
    waiting: Sequence[int],
    screens: Sequence[ScreenRow],
    entries: Sequence[Entry],
) -> None:
    """The wall's version and waiting list, the changed screens, and their entries."""
    now = time.time()
    conn.execute(
        "INSERT INTO wall_state(wall, version, waiting, updated_at) VALUES(?, ?, ?, ?) "
        "ON CONFLICT(wall) DO UPDATE SET version=excluded.version, "
        "waiting=excluded.waiting, updated_at=excluded.updated_at",
        (wall, version, json.dumps(list(waiting)), now),
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
    ) -> None:
        await self.db.transaction(save, wall, version, list(waiting), list(screens), list(entries))

    async def forget(self, wall: str, keep: Sequence[str] | None = None) -> None:
        await self.db.transaction(forget, wall, None if keep is None else list(keep))
