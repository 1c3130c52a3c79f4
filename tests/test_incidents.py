"""Incidents end to end on a real hub: real SQLite, real bus, cameras driven by a
driver whose health the test sets, retention's real holds and sweeps."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol
from still_camera import StillPlugin

from csuhub.api import (
    CallLineSpec,
    CallReport,
    CallState,
    ComponentFailed,
    IncidentCameraLinked,
    IncidentClosed,
    IncidentOpened,
    IncidentUpdated,
    Location,
    Priority,
    RetentionAlert,
    hookimpl,
)
from csuhub.incidents.model import IncidentError, mask_caller
from csuhub.incidents.nearest import haversine_m
from csuhub.security.permissions import system_principal
from csuhub.testing import index_footage, make_hub, sweep_at, wait_camera_state

DAY = 86400.0
#: Lille, Grand-Place
ORIGIN = (50.6367, 3.0633)
#: id -> (metres north of the origin, district, down?)
CAMERAS = {
    "cam-a": (50.0, "Centre", False),
    "cam-b": (120.0, "Centre", False),
    "cam-c": (300.0, "Centre", False),
    "cam-down": (20.0, "Centre", True),
    "cam-far": (5000.0, "Fives", False),
    "cam-fives": (5100.0, "Fives", False),
}
OPERATOR = system_principal("sup")


def north(metres: float) -> tuple[float, float]:
    return ORIGIN[0] + metres / 111_195.0, ORIGIN[1]


def site(**incidents: Any) -> dict[str, Any]:
    cameras = []
    for camera_id, (metres, district, down) in CAMERAS.items():
        lat, lon = north(metres)
        cameras.append(
            {
                "id": camera_id,
                "driver": "still",
                "options": {"down": down},
                "location": {"lat": lat, "lon": lon, "district": district},
            }
        )
    return {
        "hub": {"timezone": "UTC"},
        "cameras": cameras,
        "incidents": {"radius": 1000, "max_cameras": 3, "hold_before": 600, **incidents},
        "retention": {"default": "14d", "interval": "1h"},
    }


async def ready(hub: Any) -> None:
    for camera_id, (_, _, down) in CAMERAS.items():
        await wait_camera_state(hub, camera_id, "offline" if down else "online")


def collect(hub: Any) -> list[Any]:
    seen: list[Any] = []
    for kind in (IncidentOpened, IncidentUpdated, IncidentCameraLinked, IncidentClosed):
        hub.bus.listen(kind, seen.append)
    return seen


@pytest.fixture
def still_hub(hub_factory: Any) -> Any:
    def make(config: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return hub_factory(
            config or site(), plugins=[("still", StillPlugin())], health_interval=60, **kwargs
        )

    return make


async def test_a_call_with_a_point_links_the_nearest_online_cameras_in_order_and_holds_them(
    still_hub: Any,
) -> None:
    async with still_hub(sweeping=False) as hub:
        await ready(hub)
        events = collect(hub)
        received = time.time()
        ref = await hub.calls.report(
            CallReport(
                line="sip",
                call_id="a84b4c76e66710",
                caller="+33 6 12 34 56 78",
                location=Location(*ORIGIN, radius_m=15.0),
                received_at=received,
            )
        )
        # within 1 km, online only (cam-down is nearest but offline), at most 3
        assert ref.camera_ids == ("cam-a", "cam-b", "cam-c")
        distances = [c.distance_m for c in ref.cameras]
        assert distances == sorted(distances)
        assert distances[0] == pytest.approx(haversine_m(*ORIGIN, *north(50)), abs=0.5)
        assert {c.reason for c in ref.cameras} == {"nearest"}
        holds = await hub.store.retention.holds(kind="incident")
        assert sorted(h.camera_id for h in holds) == ["cam-a", "cam-b", "cam-c"]
        for hold in holds:
            assert hold.ref == str(ref.id) and hold.reason == f"incident {ref.id}"
            assert hold.start == pytest.approx(received - 600)
            assert hold.end >= 1e15 and hold.level == 1  # open-ended, preservation
        await hub.bus.drain()
        assert [type(e) for e in events] == [IncidentOpened, IncidentCameraLinked]
        assert events[0].incident == ref and events[0].source == "call_line"
        assert events[0].line == "sip"
        assert [c.id for c in events[1].cameras] == ["cam-a", "cam-b", "cam-c"]
        incident = await hub.incidents.get(ref.id)
        assert incident.caller == "+33 6 12 34 56 78"
        assert incident.as_dict()["caller"] == "+33 6 \u2022\u2022 \u2022\u2022 \u2022\u2022 78"
        entries = [(r.action, r.target) for r in await hub.store.audit_records(limit=5)]
        assert entries[:3] == [
            ("incident.camera_link", f"incident:{ref.id}"),
            ("incident.open", f"incident:{ref.id}"),
            ("call.received", "call:sip/a84b4c76e66710"),
        ]


async def test_concurrent_and_retransmitted_reports_open_one_incident(still_hub: Any) -> None:
    async with still_hub() as hub:
        await ready(hub)
        opened: list[IncidentOpened] = []
        hub.bus.listen(IncidentOpened, opened.append)
        call = CallReport(line="sip", call_id="fork-1", location=Location(*ORIGIN))
        refs = await asyncio.gather(*(hub.calls.report(call) for _ in range(20)))
        assert len({r.id for r in refs}) == 1
        assert hub.incidents._locks == {}  # the per-call locks do not pile up
        before = len(await hub.store.audit_records(limit=1000))
        again = await hub.calls.report(call)  # a retransmission: nothing new
        assert again.id == refs[0].id
        assert len(await hub.store.audit_records(limit=1000)) == before
        # another line's call with the same id is another call
        other = await hub.calls.report(CallReport(line="cad", call_id="fork-1"))
        assert other.id != refs[0].id
        await hub.bus.drain()
        assert len(opened) == 2
        assert len(await hub.incidents.list()) == 2
        assert len(await hub.store.retention.holds(kind="incident")) == 3


async def test_later_reports_update_the_incident(still_hub: Any) -> None:
    async with still_hub() as hub:
        await ready(hub)
        events = collect(hub)
        ref = await hub.calls.report(CallReport(line="sip", call_id="c1", caller="0612345678"))
        assert ref.cameras == ()  # no point, no district: no camera
        ref = await hub.calls.report(
            CallReport(
                line="sip", call_id="c1", state=CallState.ANSWERED, location=Location(*ORIGIN)
            )
        )
        assert ref.camera_ids == ("cam-a", "cam-b", "cam-c")
        incident = await hub.incidents.get(ref.id)
        assert incident.call_state == "answered" and incident.caller == "0612345678"
        await hub.bus.drain()
        updated = [e for e in events if isinstance(e, IncidentUpdated)]
        assert updated[0].changes == ("call_state", "location")
        actions = [r.action for r in await hub.store.audit_records(limit=4)]
        assert actions[:3] == ["incident.camera_link", "incident.update", "call.updated"]
        await hub.calls.report(CallReport(line="sip", call_id="c1", state=CallState.ENDED))
        assert (await hub.incidents.get(ref.id)).call_state == "ended"
        assert (await hub.incidents.get(ref.id)).is_open  # an ended call is not a closed case


async def test_without_a_point_the_district_s_online_cameras_are_linked(still_hub: Any) -> None:
    async with still_hub() as hub:
        await ready(hub)
        incident = await hub.incidents.open(OPERATOR, category="fight", district="FIVES")
        assert [(c.id, c.reason, c.distance_m) for c in incident.cameras] == [
            ("cam-far", "district", None),
            ("cam-fives", "district", None),
        ]
        centre = await hub.incidents.open(OPERATOR, category="noise", district="Centre")
        assert "cam-down" not in centre.camera_ids and len(centre.camera_ids) == 3
        nowhere = await hub.incidents.open(
            OPERATOR, category="noise", location=Location(address="12 rue Nationale")
        )
        assert nowhere.cameras == () and nowhere.location.address == "12 rue Nationale"


async def test_operator_actions_and_a_closed_incident(still_hub: Any) -> None:
    async with still_hub() as hub:
        await ready(hub)
        events = collect(hub)
        incident = await hub.incidents.open(
            OPERATOR, category="theft", priority=Priority.HIGH, location=Location(*north(100))
        )
        linked = await hub.incidents.link(incident.id, "cam-far", OPERATOR)
        far = linked.cameras[-1]
        assert far.id == "cam-far" and far.reason == "operator"
        assert far.distance_m == pytest.approx(4900, rel=0.01)
        again = await hub.incidents.link(incident.id, "cam-far", OPERATOR)  # already: no-op
        assert again.camera_ids == linked.camera_ids
        with pytest.raises(IncidentError) as err:
            await hub.incidents.link(incident.id, "cam-nowhere", OPERATOR)
        assert err.value.kind == "invalid"
        await hub.incidents.note(incident.id, "suspect ran north", OPERATOR)
        moment = time.time() - 30
        marked = await hub.incidents.bookmark(incident.id, "cam-a", moment, "red scooter", OPERATOR)
        assert [(b.camera_id, b.time, b.note) for b in marked.bookmarks] == [
            ("cam-a", moment, "red scooter")
        ]
        closed = await hub.incidents.close(incident.id, "arrest", OPERATOR)
        assert closed.outcome == "arrest" and closed.closed_at is not None
        for action in (
            hub.incidents.note(incident.id, "late", OPERATOR),
            hub.incidents.link(incident.id, "cam-b", OPERATOR),
            hub.incidents.close(incident.id, "again", OPERATOR),
        ):
            with pytest.raises(IncidentError) as err:
                await action
            assert err.value.kind == "conflict"
        with pytest.raises(IncidentError) as err:
            await hub.incidents.close(999, "x", OPERATOR)
        assert err.value.kind == "not_found"
        await hub.bus.drain()
        names = [e.name for e in events]
        assert names[:2] == ["incident.opened", "incident.camera_linked"]
        assert names[-1] == "incident.closed" and events[-1].outcome == "arrest"
        assert [r.action for r in await hub.store.audit_records(limit=1)] == ["incident.close"]
        assert await hub.store.retention.holds(kind="incident") == []


async def test_closing_releases_the_hold_but_a_requisition_keeps_its_footage(
    still_hub: Any,
) -> None:
    async with still_hub(sweeping=False) as hub:
        await ready(hub)
        now = time.time()
        start = now - 2 * 3600
        await index_footage(hub, "cam-a", start, 2)  # two hours, up to now
        incident = await hub.incidents.open(
            OPERATOR, category="fight", location=Location(*north(50)), received_at=now - 1800
        )
        assert incident.camera_ids[0] == "cam-a"
        # held from 10 min before the call: 40 of the 120 one-minute segments
        held = [s for s in await hub.store.segments("cam-a") if s.hold]
        assert len(held) == 40
        assert held[0].start == pytest.approx(now - 2400, abs=60)
        await hub.requisitions.create(
            {
                "reference": "PV 2026/77",
                "service": "SLPJ Lille",
                "officer": "OPJ Martin",
                "legal_frame": "flagrant_delit",
                "cameras": ["cam-a"],
                "start": now - 1800,
                "end": now - 1200,
                "reason": "rixe",
            },
            "sup",
        )
        await hub.incidents.close(incident.id, "requisition", OPERATOR)
        held = [s for s in await hub.store.segments("cam-a") if s.hold]
        assert len(held) == 10  # the requisition's ten minutes, by its legal hold
        assert all((s.hold_reason or "").startswith("requisition ") for s in held)
        for hold in await hub.store.retention.holds(active=False, kind="incident"):
            assert hold.released_at is not None and hold.end <= time.time()
        # a sweep far in the future keeps the requisition's footage, not the rest
        report = await sweep_at(hub, now + 20 * DAY)
        assert report.segments == 110
        assert len(await hub.store.segments("cam-a")) == 10


async def test_the_retention_policy_and_the_desk_agree(still_hub: Any) -> None:
    config = site()
    config["retention"]["policies"] = [
        {"policy": "max_age"},
        {"policy": "incident_preservation"},
    ]
    async with still_hub(config, sweeping=False) as hub:
        await ready(hub)
        incident = await hub.incidents.open(OPERATOR, category="x", location=Location(*ORIGIN))
        placed = {h.id for h in await hub.store.retention.holds(kind="incident")}
        assert len(placed) == 3
        await sweep_at(hub, time.time())
        # the policy sees the incident held already: it neither adds nor releases
        assert {h.id for h in await hub.store.retention.holds(kind="incident")} == placed
        await hub.incidents.close(incident.id, "done", OPERATOR)
        await sweep_at(hub, time.time())
        assert await hub.store.retention.holds(kind="incident") == []
        # an incident whose holds went missing is held again by the policy, same ref
        other = await hub.incidents.open(OPERATOR, category="y", location=Location(*ORIGIN))
        await hub.store.retention.release("incident", str(other.id), "test")
        await sweep_at(hub, time.time())
        again = await hub.store.retention.holds(kind="incident")
        assert {h.ref for h in again} == {str(other.id)}
        assert {h.reason for h in again} == {f"incident {other.id}"}


async def test_operators_are_alerted_before_incident_footage_reaches_the_legal_cap(
    still_hub: Any,
) -> None:
    config = site()
    config["retention"]["alert_before"] = "2d"
    async with still_hub(config, sweeping=False) as hub:
        await ready(hub)
        alerts: list[RetentionAlert] = []
        hub.bus.listen(RetentionAlert, alerts.append)
        now = time.time()
        # a month-long incident: its footage from 29 days ago reaches the 30-day cap soon
        await hub.incidents.open(
            OPERATOR, category="x", location=Location(*ORIGIN), received_at=now - 29 * DAY
        )
        await sweep_at(hub, now)
        await hub.bus.drain()
        expiring = [a for a in alerts if a.kind == "expiring"]
        assert sorted(a.camera_id for a in expiring) == ["cam-a", "cam-b", "cam-c"]
        assert all("incident" in a.message for a in expiring)
        await sweep_at(hub, now + 60)  # told once
        await hub.bus.drain()
        assert len([a for a in alerts if a.kind == "expiring"]) == 3


async def test_stale_incidents_are_closed_when_auto_close_is_set(still_hub: Any) -> None:
    async with still_hub(site(auto_close="2h")) as hub:
        await ready(hub)
        assert "incidents-auto-close" in hub.supervisor.running()
        old = await hub.incidents.open(OPERATOR, category="x")
        assert await hub.incidents.close_stale(time.time() + 3600) == []
        assert await hub.incidents.close_stale(time.time() + 3 * 3600) == [old.id]
        closed = await hub.incidents.get(old.id)
        assert closed.outcome == "auto_closed" and closed.closed_by == "hub"


class Line:
    def __init__(self, hub: Any, line_id: str, options: dict[str, Any]) -> None:
        self.hub, self.id, self.options = hub, line_id, options
        self.started = self.stopped = False

    async def start(self) -> None:
        if self.options["fail"]:
            raise OSError("port in use")
        self.started = True

    async def stop(self) -> None:
        self.stopped = True


class LinePlugin:
    @hookimpl
    def register_call_lines(self, hub: Any) -> list[Any]:
        schema = vol.Schema({vol.Optional("fail", default=False): bool})
        return [CallLineSpec(name="test-line", factory=Line, config_schema=schema)]


async def test_call_lines_start_after_the_cameras_and_a_failing_one_does_not_stop_the_hub(
    hub_factory: Any,
) -> None:
    config = {
        "call_lines": [
            {"id": "desk", "type": "test-line"},
            {"id": "broken", "type": "test-line", "options": {"fail": True}},
            {"id": "off", "type": "test-line", "enabled": False},
        ]
    }
    failures: list[ComponentFailed] = []
    async with hub_factory(config, plugins=[("lines", LinePlugin())]) as hub:
        hub.bus.listen(ComponentFailed, failures.append)
        assert list(hub.call_lines) == ["desk"]
        line = hub.call_lines["desk"]
        assert line.started and line.id == "desk" and line.hub is hub
        assert hub.calls is hub.incidents
        with pytest.raises(TypeError):
            hub.call_lines["x"] = line  # read-only
        ref = await line.hub.calls.report(CallReport(line="desk", call_id="1"))
        assert ref.id == 1
    assert line.stopped and dict(hub.call_lines) == {}


def test_the_caller_is_masked_but_for_its_ends() -> None:
    assert mask_caller("+33612345678") == "+336" + "\u2022" * 6 + "78"
    assert mask_caller("17") == "\u2022\u2022"
    assert mask_caller(None) is None
    assert mask_caller("sip:alice@example.org").startswith("sip:")


async def test_an_incident_survives_a_restart_and_the_audit_verifies(
    tmp_path: Path, cli: Any, cli_env: dict[str, str]
) -> None:
    data = tmp_path / "data"
    plugins = [("still", StillPlugin())]
    async with make_hub(data, site(), plugins=plugins, health_interval=60) as hub:
        await ready(hub)
        ref = await hub.calls.report(
            CallReport(line="sip", call_id="x", location=Location(*ORIGIN))
        )
        await hub.incidents.close(ref.id, "done", OPERATOR)
    async with make_hub(data, site(), plugins=plugins, health_interval=60) as hub:
        incident = await hub.incidents.get(ref.id)
        assert incident.camera_ids == ref.camera_ids and incident.outcome == "done"
    result = cli("audit", "verify", "--data", str(data), "--json", env=cli_env)
    assert result.returncode == 0, result.stdout + result.stderr


async def test_a_camera_looking_at_the_point_comes_first_and_the_index_follows_the_register(
    still_hub: Any,
) -> None:
    config = site()
    # cam-c, 300 m north, looks south at the origin: it covers the point
    config["cameras"][2]["location"].update({"bearing": 180, "fov": 60})
    async with still_hub(config) as hub:
        await ready(hub)
        ref = await hub.calls.report(
            CallReport(line="sip", call_id="1", location=Location(*ORIGIN))
        )
        assert ref.camera_ids == ("cam-c", "cam-a", "cam-b")
        index = hub.incidents.map.index
        await hub.cameras.set_state("cam-a", "offline", "test")
        await hub.bus.drain()
        assert hub.incidents.map.index is index  # a health change moves no camera
        ref = await hub.calls.report(
            CallReport(line="sip", call_id="2", location=Location(*ORIGIN))
        )
        assert ref.camera_ids == ("cam-c", "cam-b")  # the live state filters
        await hub.cameras.set_state("cam-b", "removed", "test")
        await hub.bus.drain()
        assert hub.incidents.map.index is None  # rebuilt at its next use, without cam-b
        ref = await hub.calls.report(
            CallReport(line="sip", call_id="3", location=Location(*ORIGIN))
        )
        assert ref.camera_ids == ("cam-c",)
