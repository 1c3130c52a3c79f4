"""Incidents, their linked cameras, bookmarks and notes (SQL, on the store's thread).

Every change is one transaction with its audit entries (``csuhub.store.audited``)
and, when it links cameras to an open incident, the footage holds it places:
an incident, its cameras, its holds and its entries are all written or none is.
A call is opened once: :func:`open_incident` looks for the call's open
incident inside its ``BEGIN IMMEDIATE`` transaction (so a CLI or a second hub
on the same database cannot open it twice either), with the ``incidents_call``
unique index (over open incidents) as the backstop. A closed incident is
never reopened nor changed by its call: a reused call id opens a new incident
that ``follows`` it (the desk decides).

Rows come out as plain dicts and the caller (``csuhub.incidents``) makes its
model from them: no ``sqlite3`` type leaves this module.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from csuhub.store.audited import Entry, append
from csuhub.store.holds import end_holds, release_holds
from csuhub.store.incident_links import (
    HOLD_KIND,
    Link,
    call_target,
    link_cameras,
    linked_entry,
    rerank,
    target,
)
from csuhub.store.incident_reads import by_call, get, select, stale

if TYPE_CHECKING:
    from csuhub.security.permissions import Principal
    from csuhub.store.db import Database

#: the columns a new incident is written with (``open_incident``'s ``fields``)
FIELDS = (
    "source_kind",
    "source_line",
    "call_id",
    "caller",
    "lat",
    "lon",
    "radius_m",
    "address",
    "district",
    "category",
    "priority",
    "text",
    "received_at",
    "call_state",
    "follows",
    "reported_at",
)
#: what a later report or an operator may change
UPDATABLE = frozenset(
    {"caller", "lat", "lon", "radius_m", "address", "district", "category", "priority", "text"}
    | {"call_state", "reported_at"}
)
#: what a late report may still change on a closed incident: the call's state
#: (the telephony's record), never the incident's facts
CLOSED_UPDATABLE = frozenset({"call_state", "reported_at"})
#: written without an audit entry of its own (bookkeeping, not a fact)
UNAUDITED = frozenset({"reported_at"})


def open_incident(
    conn: sqlite3.Connection,
    fields: Mapping[str, Any],
    links: Sequence[Link],
    hold_start: float,
    who: Principal,
) -> tuple[int, bool, list[Link]]:
    """Open an incident (audited ``call.received`` for a call, then
    ``incident.open``), link ``links`` and hold their footage from ``hold_start``:
    ``(id, True, linked)``. A call with an open incident already (same line and
    call id) is left alone: ``(its id, False, [])``."""
    line, call_id = fields.get("source_line"), fields.get("call_id")
    if call_id is not None:
        found = conn.execute(
            "SELECT id FROM incidents WHERE source_line=? AND call_id=? AND status='open'",
            (line, call_id),
        ).fetchone()
        if found is not None:
            return int(found[0]), False, []
    now = time.time()
    values = {name: fields.get(name) for name in FIELDS}
    columns = ", ".join(values)
    cur = conn.execute(
        f"INSERT INTO incidents(reference, title, cameras, start, opened_at, updated_at, "
        f"status, opened_by, {columns}) VALUES('', ?, '[]', ?, ?, ?, 'open', ?, "
        f"{', '.join('?' * len(values))})",
        (str(values["category"] or ""), hold_start, now, now, who.name, *values.values()),
    )
    incident_id = int(cur.lastrowid or 0)
    conn.execute("UPDATE incidents SET reference=? WHERE id=?", (str(incident_id), incident_id))
    if call_id is not None:
        append(
            conn,
            Entry(
                who,
                "call.received",
                call_target(str(line), str(call_id)),
                {
                    "line": line,
                    "call_id": call_id,
                    "state": values["call_state"],
                    "caller": values["caller"],
                    "incident": incident_id,
                    **({"follows": values["follows"]} if values["follows"] is not None else {}),
                },
            ),
        )
    params = {
        k: v
        for k, v in values.items()
        if v is not None and k not in ("received_at", "call_state", "reported_at")
    }
    params["hold_start"] = hold_start
    append(conn, Entry(who, "incident.open", target(incident_id), params))
    added = link_cameras(conn, incident_id, links, who.name, now)
    if added:
        append(conn, linked_entry(who, incident_id, added))
    return incident_id, True, added


def _is_open(conn: sqlite3.Connection, incident_id: int) -> bool | None:
    row = conn.execute("SELECT status FROM incidents WHERE id=?", (incident_id,)).fetchone()
    return None if row is None else row[0] == "open"


def update(
    conn: sqlite3.Connection,
    incident_id: int,
    changes: Mapping[str, Any],
    links: Sequence[Link],
    who: Principal,
    call: Mapping[str, Any] | None = None,
    distances: Mapping[str, float | None] | None = None,
) -> list[Link] | None:
    """Apply ``changes`` (audited ``incident.update``; a call's new state also
    ``call.updated``) and, while the incident is open, link ``links``; with
    ``distances`` (the incident moved) re-rank its cameras from the new point
    (``links`` first). None when there is no such incident. A closed
    incident's facts cannot change: only its call's state (ValueError)."""
    state = _is_open(conn, incident_id)
    if state is None:
        return None
    now = time.time()
    unknown = set(changes) - (UPDATABLE if state else CLOSED_UPDATABLE)
    if unknown:
        raise ValueError(f"cannot update {sorted(unknown)}" + ("" if state else " when closed"))
    audited = {k: v for k, v in changes.items() if k not in UNAUDITED}
    if changes:
        # bookkeeping alone (a report's time) is no change of the incident
        columns = {**changes, **({"updated_at": now} if audited else {})}
        assignments = ", ".join(f"{name}=?" for name in columns)
        conn.execute(
            f"UPDATE incidents SET {assignments} WHERE id=?", (*columns.values(), incident_id)
        )
        if call is not None and "call_state" in changes:
            append(
                conn,
                Entry(
                    who,
                    "call.updated",
                    call_target(str(call["line"]), str(call["call_id"])),
                    {**call, "state": changes["call_state"], "incident": incident_id},
                ),
            )
    if audited:
        append(conn, Entry(who, "incident.update", target(incident_id), audited))
    added = link_cameras(conn, incident_id, links, who.name, now) if state else []
    if added:
        append(conn, linked_entry(who, incident_id, added))
    if state and distances is not None:
        rerank(conn, incident_id, links, distances, now)
    return added


def link(
    conn: sqlite3.Connection, incident_id: int, links: Sequence[Link], who: Principal
) -> list[Link] | bool | None:
    """Link cameras to an open incident (and hold their footage): the new links;
    None without such an incident, False when it is closed."""
    state = _is_open(conn, incident_id)
    if not state:
        return None if state is None else False
    added = link_cameras(conn, incident_id, links, who.name, time.time())
    if added:
        append(conn, linked_entry(who, incident_id, added))
    return added


def add_note(
    conn: sqlite3.Connection, incident_id: int, text: str, who: Principal
) -> int | bool | None:
    """A note on an open incident (its id); None without one, False when closed."""
    state = _is_open(conn, incident_id)
    if not state:
        return None if state is None else False
    now = time.time()
    cur = conn.execute(
        "INSERT INTO incident_notes(incident_id, text, created_at, created_by) VALUES(?,?,?,?)",
        (incident_id, text, now, who.name),
    )
    conn.execute("UPDATE incidents SET updated_at=? WHERE id=?", (now, incident_id))
    note_id = int(cur.lastrowid or 0)
    append(conn, Entry(who, "incident.note", target(incident_id), {"note": note_id, "text": text}))
    return note_id


def add_bookmark(
    conn: sqlite3.Connection,
    incident_id: int,
    camera_id: str,
    moment: float,
    note: str,
    who: Principal,
) -> int | bool | None:
    """A bookmark (camera, time, note) on an incident, open or closed (footage is
    reviewed after the fact too); None without such an incident."""
    if _is_open(conn, incident_id) is None:
        return None
    now = time.time()
    cur = conn.execute(
        "INSERT INTO incident_bookmarks(incident_id, camera_id, time, note, created_at, "
        "created_by) VALUES(?,?,?,?,?,?)",
        (incident_id, camera_id, moment, note, now, who.name),
    )
    conn.execute("UPDATE incidents SET updated_at=? WHERE id=?", (now, incident_id))
    bookmark_id = int(cur.lastrowid or 0)
    append(
        conn,
        Entry(
            who,
            "incident.bookmark",
            target(incident_id),
            {"bookmark": bookmark_id, "camera": camera_id, "time": moment, "note": note},
        ),
    )
    return bookmark_id


def close(
    conn: sqlite3.Connection, incident_id: int, outcome: str, who: Principal
) -> dict[str, Any] | bool | None:
    """Close an open incident with its outcome: its holds end now and are released
    (footage a requisition holds stays held by the requisition's own hold). What
    the release did, or None without such an incident, False when closed already."""
    state = _is_open(conn, incident_id)
    if not state:
        return None if state is None else False
    now = time.time()
    conn.execute(
        "UPDATE incidents SET status='closed', closed_at=?, end=?, updated_at=?, outcome=?, "
        "closed_by=? WHERE id=?",
        (now, now, now, outcome, who.name, incident_id),
    )
    ref = str(incident_id)
    end_holds(conn, HOLD_KIND, ref, now)
    released = release_holds(conn, HOLD_KIND, ref, who.name)
    append(
        conn,
        Entry(who, "incident.close", target(incident_id), {"outcome": outcome, "holds": released}),
    )
    return released


def _and_row(conn: sqlite3.Connection, func: Any, incident_id: int, *args: Any) -> Any:
    """``func``'s result and the incident as the transaction leaves it: the caller
    answers and fires its event without a second trip to the store."""
    return func(conn, incident_id, *args), get(conn, incident_id)


def _open_and_row(conn: sqlite3.Connection, *args: Any) -> Any:
    incident_id, opened, added = open_incident(conn, *args)
    return incident_id, opened, added, get(conn, incident_id) if opened else None


Row = dict[str, Any] | None


class IncidentRepository:
    """The incidents' SQL on the store's thread; each write one transaction with
    its audit entries and holds, answering its result and the incident after it."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, incident_id: int) -> dict[str, Any] | None:
        return await self.db.call(get, incident_id)

    async def by_call(self, line: str, call_id: str) -> dict[str, Any] | None:
        return await self.db.call(by_call, line, call_id)

    async def select(
        self,
        status: str | None = None,
        start: float | None = None,
        end: float | None = None,
        camera_id: str | None = None,
        limit: int = 200,
    ) -> list[dict[str, Any]]:
        return await self.db.call(select, status, start, end, camera_id, limit)

    async def stale(self, before: float) -> list[int]:
        return await self.db.call(stale, before)

    async def open(
        self,
        fields: Mapping[str, Any],
        links: Sequence[Link],
        hold_start: float,
        who: Principal,
    ) -> tuple[int, bool, list[Link], Row]:
        """``(id, opened, linked, row)``; ``opened`` False (and no row) for a call
        already opened."""
        try:
            return await self.db.transaction(_open_and_row, fields, links, hold_start, who)
        except sqlite3.IntegrityError:
            # the unique index: another writer opened the call between our look and
            # our insert (it cannot within one transaction; this is the backstop)
            found = await self.by_call(str(fields["source_line"]), str(fields["call_id"]))
            if found is None or found.get("status") != "open":
                raise
            return int(found["id"]), False, [], None

    async def update(
        self,
        incident_id: int,
        changes: Mapping[str, Any],
        links: Sequence[Link],
        who: Principal,
        call: Mapping[str, Any] | None = None,
        distances: Mapping[str, float | None] | None = None,
    ) -> tuple[list[Link] | None, Row]:
        args = (incident_id, changes, links, who, call, distances)
        return await self.db.transaction(_and_row, update, *args)

    async def link(
        self, incident_id: int, links: Sequence[Link], who: Principal
    ) -> tuple[list[Link] | bool | None, Row]:
        return await self.db.transaction(_and_row, link, incident_id, links, who)

    async def note(
        self, incident_id: int, text: str, who: Principal
    ) -> tuple[int | bool | None, Row]:
        return await self.db.transaction(_and_row, add_note, incident_id, text, who)

    async def bookmark(
        self, incident_id: int, camera_id: str, moment: float, note: str, who: Principal
    ) -> tuple[int | bool | None, Row]:
        args = (incident_id, camera_id, moment, note, who)
        return await self.db.transaction(_and_row, add_bookmark, *args)

    async def close(
        self, incident_id: int, outcome: str, who: Principal
    ) -> tuple[dict[str, Any] | bool | None, Row]:
        return await self.db.transaction(_and_row, close, incident_id, outcome, who)


__all__ = ["HOLD_KIND", "IncidentRepository", "Link", "call_target", "target"]
