"""The logbook tells a reader scoped to some cameras no more of the others than
the API owning each record does: an incident's links and bookmarks as the
incidents API shows them, a requisition holding a camera out of scope not at
all (the requisitions API answers 404), camera lines only in scope, and a
correction only with the line it corrects. A real hub, real SQLite, real API."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import pytest
from test_incidents import OPERATOR, ORIGIN, StillPlugin, ready, site

from csuhub.api import Location
from csuhub.logbook.scope import Scope
from csuhub.security.tokens import SERVICE_PREFIX, hash_secret, new_secret
from csuhub.testing import api_token


async def _scoped(hub: Any, role: str, scope: list[str]) -> str:
    secret = new_secret()
    name = f"scoped-{role}-{secret[-6:]}"
    await hub.store.users.add(
        SERVICE_PREFIX + name, kind="service", roles=[role], scope=scope, password_hash=None,
        now=time.time(),
    )  # fmt: skip
    await hub.store.create_token(name, role, hash_secret(secret), SERVICE_PREFIX + name)
    return secret


async def _get(http: aiohttp.ClientSession, url: str, token: str) -> tuple[int, Any]:
    async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
        return resp.status, await resp.json()


def _cameras_named(line: dict[str, Any]) -> set[str]:
    """Every camera id a line shows anywhere (target, parameters, sentence)."""
    text = json.dumps(line, ensure_ascii=False)
    return {c for c in ("cam-a", "cam-b", "cam-c", "cam-far") if c in text}


async def _requisition(hub: Any, reference: str, cameras: list[str]) -> int:
    now = time.time()
    made = await hub.requisitions.create(
        {
            "reference": reference,
            "service": "commissariat central",
            "officer": "OPJ Martin",
            "legal_frame": "flagrant_delit",
            "cameras": cameras,
            "start": now - 3600,
            "end": now - 60,
            "reason": f"réquisition {reference}",
        },
        OPERATOR,
    )
    return int(made["id"])


async def test_a_reader_scoped_to_one_camera_sees_only_it_in_the_logbook(
    hub_factory: Any,
) -> None:
    async with hub_factory(
        site(), plugins=[("still", StillPlugin())], health_interval=60, web=True
    ) as hub:
        await ready(hub)
        incident = await hub.incidents.open(
            OPERATOR,
            category="rixe",
            location=Location(lat=ORIGIN[0], lon=ORIGIN[1], radius_m=10),
        )
        assert [c.id for c in incident.cameras] == ["cam-a", "cam-b", "cam-c"]
        number = incident.id
        await hub.incidents.link(number, "cam-far", OPERATOR)  # a link of cam-far only
        await hub.incidents.bookmark(number, "cam-b", time.time() - 30, "fuite vers b", OPERATOR)
        await hub.incidents.bookmark(number, "cam-a", time.time() - 20, "vu sur a", OPERATOR)
        hidden_req = await _requisition(hub, "PV-B", ["cam-a", "cam-b"])
        shown_req = await _requisition(hub, "PV-A", ["cam-a"])
        await hub.requisitions.close(hidden_req, OPERATOR, "helped")
        await hub.requisitions.close(shown_req, OPERATOR, "helped")
        await hub.store.audit("sup", "mask.lift.request", "cam-b", duration=900)
        note = await hub.store.audit_trail.event(OPERATOR, "logbook.note", None, text="RAS")
        bookmark_b = next(
            e["id"]
            for e in await hub.store.audit_trail.entries(None, None, action="incident.bookmark")
            if "cam-b" in e["details"]
        )
        fix = await hub.store.audit_trail.event(
            OPERATOR, "logbook.correct", f"logbook:{bookmark_b}", text="b", corrects=bookmark_b
        )
        url = hub.web.url
        scoped = await _scoped(hub, "supervisor", ["camera:cam-a"])
        everyone = await api_token(hub, "operator")
        async with aiohttp.ClientSession() as http:
            _, full = await _get(http, url + "/api/logbook", everyone)
            status, mine = await _get(http, url + "/api/logbook", scoped)
            assert status == 200
            _, seen = await _get(http, url + f"/api/incidents/{number}", scoped)
            assert (await _get(http, url + f"/api/requisitions/{hidden_req}", scoped))[0] == 404
            assert (await _get(http, url + f"/api/requisitions/{shown_req}", scoped))[0] == 200
            async with http.get(
                url + "/api/logbook",
                params={"format": "csv"},
                headers={"Authorization": f"Bearer {scoped}"},
            ) as resp:
                csv_text = await resp.text()
    # the reader without a scope sees every camera the day named
    assert {"cam-a", "cam-b", "cam-c", "cam-far"} <= set().union(
        *(_cameras_named(line) for line in full["lines"])
    )
    # the scoped reader: cam-a only, anywhere in any line, in JSON and CSV alike
    for line in mine["lines"]:
        assert _cameras_named(line) <= {"cam-a"}, line
    for other in ("cam-b", "cam-c", "cam-far"):
        assert other not in csv_text
    by_action: dict[str, list[dict[str, Any]]] = {}
    for line in mine["lines"]:
        by_action.setdefault(line["action"], []).append(line)
    # as the incidents API shows the incident to this reader
    assert [c["id"] for c in seen["cameras"]] == ["cam-a"]
    assert [b["camera"] for b in seen["bookmarks"]] == ["cam-a"]
    (link,) = by_action["incident.camera_link"]  # the cam-far link line is left out
    assert [c["id"] for c in link["params"]["cameras"]] == ["cam-a"]
    assert link["what"].startswith(f"Incident {number} : caméra(s) liée(s) cam-a (")
    (bookmark,) = by_action["incident.bookmark"]
    assert bookmark["params"]["camera"] == "cam-a" and "vu sur a" in bookmark["what"]
    assert "fuite vers b" not in json.dumps(mine)
    # the incident itself is visible to every reader
    assert [line["target"] for line in by_action["incident.open"]] == [f"incident:{number}"]
    # requisitions: the one holding cam-b does not exist for this reader
    requisition_lines = [
        line for line in mine["lines"] if line["action"].startswith("requisition.")
    ]
    assert requisition_lines
    assert {line["target"] for line in requisition_lines} <= {None, f"requisition:{shown_req}"}
    assert "PV-B" not in json.dumps(mine) and "PV-A" in json.dumps(mine)
    assert "mask.lift.request" not in by_action
    # a correction of a hidden line is hidden with it; a note stays
    seqs = {line["seq"] for line in mine["lines"]}
    assert note in seqs and fix not in seqs and bookmark_b not in seqs
    assert fix in {line["seq"] for line in full["lines"]}


@pytest.mark.parametrize(
    ("action", "target", "params", "expected"),
    [
        ("incident.camera_link", "incident:1", {"cameras": [{"id": "b"}]}, None),
        ("incident.camera_link", "incident:1", {"cameras": ["a", "b"]}, {"cameras": ["a"]}),
        ("incident.camera_link", "incident:1", {"camera": "b"}, None),
        ("incident.bookmark", "incident:1", {"camera_id": "b", "note": "x"}, None),
        ("incident.open", "incident:1", {"cameras": [{"id": "b"}]}, {"cameras": []}),
        ("incident.note", "incident:1", {"text": "x"}, {"text": "x"}),
        ("requisition.create", None, {"cameras": ["a", "b"]}, None),
        ("requisition.create", None, {"out_of_scope": ["b"], "reference": "R"}, None),
        ("requisition.release", "requisition:7", {"past_age_segments": {"b": 2}}, None),
        ("requisition.deliver", "requisition:9", {"to": "OPJ"}, None),  # unknown: fail closed
        ("requisition.deliver", "requisition:8", {"to": "OPJ"}, {"to": "OPJ"}),
        ("mask.lift.end", "b", {"was": "approved"}, None),
        ("recording.export", "a", {}, {}),
    ],
)
async def test_scope_rules_for_each_kind_of_line(
    action: str, target: str | None, params: dict[str, Any], expected: Any
) -> None:
    async def visible(camera: str) -> bool:
        return camera == "a"

    async def requisition_cameras(req_id: int) -> list[str] | None:
        return {7: ["a"], 8: ["a"]}.get(req_id)

    scope = Scope(visible, requisition_cameras)
    assert await scope.params(action, target, params) == expected
    assert await Scope(None).params(action, target, params) == params  # no scope: all
