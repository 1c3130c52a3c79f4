"""An incident's linked cameras (SQL, in the caller's transaction): linking one
holds its footage, the list keeps its order (nearest first from the
incident's current point, then those linked later) and ``incidents.cameras``
mirrors it for retention's ``incident_preservation`` policy.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from csuhub.store.audited import Entry
from csuhub.store.holds import FOREVER, PRESERVE, place_holds

if TYPE_CHECKING:
    from csuhub.security.permissions import Principal

#: the hold kind an incident places (retention's ``incident_preservation`` policy
#: places and releases the same kind and ref, so the two agree)
HOLD_KIND = "incident"


@dataclass(frozen=True, slots=True)
class Link:
    """A camera to link, and why."""

    camera_id: str
    distance_m: float | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.camera_id, "distance_m": self.distance_m, "reason": self.reason}


def target(incident_id: int) -> str:
    return f"incident:{incident_id}"


def call_target(line: str, call_id: str) -> str:
    return f"call:{line}/{call_id}"


# -- writes (each in the caller's transaction) ---------------------------------------------


def link_cameras(
    conn: sqlite3.Connection,
    incident_id: int,
    links: Sequence[Link],
    actor: str,
    now: float,
) -> list[Link]:
    """Link the cameras not linked yet and hold their footage from the incident's
    start, open-ended (the incident is open: the caller checked); returns the new ones."""
    row = conn.execute("SELECT start FROM incidents WHERE id=?", (incident_id,)).fetchone()
    added: list[Link] = []
    for link in links:
        cur = conn.execute(
            "INSERT OR IGNORE INTO incident_cameras(incident_id, camera_id, distance_m, reason, "
            "linked_at, linked_by, position) VALUES(?,?,?,?,?,?, (SELECT COALESCE(MAX(position), "
            "-1) + 1 FROM incident_cameras WHERE incident_id=?))",
            (incident_id, link.camera_id, link.distance_m, link.reason, now, actor, incident_id),
        )
        if cur.rowcount:
            added.append(link)
    if added:
        place_holds(
            conn,
            [link.camera_id for link in added],
            float(row["start"]),
            FOREVER,
            level=PRESERVE,
            kind=HOLD_KIND,
            ref=str(incident_id),
            reason=f"incident {incident_id}",
            actor=actor,
        )
        mirror(conn, incident_id, now)
    return added


def mirror(conn: sqlite3.Connection, incident_id: int, now: float) -> None:
    """``incidents.cameras``, the list retention's ``incident_preservation`` reads."""
    cameras = [
        r[0]
        for r in conn.execute(
            "SELECT camera_id FROM incident_cameras WHERE incident_id=? ORDER BY position, rowid",
            (incident_id,),
        )
    ]
    conn.execute(
        "UPDATE incidents SET cameras=?, updated_at=? WHERE id=?",
        (json.dumps(cameras), now, incident_id),
    )


def rerank(
    conn: sqlite3.Connection,
    incident_id: int,
    ranked: Sequence[Link],
    distances: Mapping[str, float | None],
    now: float,
) -> None:
    """The incident moved: every linked camera's distance is from the new point
    (``distances``; None without a point), and the order is the new ranking's,
    then the other linked cameras nearest first. No link is dropped (its footage
    stays held): only its distance and its place in the list change."""
    rows = conn.execute(
        "SELECT camera_id, distance_m FROM incident_cameras WHERE incident_id=? "
        "ORDER BY position, rowid",
        (incident_id,),
    ).fetchall()
    first = [link.camera_id for link in ranked]
    known = {r[0]: distances.get(r[0], r[1]) for r in rows}
    rest = sorted(
        (c for c in known if c not in first),
        key=lambda c: (known[c] is None, known[c] or 0.0),
    )
    order = [c for c in first if c in known] + rest
    for position, camera_id in enumerate(order):
        conn.execute(
            "UPDATE incident_cameras SET distance_m=?, position=? "
            "WHERE incident_id=? AND camera_id=?",
            (known[camera_id], position, incident_id, camera_id),
        )
    mirror(conn, incident_id, now)


def linked_entry(who: Principal, incident_id: int, added: Sequence[Link]) -> Entry:
    return Entry(
        who, "incident.camera_link", target(incident_id), {"cameras": [a.as_dict() for a in added]}
    )


__all__ = [
    "HOLD_KIND",
    "Link",
    "call_target",
    "link_cameras",
    "linked_entry",
    "mirror",
    "rerank",
    "target",
]
