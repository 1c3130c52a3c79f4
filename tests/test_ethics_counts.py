"""One requisition step, one audited story, one count in the ethics figures
(review of issue 12, M5): the API writes no entry of its own for a step the
workflow audits, no ``started`` entry is left without its ending, and an
export is counted once (a failed one once, as failed), however many entries
its cameras add. The classes and the figures name only actions the hub
writes (Q2)."""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiohttp

from csuhub.audit.actions import ACTIONS, PREFIXES
from csuhub.audit.ethics import EXPORT_ACTIONS, PLAYBACK_ACTIONS, exports
from csuhub.hub import Hub
from csuhub.security.permissions import PERMISSIONS
from csuhub.store import Store
from csuhub.store.audit import append_event
from csuhub.testing import api_token, index_footage, make_hub

NOW = time.time() // 60 * 60
T0 = 1_764_000_000.0


def unconcluded(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``started`` entries no later entry concludes (``ref``)."""
    ended = {e["ref"] for e in entries if e["ref"] is not None}
    return [e for e in entries if e["outcome"] == "started" and e["id"] not in ended]


async def _post(hub: Hub, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    assert hub.web is not None
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            hub.web.url + path, json=body, headers={"Authorization": f"Bearer {token}"}
        ) as response,
    ):
        return response.status, await response.json()


async def test_each_requisition_step_over_the_api_is_one_story(tmp_path: Path) -> None:
    async with make_hub(tmp_path / "data", web=True) as hub:
        await hub.store.upsert_camera("cam-a", name="A", driver="x", origin="adopted")
        await index_footage(hub, "cam-a", NOW - 7200, 0.1)  # not video: the export fails
        token = await api_token(hub, "requisition_officer", name="officer")
        body = {
            "reference": "PV-1",
            "service": "SR",
            "officer": "OPJ Roy",
            "legal_frame": "flagrant_delit",
            "cameras": ["cam-a"],
            "from": NOW - 7200,
            "to": NOW - 6900,
            "reason": "rixe",
        }
        status, req = await _post(hub, "/api/requisitions", token, body)
        assert status == 201
        rid = req["id"]
        status, _ = await _post(hub, f"/api/requisitions/{rid}/export", token, {})
        assert status == 409  # nothing could be exported
        status, _ = await _post(hub, f"/api/requisitions/{rid}/deliver", token, {"to": "OPJ"})
        assert status == 409  # not exported
        status, _ = await _post(hub, f"/api/requisitions/{rid}/close", token, {"outcome": "x"})
        assert status == 409
        status, _ = await _post(
            hub, f"/api/requisitions/{rid}/close", token, {"outcome": "unknown"}
        )
        assert status == 200
        status, _ = await _post(hub, "/api/requisitions", token, body)
        assert status == 409  # the reference is taken
        entries = await hub.store.audit_trail.entries()
        steps = [
            (e["action"], e["outcome"], e["ref"] is not None)
            for e in entries
            if e["action"].startswith("requisition.")
        ]
        assert steps == [
            ("requisition.create", "ok", False),
            ("requisition.export", "started", False),
            ("requisition.export", "failed", True),
            ("requisition.deliver", "refused", False),
            ("requisition.close", "refused", False),
            ("requisition.close", "ok", False),
            ("requisition.release", "ok", False),
            ("requisition.create", "refused", False),
        ]
        assert unconcluded(entries) == []
        started, ended = (e for e in entries if e["action"] == "requisition.export")
        assert ended["ref"] == started["id"] and started["reason"] == "rixe"
        assert all(e["actor"] == "officer" for e in entries if e["action"].startswith("req"))
        figures = await hub.store.call(exports, NOW - 86400, NOW + 86400)
        assert figures == {"total": 0, "by_reason": {}, "not_done": {"failed": 1}}


def _seed(conn: sqlite3.Connection) -> None:
    """A requisition export over two cameras (each camera's own story), a failed
    one, a refused one, and a plain export."""
    conn.execute("BEGIN IMMEDIATE")
    requisition = {"requisition": {"id": 1, "reference": "PV-1"}}
    ts = iter(range(1, 100))

    def add(action: str, target: str, **kw: Any) -> int:
        return append_event(conn, "u", action, target, ts=T0 + next(ts), **kw)

    begun = add("requisition.export", "requisition:1", reason="rixe", outcome="started")
    for camera in ("cam-a", "cam-b"):
        part = add(
            "recording.export",
            camera,
            reason="requisition PV-1: rixe",
            outcome="started",
            params=requisition,
        )
        add("recording.export", camera, ref=part)
    add("requisition.export", "requisition:1", ref=begun)
    # a second export of it fails on its only camera
    begun = add("requisition.export", "requisition:1", reason="rixe", outcome="started")
    part = add("recording.export", "cam-a", outcome="started", params=requisition)
    add("recording.export", "cam-a", outcome="failed", ref=part)
    add("requisition.export", "requisition:1", outcome="failed", ref=begun)
    add("requisition.export", "requisition:2", outcome="refused")
    add("recording.export", "cam-c", reason="PV-9", params={"requested": [0, 60]})
    conn.execute("COMMIT")


async def test_an_export_is_counted_once_whatever_its_cameras_write(tmp_path: Path) -> None:
    store = Store(tmp_path / "csuhub.db")
    await store.open()
    try:
        await store.call(_seed)
        got = await store.call(exports, T0, T0 + 3600)
    finally:
        await store.close()
    assert got == {
        "total": 2,
        "by_reason": {"rixe": 1, "PV-9": 1},
        "not_done": {"failed": 1, "refused": 1},
    }


def _written_names() -> set[str]:
    """The dotted names quoted in the hub's code, but for permissions (``playback.view``
    is what a route needs, not what the audit records) and the tables under test."""
    root = Path(__file__).resolve().parent.parent / "csuhub"
    tables = {root / "audit" / "actions.py", root / "audit" / "ethics.py"}
    found: set[str] = set()
    for path in root.rglob("*.py"):
        if path not in tables:
            found |= set(re.findall(r"\"([a-z_]+(?:\.[a-z_]+)*)\"", path.read_text("utf-8")))
    return found - set(PERMISSIONS)


def test_the_classes_and_figures_name_only_actions_the_hub_writes() -> None:
    written = _written_names()
    named = [*ACTIONS, *EXPORT_ACTIONS, *PLAYBACK_ACTIONS]
    assert [name for name in named if name not in written] == []
    dead = [p for p, _ in PREFIXES if not any(name.startswith(p) for name in written)]
    assert dead == []
