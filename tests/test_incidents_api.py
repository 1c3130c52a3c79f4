"""The incidents API on a real hub served on 127.0.0.1: permissions, the caller's
masking, camera scope, the JSON shape, refusals and their audit."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import aiohttp
import pytest
from test_incidents import OPERATOR, ORIGIN, StillPlugin, ready, site

from csuhub.api import CallReport, Location
from csuhub.security.tokens import SERVICE_PREFIX, hash_secret, new_secret
from csuhub.testing import api_token


async def scoped_token(hub: Any, role: str, scope: list[str]) -> str:
    secret = new_secret()
    name = f"scoped-{role}-{secret[-6:]}"
    await hub.store.users.add(
        SERVICE_PREFIX + name, kind="service", roles=[role], scope=scope, password_hash=None,
        now=time.time(),
    )  # fmt: skip
    await hub.store.create_token(name, role, hash_secret(secret), SERVICE_PREFIX + name)
    return secret


@pytest.fixture
def served(hub_factory: Any) -> Any:
    """A hub serving the API, with the cameras of ``test_incidents``."""
    return lambda: hub_factory(
        site(), plugins=[("still", StillPlugin())], health_interval=60, web=True
    )


class Api:
    def __init__(self, http: aiohttp.ClientSession, url: str, token: str) -> None:
        self.http, self.url, self.headers = http, url, {"Authorization": f"Bearer {token}"}

    async def get(self, path: str, **params: str) -> tuple[int, Any]:
        async with self.http.get(self.url + path, headers=self.headers, params=params) as resp:
            return resp.status, await resp.json()

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        async with self.http.post(self.url + path, headers=self.headers, json=body) as resp:
            return resp.status, await resp.json()


async def test_operators_open_annotate_and_close_incidents_over_the_api(served: Any) -> None:
    async with served() as hub:
        await ready(hub)
        url = hub.web.url
        async with aiohttp.ClientSession() as http:
            operator = Api(http, url, await api_token(hub, "operator", name="op"))
            supervisor = Api(http, url, await api_token(hub, "supervisor", name="sup"))
            auditor = Api(http, url, await api_token(hub, "auditor", name="ethics"))
            wall = Api(http, url, await api_token(hub, "wall", name="kiosk"))
            status, made = await operator.post(
                "/api/incidents",
                {
                    "category": "fight",
                    "priority": "high",
                    "location": {"lat": ORIGIN[0], "lon": ORIGIN[1], "radius_m": 10},
                    "caller": "+33 6 12 34 56 78",
                    "text": "two people fighting\nnear the fountain",
                },
            )
            assert status == 201, made
            assert made["source"] == {"kind": "operator", "line": None, "call_id": None}
            assert made["status"] == "open" and made["priority"] == "high"
            assert [c["id"] for c in made["cameras"]] == ["cam-a", "cam-b", "cam-c"]
            assert made["cameras"][0]["reason"] == "nearest"
            assert made["caller"] == "+33 6 \u2022\u2022 \u2022\u2022 \u2022\u2022 78"
            path = f"/api/incidents/{made['id']}"
            assert (await supervisor.get(path))[1]["caller"] == "+33 6 12 34 56 78"
            assert (await auditor.get(path))[1]["caller"].endswith("78")
            assert (await wall.get(path))[0] == 403
            assert (await auditor.post(path + "/notes", {"text": "x"}))[0] == 403
            status, noted = await operator.post(path + "/notes", {"text": "  police on site "})
            assert status == 200 and noted["notes"][0]["text"] == "police on site"
            assert noted["notes"][0]["by"] == "op"
            status, linked = await operator.post(path + "/cameras", {"camera": "cam-far"})
            assert status == 200 and linked["cameras"][-1]["reason"] == "operator"
            status, marked = await operator.post(
                path + "/bookmarks",
                {"camera": "cam-a", "time": "2026-11-25T14:00:05Z", "note": "red scooter"},
            )
            assert status == 200, marked
            moment = dt.datetime(2026, 11, 25, 14, 0, 5, tzinfo=dt.UTC).timestamp()
            assert marked["bookmarks"][0]["time"] == moment
            status, closed = await operator.post(path + "/close", {"outcome": "arrest"})
            assert status == 200 and closed["status"] == "closed"
            assert closed["outcome"] == "arrest"
            status, again = await operator.post(path + "/close", {"outcome": "again"})
            assert status == 409, again
            # refusals: the field is named, and the attempt is audited
            status, bad = await operator.post("/api/incidents", {"category": "x", "priority": "p1"})
            assert status == 400 and bad["field"] == "priority"
            status, bad = await operator.post(path + "/cameras", {"camera": "cam-nowhere"})
            assert status == 400 and bad["field"] == "camera"
            assert (await operator.post("/api/incidents/999/notes", {"text": "x"}))[0] == 404
            assert (await operator.get("/api/incidents/999"))[0] == 404
        rows = await hub.store.call(
            lambda conn: [
                tuple(r) for r in conn.execute("SELECT action, outcome, actor FROM audit_log")
            ]
        )
        refused = {action for action, outcome, _ in rows if outcome == "refused"}
        assert {"incident.close", "incident.open", "incident.camera_link"} <= refused
        done = [action for action, outcome, actor in rows if outcome == "ok" and actor == "op"]
        for action in ("incident.open", "incident.note", "incident.camera_link"):
            assert action in done
        assert "incident.bookmark" in done and "incident.close" in done


async def test_the_list_filters_and_the_scope_hides_cameras_not_incidents(served: Any) -> None:
    async with served() as hub:
        await ready(hub)
        centre = await hub.calls.report(
            CallReport(line="sip", call_id="1", location=Location(*ORIGIN))
        )
        fives = await hub.incidents.open(OPERATOR, category="theft", district="Fives")
        await hub.incidents.close(fives.id, "false alarm", OPERATOR)
        async with aiohttp.ClientSession() as http:
            admin = Api(http, hub.web.url, await api_token(hub, "admin", name="root"))
            status, listed = await admin.get("/api/incidents")
            assert status == 200
            assert [i["id"] for i in listed["incidents"]] == [fives.id, centre.id]
            assert listed["incidents"][1]["source"]["line"] == "sip"
            _, open_only = await admin.get("/api/incidents", status="open")
            assert [i["id"] for i in open_only["incidents"]] == [centre.id]
            _, by_camera = await admin.get("/api/incidents", camera="cam-fives")
            assert [i["id"] for i in by_camera["incidents"]] == [fives.id]
            _, later = await admin.get("/api/incidents", **{"from": str(int(time.time()) + 60)})
            assert later["incidents"] == []
            for bad in ({"status": "pending"}, {"camera": "CAM A"}, {"limit": "0"}, {"x": "1"}):
                status, answer = await admin.get("/api/incidents", **bad)
                assert status == 400, (bad, answer)
            # an operator of Fives sees both incidents, and only the Fives cameras
            token = await scoped_token(hub, "operator", ["district:fives"])
            fives_op = Api(http, hub.web.url, token)
            _, seen = await fives_op.get("/api/incidents")
            by_id = {i["id"]: i for i in seen["incidents"]}
            assert by_id[centre.id]["cameras"] == []
            assert [c["id"] for c in by_id[fives.id]["cameras"]] == ["cam-far", "cam-fives"]
            _, hidden = await fives_op.get("/api/incidents", camera="cam-a")
            assert hidden["incidents"] == []
            status, refused = await fives_op.post(
                f"/api/incidents/{centre.id}/cameras", {"camera": "cam-a"}
            )
            assert status == 404 and refused["field"] == "camera"
            status, _ = await fives_op.post(
                f"/api/incidents/{centre.id}/bookmarks", {"camera": "cam-a", "time": 1e9}
            )
            assert status == 404
