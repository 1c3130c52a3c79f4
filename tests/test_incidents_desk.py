"""The desk against what call lines really send: a call id reused after its
incident closed, reports replayed or overtaken, a location refined while the
incident is open. Real hub, real SQLite, the cameras of tests/test_incidents.py."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from test_incidents import OPERATOR, ORIGIN, StillPlugin, north, ready, site

from csuhub.api import CallReport, CallState, IncidentCameraLinked, Location, Priority
from csuhub.incidents.nearest import haversine_m
from csuhub.store.migrations import MIGRATIONS


@pytest.fixture
def still_hub(hub_factory: Any) -> Any:
    def make(config: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return hub_factory(
            config or site(), plugins=[("still", StillPlugin())], health_interval=60, **kwargs
        )

    return make


def facts(incident: Any) -> tuple[Any, ...]:
    return (
        incident.caller,
        incident.location,
        incident.category,
        incident.priority,
        incident.text,
        incident.camera_ids,
    )


async def actions(hub: Any, limit: int = 1000) -> list[tuple[str, dict[str, Any]]]:
    return [(r.action, r.details) for r in await hub.store.audit_records(limit=limit)]


async def test_a_closed_incident_is_never_changed_and_a_reused_call_id_opens_a_new_one(
    still_hub: Any,
) -> None:
    async with still_hub() as hub:
        await ready(hub)
        then = time.time() - 120
        first = await hub.calls.report(
            CallReport(
                line="cad",
                call_id="2026-1",
                caller="+33 6 12 34 56 78",
                location=Location(*ORIGIN),
                category="rixe",
                priority=Priority.HIGH,
                received_at=then,
            )
        )
        closed = await hub.incidents.close(first.id, "done", OPERATOR)
        before = facts(closed)
        # late reports of the closed call (its BYE, a replayed CAD update, both
        # received before the incident closed) change none of its facts
        late = await hub.calls.report(
            CallReport(
                line="cad",
                call_id="2026-1",
                state=CallState.ENDED,
                caller="+33 7 00 00 00 00",
                location=Location(*north(5000)),
                category="vol",
                priority=Priority.LOW,
                received_at=then,
            )
        )
        assert late.id == first.id
        replay = CallReport(line="cad", call_id="2026-1", category="autre", received_at=then)
        assert (await hub.calls.report(replay)).id == first.id
        after = await hub.incidents.get(first.id)
        assert facts(after) == before and not after.is_open
        assert after.call_state == "ended"  # the call's own record moves on
        assert len(await hub.incidents.list()) == 1
        # the same id rings again after the incident closed: another call
        reused = await hub.calls.report(
            CallReport(
                line="cad",
                call_id="2026-1",
                caller="+33 7 11 11 11 11",
                location=Location(*north(5000)),
                category="vol",
            )
        )
        assert reused.id != first.id and reused.status == "open"
        new = await hub.incidents.get(reused.id)
        assert new.follows == first.id and new.is_open
        assert (new.category, new.caller) == ("vol", "+33 7 11 11 11 11")
        assert new.camera_ids == ("cam-far", "cam-fives")
        assert facts(await hub.incidents.get(first.id)) == before
        entries = await actions(hub, 5)
        opened = dict(entries)["incident.open"]
        assert opened["follows"] == first.id
        assert dict(entries)["call.received"]["follows"] == first.id
        # later reports of the new call update the new incident only
        again = await hub.calls.report(
            CallReport(line="cad", call_id="2026-1", category="vol", priority=Priority.CRITICAL)
        )
        assert again.id == reused.id
        assert (await hub.incidents.get(reused.id)).priority is Priority.CRITICAL
        assert facts(await hub.incidents.get(first.id)) == before
        # the store refuses to change a closed incident's facts whoever asks
        with pytest.raises(ValueError, match="closed"):
            await hub.store.incidents.update(first.id, {"category": "x"}, [], OPERATOR)
        # a second open incident of the same call is refused by the index
        with pytest.raises(sqlite3.IntegrityError):
            await hub.store.call(_insert_open_call, "cad", "2026-1")


def _insert_open_call(conn: sqlite3.Connection, line: str, call_id: str) -> None:
    conn.execute(
        "INSERT INTO incidents(reference, title, cameras, start, opened_at, status, "
        "source_line, call_id) VALUES('x', '', '[]', 0, 0, 'open', ?, ?)",
        (line, call_id),
    )


async def test_late_or_overtaken_reports_do_not_undo_newer_facts(
    still_hub: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with still_hub() as hub:
        await ready(hub)
        t0 = time.time() - 300
        ref = await hub.calls.report(
            CallReport(line="cad", call_id="c", location=Location(*north(5000)), received_at=t0)
        )
        newer = CallReport(
            line="cad",
            call_id="c",
            state=CallState.ANSWERED,
            location=Location(*ORIGIN),
            category="rixe",
            priority=Priority.HIGH,
            text="au coin de la rue",
            received_at=t0 + 200,
        )
        await hub.calls.report(newer)
        applied = await hub.incidents.get(ref.id)
        assert applied.location == Location(*ORIGIN) and applied.category == "rixe"
        count = len(await hub.store.audit_records(limit=1000))
        # a webhook replayed after a restart: the first report, older than the last
        with caplog.at_level(logging.INFO, logger="csuhub.incidents.desk"):
            again = await hub.calls.report(
                CallReport(
                    line="cad",
                    call_id="c",
                    location=Location(*north(5000)),
                    category="call",
                    received_at=t0 + 100,
                )
            )
        assert again.id == ref.id
        kept = await hub.incidents.get(ref.id)
        assert facts(kept) == facts(applied) and kept.call_state == "answered"
        assert len(await hub.store.audit_records(limit=1000)) == count  # nothing written
        assert "location, category, priority" in caplog.text and "ignored" in caplog.text
        # a SIP report overtaken: ringing after answered never rings the call again,
        # even when it is newer
        await hub.calls.report(
            CallReport(line="cad", call_id="c", state=CallState.RINGING, received_at=t0 + 300)
        )
        assert (await hub.incidents.get(ref.id)).call_state == "answered"
        # a late BYE still ends the call (the state only moves on), and only that
        await hub.calls.report(
            CallReport(line="cad", call_id="c", state=CallState.ENDED, received_at=t0 + 50)
        )
        ended = await hub.incidents.get(ref.id)
        assert ended.call_state == "ended" and ended.category == "call"  # from t0+300's report
        await hub.calls.report(
            CallReport(line="cad", call_id="c", state=CallState.ANSWERED, received_at=t0 + 400)
        )
        final = await hub.incidents.get(ref.id)
        assert final.call_state == "ended" and final.reported_at == t0 + 400


async def test_a_refined_location_reranks_the_cameras_from_the_new_point(
    still_hub: Any,
) -> None:
    async with still_hub() as hub:
        await ready(hub)
        linked: list[IncidentCameraLinked] = []
        hub.bus.listen(IncidentCameraLinked, linked.append)
        # first placed near Fives, 5 km north
        ref = await hub.calls.report(
            CallReport(line="sip", call_id="m", location=Location(*north(4990), radius_m=50))
        )
        assert ref.camera_ids == ("cam-far", "cam-fives")
        district = (await hub.incidents.get(ref.id)).district
        # the caller's handset refines it: the Grand-Place
        moved = await hub.calls.report(
            CallReport(line="sip", call_id="m", location=Location(*ORIGIN, radius_m=10))
        )
        assert moved.camera_ids == ("cam-a", "cam-b", "cam-c", "cam-far", "cam-fives")
        reasons = {c.id: c.reason for c in moved.cameras}
        assert reasons == dict.fromkeys(moved.camera_ids, "nearest")
        # every distance from the new point, nearest first
        for camera in moved.cameras:
            metres = {"cam-a": 50, "cam-b": 120, "cam-c": 300, "cam-far": 5000, "cam-fives": 5100}
            expected = haversine_m(*ORIGIN, *north(metres[camera.id]))
            assert camera.distance_m == pytest.approx(expected, abs=0.5)
        distances = [c.distance_m for c in moved.cameras]
        assert distances == sorted(distances)
        incident = await hub.incidents.get(ref.id)
        # the nearest linked camera's district, from each point
        assert (district, incident.district) == ("Fives", "Centre")
        assert incident.camera_ids == moved.camera_ids  # as stored, not only as answered
        holds = await hub.store.retention.holds(kind="incident")
        assert sorted(h.camera_id for h in holds) == sorted(moved.camera_ids)  # none dropped
        await hub.bus.drain()
        assert [c.id for c in linked[-1].cameras] == ["cam-a", "cam-b", "cam-c"]
        # the mirror retention reads follows the order
        row = await hub.store.call(
            lambda conn: conn.execute(
                "SELECT cameras FROM incidents WHERE id=?", (ref.id,)
            ).fetchone()[0]
        )
        assert row == '["cam-a", "cam-b", "cam-c", "cam-far", "cam-fives"]'
        # an operator's link after that goes last, measured from the same point
        await hub.incidents.link(ref.id, "cam-down", OPERATOR)
        last = (await hub.incidents.get(ref.id)).cameras[-1]
        assert last.id == "cam-down" and last.reason == "operator"
        assert last.distance_m == pytest.approx(haversine_m(*ORIGIN, *north(20)), abs=0.5)


async def test_an_operator_incident_s_district_comes_from_its_nearest_camera(
    still_hub: Any,
) -> None:
    async with still_hub() as hub:
        await ready(hub)
        placed = await hub.incidents.open(OPERATOR, category="x", location=Location(*north(60)))
        assert placed.district == "Centre"
        chosen = await hub.incidents.open(
            OPERATOR, category="x", location=Location(*north(60)), district="Fives"
        )
        assert chosen.district == "Fives"  # the operator's choice stands
        lonely = await hub.incidents.open(OPERATOR, category="x", location=Location(*north(30_000)))
        assert lonely.district is None and lonely.cameras == ()


def test_migration_12_follows_11_and_the_list_stays_ordered() -> None:
    versions = [version for version, _, _ in MIGRATIONS]
    assert versions == sorted(versions) == list(range(1, len(versions) + 1))
    assert 12 in versions


async def test_migration_12_keeps_the_incidents_before_it(tmp_path: Path) -> None:
    """A database at version 11: its incident reads as before (cameras in their
    linking order, its report time its call's), and its call id may be reused
    once it is closed."""
    from csuhub.store import Store
    from csuhub.store.db import _split_sql

    path = tmp_path / "csuhub.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for version, _, sql in MIGRATIONS:
        if version <= 11:
            for statement in _split_sql(sql):
                conn.execute(statement)
    conn.execute("PRAGMA user_version=11")
    conn.execute(
        "INSERT INTO incidents(id, reference, title, cameras, start, opened_at, status, "
        "source_kind, source_line, call_id, received_at) "
        "VALUES(7, '7', 'x', '[\"cam-b\", \"cam-a\"]', 0, 10, 'open', 'call_line', 'sip', "
        "'c-1', 9)"
    )
    for camera_id, distance in (("cam-b", 5.0), ("cam-a", 50.0)):
        conn.execute(
            "INSERT INTO incident_cameras(incident_id, camera_id, distance_m, reason, "
            "linked_at, linked_by) VALUES(7, ?, ?, 'nearest', 10, 'line:sip')",
            (camera_id, distance),
        )
    conn.close()
    store = Store(path)
    await store.open()
    try:
        row = await store.incidents.get(7)
        assert [c["camera_id"] for c in row["linked"]] == ["cam-b", "cam-a"]
        assert row["reported_at"] == 9 and row["follows"] is None
        await store.incidents.close(7, "done", OPERATOR)
        fields = {
            "source_kind": "call_line",
            "source_line": "sip",
            "call_id": "c-1",
            "category": "x",
            "priority": 2,
            "text": "",
        }
        opened = await store.incidents.open({**fields, "follows": 7}, [], 0.0, OPERATOR)
        assert opened[1] is True and opened[3]["follows"] == 7
        assert (await store.incidents.by_call("sip", "c-1"))["id"] == opened[0]
    finally:
        await store.close()
