"""Requisitions and the retention registers within the principal's camera scope
(review of issue 12, C1 and M9), and the requisitions list's strict ``?status=``
(L7): a district's requisition officer neither registers, reads, exports,
downloads, delivers nor closes a requisition over another district's camera,
nor sees it, its holds or its destructions in any list."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from csuhub.hub import Hub
from csuhub.requisitions import STATUSES
from csuhub.security.accounts import Accounts
from csuhub.security.permissions import system_principal
from csuhub.security.tokens import hash_secret, new_secret
from csuhub.testing import index_footage, make_hub
from csuhub.web.retention import parse_status

NOW = time.time() // 60 * 60
PASSWORD = "a long enough password for tests"


@dataclass
class Site:
    hub: Hub
    http: aiohttp.ClientSession
    north: dict[str, str]  # nora: requisition officer, district north only
    everyone: dict[str, str]  # olga: requisition officer, every camera

    async def call(
        self, method: str, path: str, who: dict[str, str], body: Any = None
    ) -> tuple[int, Any]:
        assert self.hub.web is not None
        async with self.http.request(
            method, self.hub.web.url + path, headers=who, json=body
        ) as response:
            text = await response.text()
            if response.content_type == "application/json":
                return response.status, json.loads(text)
            return response.status, text


async def _token(hub: Hub, user: str, role: str) -> dict[str, str]:
    secret = new_secret()
    await hub.store.tokens.create(f"{user}-t", role, hash_secret(secret), user, None)
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with make_hub(tmp_path / "data", web=True) as hub:
        for camera, district in (("north-1", "north"), ("south-1", "south")):
            await hub.store.upsert_camera(
                camera, name=camera, driver="x", origin="adopted", location={"district": district}
            )
            await index_footage(hub, camera, NOW - 7200, 0.1)
        accounts = Accounts(hub.store)
        cli = system_principal("cli")
        for user, scope in (("nora", ["district:north"]), ("olga", ["*"])):
            await accounts.add(
                cli, user, roles=["requisition_officer"], scope=scope, password=PASSWORD
            )
        async with aiohttp.ClientSession() as http:
            yield Site(
                hub,
                http,
                await _token(hub, "nora", "requisition_officer"),
                await _token(hub, "olga", "requisition_officer"),
            )


def _body(reference: str, cameras: list[str]) -> dict[str, Any]:
    return {
        "reference": reference,
        "service": "SR Lille",
        "officer": "OPJ Roy",
        "legal_frame": "flagrant_delit",
        "cameras": cameras,
        "from": NOW - 7200,
        "to": NOW - 6900,
        "reason": "rixe",
    }


async def test_a_camera_outside_the_scope_cannot_be_requisitioned(site: Site) -> None:
    status, answer = await site.call(
        "POST", "/api/requisitions", site.north, _body("PV-S", ["north-1", "south-1"])
    )
    unknown_status, unknown = await site.call(
        "POST", "/api/requisitions", site.north, _body("PV-X", ["north-1", "nowhere-9"])
    )
    # as for a camera that does not exist: the answer does not tell them apart
    assert (status, unknown_status) == (404, 404)
    assert answer["error"] == "unknown camera(s): south-1"
    assert unknown["error"] == "unknown camera(s): nowhere-9"
    assert await site.hub.store.requisitions.list() == []
    assert not any(s.hold for s in await site.hub.store.segments("south-1"))
    # audited as refused, once, with what the caller was not told
    entries = await site.hub.store.audit_trail.entries(action="requisition.create")
    assert [(e["actor"], e["outcome"]) for e in entries] == [("nora", "refused")] * 2
    details = json.loads(entries[0]["details"])
    assert details["out_of_scope"] == ["south-1"] and details["reference"] == "PV-S"
    status, made = await site.call(
        "POST", "/api/requisitions", site.north, _body("PV-N", ["north-1"])
    )
    assert status == 201 and made["cameras"] == ["north-1"]


async def test_a_requisition_over_another_district_does_not_exist_for_the_officer(
    site: Site,
) -> None:
    status, south = await site.call(
        "POST", "/api/requisitions", site.everyone, _body("PV-S", ["north-1", "south-1"])
    )
    assert status == 201
    status, north = await site.call(
        "POST", "/api/requisitions", site.everyone, _body("PV-N", ["north-1"])
    )
    assert status == 201
    rid = south["id"]
    folder = site.hub.requisitions.export_dir(rid)
    folder.mkdir(parents=True)
    (folder / "receipt.html").write_text("<p>receipt</p>")
    before = len(await site.hub.store.audit_trail.entries())
    for method, path, body in (
        ("GET", f"/api/requisitions/{rid}", None),
        ("POST", f"/api/requisitions/{rid}/export", None),
        ("GET", f"/api/requisitions/{rid}/files/receipt.html", None),
        ("POST", f"/api/requisitions/{rid}/deliver", {"to": "OPJ Roy"}),
        ("POST", f"/api/requisitions/{rid}/close", {"outcome": "helped"}),
    ):
        status, answer = await site.call(method, path, site.north, body)
        assert status == 404, (path, answer)
        assert answer["error"] == f"no requisition {rid}"
    # the same answer as for an id that does not exist
    status, answer = await site.call("GET", "/api/requisitions/999", site.north)
    assert (status, answer["error"]) == (404, "no requisition 999")
    assert (await site.hub.store.requisitions.get(rid))["status"] == "held"
    # each audited attempt is one refused entry, and nothing else happened
    after = (await site.hub.store.audit_trail.entries())[before:]
    assert [(e["action"], e["outcome"], e["actor"]) for e in after] == [
        ("requisition.export", "refused", "nora"),
        ("requisition.download", "refused", "nora"),
        ("requisition.deliver", "refused", "nora"),
        ("requisition.close", "refused", "nora"),
    ]
    # the lists: only requisitions whose cameras are all in scope
    status, listed = await site.call("GET", "/api/requisitions", site.north)
    assert [r["reference"] for r in listed["requisitions"]] == ["PV-N"]
    status, text = await site.call("GET", "/api/requisitions?format=csv", site.north)
    assert status == 200
    assert [row["reference"] for row in csv.DictReader(io.StringIO(text))] == ["PV-N"]
    status, listed = await site.call("GET", "/api/requisitions?status=held", site.everyone)
    assert sorted(r["reference"] for r in listed["requisitions"]) == ["PV-N", "PV-S"]
    status, answer = await site.call("GET", f"/api/requisitions/{north['id']}", site.north)
    assert status == 200 and answer["reference"] == "PV-N"


@pytest.mark.parametrize("status", ["nonsense", "", "HELD", "held "])
async def test_an_unknown_status_is_refused_not_an_empty_list(site: Site, status: str) -> None:
    got, answer = await site.call("GET", f"/api/requisitions?status={status}", site.everyone)
    assert got == 400 and "status" in answer["error"]


def _register(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    for camera in ("north-1", "south-1"):
        conn.execute(
            "INSERT INTO destructions(camera_id, day, policy, segments, bytes, seconds,"
            " footage_start, footage_end, first_destroyed_at, last_destroyed_at)"
            " VALUES(?, '2026-01-01', 'max_age', 1, 1, 60, 0, 60, 1, 1)",
            (camera,),
        )
        conn.execute(
            "INSERT INTO retention_kept(sweep_id, camera_id, reason, failure, segments,"
            " footage_start, footage_end, kept_at) VALUES(1, ?, 'vetoed', 0, 1, 0, 60, 1)",
            (camera,),
        )
    conn.execute("COMMIT")


async def test_the_retention_registers_and_status_list_only_cameras_in_scope(
    site: Site,
) -> None:
    await site.hub.store.call(_register)
    status, _ = await site.call(
        "POST", "/api/requisitions", site.everyone, _body("PV-S", ["south-1"])
    )
    assert status == 201  # a hold on south-1
    for path, key in (
        ("/api/register/destructions", "destructions"),
        ("/api/register/kept", "kept"),
    ):
        _, mine = await site.call("GET", path, site.north)
        assert [r["camera_id"] for r in mine[key]] == ["north-1"], path
        _, every = await site.call("GET", path, site.everyone)
        assert [r["camera_id"] for r in every[key]] == ["north-1", "south-1"], path
        status, answer = await site.call("GET", f"{path}?camera=south-1", site.north)
        assert status == 404 and "south-1" in answer["error"], path
        status, answer = await site.call("GET", f"{path}?camera=north-1", site.north)
        assert status == 200 and [r["camera_id"] for r in answer[key]] == ["north-1"]
    status, text = await site.call("GET", "/api/register/destructions?format=csv", site.north)
    assert status == 200 and "north-1" in text and "south-1" not in text
    _, mine = await site.call("GET", "/api/retention/status", site.north)
    assert [c["camera_id"] for c in mine["cameras"]] == ["north-1"]
    assert mine["holds"] == []
    _, every = await site.call("GET", "/api/retention/status", site.everyone)
    assert [c["camera_id"] for c in every["cameras"]] == ["north-1", "south-1"]
    assert [h["camera_id"] for h in every["holds"]] == ["south-1"]


@given(st.text(max_size=20) | st.sampled_from(STATUSES))
def test_the_status_filter_takes_exactly_a_status(value: str) -> None:
    if value in STATUSES:
        assert parse_status(value) == value
    else:
        with pytest.raises(web.HTTPBadRequest):
            parse_status(value)
    assert parse_status(None) is None
