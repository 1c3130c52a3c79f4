"""The register of requisitions and extractions (SQL only; the workflow is in
``csuhub.retention.requisitions``)."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import TYPE_CHECKING, Any

from csuhub.store.retention import LEGAL, place_holds

if TYPE_CHECKING:
    from csuhub.store import Store

COLUMNS = (
    "id",
    "reference",
    "service",
    "officer",
    "legal_frame",
    "reason",
    "start",
    "end",
    "cameras",
    "status",
    "outcome",
    "scope",
    "created_at",
    "created_by",
    "updated_at",
    "delivered_to",
    "closed_at",
)


class DuplicateReference(Exception):
    pass


def _requisition(row: sqlite3.Row) -> dict[str, Any]:
    data = dict(row)
    data["cameras"] = json.loads(data["cameras"])
    data["scope"] = json.loads(data["scope"] or "{}")
    return data


class RequisitionStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def create(self, fields: dict[str, Any], actor: str) -> tuple[int, dict[str, Any]]:
        """Register the requisition and hold its scope in one transaction: there is no
        instant at which a registered requisition's footage is unheld."""

        def run(conn: sqlite3.Connection) -> tuple[int, dict[str, Any]]:
            now = time.time()
            try:
                cur = conn.execute(
                    "INSERT INTO requisitions(reference, service, officer, legal_frame, "
                    "reason, start, end, cameras, status, created_at, created_by, "
                    "updated_at) VALUES(?,?,?,?,?,?,?,?,'requested',?,?,?)",
                    (
                        fields["reference"],
                        fields["service"],
                        fields["officer"],
                        fields["legal_frame"],
                        fields["reason"],
                        fields["start"],
                        fields["end"],
                        json.dumps(fields["cameras"]),
                        now,
                        actor,
                        now,
                    ),
                )
            except sqlite3.IntegrityError:
                raise DuplicateReference(fields["reference"]) from None
            req_id = int(cur.lastrowid or 0)
            held = place_holds(
                conn,
                fields["cameras"],
                fields["start"],
                fields["end"],
                level=LEGAL,
                kind="requisition",
                ref=str(req_id),
                reason=f"requisition {fields['reference']}",
                actor=actor,
            )
            conn.execute(
                "UPDATE requisitions SET status='held', updated_at=? WHERE id=?", (now, req_id)
            )
            return req_id, held

        return await self.store.transaction(run)

    async def set_scope(self, req_id: int, scope: dict[str, Any]) -> None:
        def run() -> None:
            self.store.conn.execute(
                "UPDATE requisitions SET scope=? WHERE id=?", (json.dumps(scope), req_id)
            )

        await self.store._run(run)

    async def get(self, req_id: int) -> dict[str, Any] | None:
        def run() -> dict[str, Any] | None:
            row = self.store.conn.execute(
                "SELECT * FROM requisitions WHERE id=?", (req_id,)
            ).fetchone()
            return None if row is None else _requisition(row)

        return await self.store._run(run)

    async def by_reference(self, reference: str) -> dict[str, Any] | None:
        def run() -> dict[str, Any] | None:
            row = self.store.conn.execute(
                "SELECT * FROM requisitions WHERE reference=?", (reference,)
            ).fetchone()
            return None if row is None else _requisition(row)

        return await self.store._run(run)

    async def list(self, status: str | None = None) -> list[dict[str, Any]]:
        def run() -> list[dict[str, Any]]:
            if status is None:
                rows = self.store.conn.execute("SELECT * FROM requisitions ORDER BY id")
            else:
                rows = self.store.conn.execute(
                    "SELECT * FROM requisitions WHERE status=? ORDER BY id", (status,)
                )
            return [_requisition(r) for r in rows]

        return await self.store._run(run)

    async def transition(
        self, req_id: int, allowed_from: tuple[str, ...], status: str, **fields: Any
    ) -> bool:
        """Move to ``status`` only from one of ``allowed_from`` (checked in SQL, so two
        clients cannot both close the same requisition)."""
        sets = ", ".join(f"{key}=?" for key in fields)
        marks = ",".join("?" * len(allowed_from))

        def run() -> bool:
            cur = self.store.conn.execute(
                f"UPDATE requisitions SET status=?, updated_at=?{', ' + sets if sets else ''} "
                f"WHERE id=? AND status IN ({marks})",
                (status, time.time(), *fields.values(), req_id, *allowed_from),
            )
            return cur.rowcount > 0

        for key in fields:
            if key not in COLUMNS:
                raise ValueError(f"unknown requisition column {key!r}")
        return await self.store._run(run)

    async def add_extraction(self, **fields: Any) -> int:
        def run() -> int:
            cur = self.store.conn.execute(
                "INSERT INTO extractions(requisition_id, camera_id, start, end, seconds, file, "
                "sha256, size, created_at, created_by) VALUES(:requisition_id, :camera_id, "
                ":start, :end, :seconds, :file, :sha256, :size, :created_at, :created_by)",
                {"created_at": time.time(), **fields},
            )
            return int(cur.lastrowid or 0)

        return await self.store._run(run)

    async def extractions(self, req_id: int | None = None) -> list[dict[str, Any]]:
        def run() -> list[dict[str, Any]]:
            if req_id is None:
                rows = self.store.conn.execute("SELECT * FROM extractions ORDER BY id")
            else:
                rows = self.store.conn.execute(
                    "SELECT * FROM extractions WHERE requisition_id=? ORDER BY id", (req_id,)
                )
            return [dict(r) for r in rows]

        return await self.store._run(run)

    async def coverage(
        self, camera_id: str, start: float, end: float
    ) -> list[tuple[float, float, bool]]:
        """(start, end, still there) for each indexed segment overlapping the range;
        a segment a sweep has marked is as good as destroyed."""

        def run() -> list[tuple[float, float, bool]]:
            return [
                (r[0], r[1], r[2] == "ok" and r[3] is None)
                for r in self.store.conn.execute(
                    "SELECT start, end, status, sweep_id FROM segments WHERE camera_id=? "
                    "AND end > ? AND start < ? ORDER BY start",
                    (camera_id, start, end),
                )
            ]

        return await self.store._run(run)

    async def stats(self) -> dict[str, Any]:
        """Aggregates for the ethics committee: counts and volumes, no footage."""

        def run() -> dict[str, Any]:
            conn = self.store.conn
            months: dict[str, dict[str, Any]] = {}
            for r in conn.execute(
                "SELECT strftime('%Y-%m', created_at, 'unixepoch') AS month, legal_frame, "
                "status, outcome, COUNT(*) FROM requisitions GROUP BY 1, 2, 3, 4"
            ):
                entry = months.setdefault(
                    r[0],
                    {
                        "requisitions": 0,
                        "by_frame": {},
                        "closed": 0,
                        "outcomes": {"helped": 0, "not_helped": 0, "unknown": 0},
                        "exports": 0,
                        "exported_seconds": 0.0,
                    },
                )
                entry["requisitions"] += r[4]
                entry["by_frame"][r[1]] = entry["by_frame"].get(r[1], 0) + r[4]
                if r[2] == "closed":
                    entry["closed"] += r[4]
                    entry["outcomes"][r[3] or "unknown"] += r[4]
            for r in conn.execute(
                "SELECT strftime('%Y-%m', created_at, 'unixepoch'), COUNT(*), SUM(seconds) "
                "FROM extractions GROUP BY 1"
            ):
                if r[0] in months:
                    months[r[0]]["exports"] = r[1]
                    months[r[0]]["exported_seconds"] = r[2] or 0.0
            held = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0), COALESCE(SUM(duration), 0) "
                "FROM segments WHERE hold = 2"
            ).fetchone()
            total = sum(m["requisitions"] for m in months.values())
            closed = sum(m["closed"] for m in months.values())
            outcomes = {
                key: sum(m["outcomes"][key] for m in months.values())
                for key in ("helped", "not_helped", "unknown")
            }
            return {
                "months": dict(sorted(months.items())),
                "total": {
                    "requisitions": total,
                    "closed": closed,
                    "open": total - closed,
                    "outcomes": outcomes,
                    "helped_rate": (outcomes["helped"] / closed) if closed else None,
                    "exports": sum(m["exports"] for m in months.values()),
                },
                "held": {"segments": held[0], "bytes": held[1], "seconds": held[2]},
            }

        return await self.store._run(run)
