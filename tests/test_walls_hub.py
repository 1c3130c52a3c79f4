"""The walls on a real hub: incidents opened and closed through the call desk
(``hub.calls.report``) move the spotlight on the bus; the state survives a
restart; the API answers by permission and scope; the ``/api/events``
WebSocket filters what each principal hears."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from walls_helpers import PLUGINS, north, site

from csuhub.api import CallReport, CallState, Location, Priority, WallChanged
from csuhub.security.permissions import system_principal
from csuhub.security.tokens import SERVICE_PREFIX, hash_secret, new_secret
from csuhub.testing import api_token, make_hub, wait_camera_state

OPERATOR = system_principal("sup")


async def ready(hub: Any) -> None:
    for camera in ("cam-a", "cam-b", "cam-c", "cam-d"):
        await wait_camera_state(hub, camera, "online")


async def call(
    hub: Any, call_id: str, priority: Priority = Priority.NORMAL, metres: float = 0.0
) -> Any:
    lat, lon = north(metres)
    return await hub.calls.report(
        CallReport(
            line="cad",
            call_id=call_id,
            caller="+33612345678",
            location=Location(lat=lat, lon=lon),
            priority=priority,
            received_at=time.time(),
        )
    )


async def scoped_token(hub: Any, name: str, role: str, scope: list[str]) -> str:
    secret = new_secret()
    await hub.store.users.add(
        SERVICE_PREFIX + name, kind="service", roles=[role], scope=scope,
        password_hash=None, now=time.time(),
    )  # fmt: skip
    await hub.store.create_token(name, role, hash_secret(secret), SERVICE_PREFIX + name)
    return secret


async def test_calls_move_the_spotlight_on_the_bus_and_a_restart_restores(tmp_path: Path) -> None:
    async with make_hub(tmp_path / "hub", site(), plugins=PLUGINS) as hub:
        await ready(hub)
        spot = hub.walls.wall("mur").screens["spot"]
        changed = hub.bus.wait_for(WallChanged, match={"screen": "spot"}, timeout=5)
        first = await call(hub, "c1", Priority.NORMAL)
        event = await changed
        assert event.cause == "incident" and spot.state.incident == first.id
        assert spot.state.shown.cameras == first.camera_ids == ("cam-a", "cam-b", "cam-c")
        # a higher priority takes the screen, an equal one waits
        urgent = await call(hub, "c2", Priority.CRITICAL, metres=500)
        await hub.bus.drain()
        assert spot.state.incident == urgent.id
        third = await call(hub, "c3", Priority.CRITICAL)
        await hub.bus.drain()
        assert spot.state.incident == urgent.id
        assert hub.walls.wall("mur").waiting == [first.id, third.id]
        # a later report of the call (answered) changes nothing on the wall
        await hub.calls.report(CallReport(line="cad", call_id="c2", state=CallState.ANSWERED))
        await hub.bus.drain()
        assert spot.state.incident == urgent.id
        await hub.walls.set_screen("mur", "s1", OPERATOR, pinned=True)
        version = hub.walls.wall("mur").version
    async with make_hub(tmp_path / "hub", site(), plugins=PLUGINS) as hub:
        wall = hub.walls.wall("mur")
        assert wall.version == version and wall.screens["s1"].state.pinned
        spot = wall.screens["spot"]
        assert spot.state.incident == urgent.id
        # the next waiting incident of highest priority (3, critical) follows
        await hub.incidents.close(urgent.id, "dealt with", OPERATOR)
        await hub.bus.drain()
        assert spot.state.incident == third.id
        await hub.incidents.close(third.id, "done", OPERATOR)
        await hub.bus.drain()
        assert spot.state.incident == first.id
        await hub.incidents.close(first.id, "done", OPERATOR)
        await hub.bus.drain()
        assert spot.state.incident is None and spot.state.shown.cameras == ("cam-d",)
        actions = [
            r.action for r in await hub.store.audit_records() if r.action.startswith("wall.")
        ]
        assert {"wall.spotlight", "wall.revert", "wall.pin"} <= set(actions)


async def test_the_bundled_layouts_drive_the_blueprint_wall(tmp_path: Path) -> None:
    """The bundled plugin's ``spotlight`` with the blueprint's options."""
    config = site(bundled=True, hold="2m", radius_m=300)
    async with make_hub(tmp_path / "hub", config, plugins=PLUGINS[1:]) as hub:
        await ready(hub)
        spot = hub.walls.wall("mur").screens["spot"]
        assert spot.problem is None
        ref = await call(hub, "b1", Priority.HIGH)
        await hub.bus.drain()
        assert spot.state.incident == ref.id
        assert {t.source.kind.value for t in spot.tiles} == {"incident"}
        await hub.incidents.close(ref.id, "done", OPERATOR)
        await hub.bus.drain()
        assert spot.state.incident == ref.id and spot.state.closed  # held 2 minutes


async def _get(http: Any, url: str, token: str) -> tuple[int, Any]:
    async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
        return resp.status, await resp.json()


async def _post(http: Any, url: str, token: str, body: Any) -> tuple[int, Any]:
    async with http.post(url, json=body, headers={"Authorization": f"Bearer {token}"}) as resp:
        return resp.status, await resp.json()


async def test_the_api_by_permission_and_scope(tmp_path: Path) -> None:
    async with make_hub(tmp_path / "hub", site(), plugins=PLUGINS, web=True) as hub:
        await ready(hub)
        base = hub.web.url + "/api/walls"
        kiosk = await scoped_token(hub, "kiosk", "wall", ["wall:mur"])
        centre = await scoped_token(hub, "centre", "supervisor", ["camera:cam-a", "camera:cam-d"])
        admin = await api_token(hub, "admin")
        operator = await api_token(hub, "operator")
        async with aiohttp.ClientSession() as http:
            status, listing = await _get(http, base, kiosk)
            assert status == 200 and [w["id"] for w in listing["walls"]] == ["mur"]
            assert (await _get(http, base + "/poste", kiosk))[0] == 404
            status, mur = await _get(http, base + "/mur", kiosk)
            assert status == 200 and mur["screens"][0]["tiles"][0]["camera"] == "cam-a"
            assert (await _post(http, base + "/mur/push", kiosk, {"camera": "cam-c"}))[0] == 403
            assert (await _post(http, base + "/mur/push", operator, {"camera": "cam-c"}))[0] == 403
            # a supervisor scoped to cam-a and cam-d: cam-b is withheld, cam-c refused
            status, mur = await _get(http, base + "/mur", centre)
            tile = mur["screens"][0]["tiles"][1]
            assert tile["camera"] is None and tile["reason"] == "out_of_scope"
            assert tile["source"]["camera"] is None
            status, body = await _post(http, base + "/mur/push", centre, {"camera": "cam-c"})
            assert status == 404 and body["field"] == "camera"
            status, body = await _post(http, base + "/mur/push", centre, {"camera": "cam-d"})
            assert status == 200 and (body["screen"], body["tile"]) == ("s1", 2)
            status, body = await _post(
                http, base + "/mur/screens/s1", admin,
                {"layout": "grid", "cameras": ["cam-down", "cam-a"], "options": {"columns": 3}},
            )  # fmt: skip
            assert status == 200
            tiles = body["screens"][0]["tiles"]
            assert len(tiles) == 6 and tiles[0]["playable"] is False
            assert tiles[0]["reason"] == "offline" and tiles[1]["playable"] is True
            for bad in ({"layout": "nope"}, {"options": {"columns": 0}}, {"pinned": "x"}, {}):
                status, body = await _post(http, base + "/mur/screens/s1", admin, bad)
                assert status == 400, bad
            assert (await _post(http, base + "/mur/screens/zz", admin, {"pinned": True}))[0] == 404
            status, _ = await _post(http, base + "/mur/screens/s1", admin, {"pinned": True})
            assert status == 200
        rows = await hub.store.call(
            lambda conn: conn.execute("SELECT action, outcome FROM audit_log").fetchall()
        )
        actions = {(r[0], r[1]) for r in rows if r[0].startswith("wall.")}
        assert ("wall.push", "ok") in actions and ("wall.set", "ok") in actions
        assert ("wall.pin", "ok") in actions and ("wall.push", "refused") in actions


async def _frames(ws: Any, until: str, limit: float = 5.0) -> list[dict[str, Any]]:
    seen = []
    async with asyncio.timeout(limit):
        while True:
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                return seen
            seen.append(json.loads(msg.data))
            if seen[-1]["event"] == until:
                return seen


async def test_the_events_websocket_filters_by_principal(tmp_path: Path) -> None:
    async with make_hub(tmp_path / "hub", site(), plugins=PLUGINS, web=True) as hub:
        await ready(hub)
        url = hub.web.url.replace("http", "ws") + "/api/events"
        tokens = {
            "kiosk": await scoped_token(hub, "kiosk", "wall", ["wall:poste"]),
            "operator": await api_token(hub, "operator"),
            "auditor": await api_token(hub, "auditor"),
        }
        async with aiohttp.ClientSession() as http:
            sockets = {
                who: await http.ws_connect(url, headers={"Authorization": f"Bearer {t}"})
                for who, t in tokens.items()
            }
            hellos = {who: json.loads((await ws.receive()).data) for who, ws in sockets.items()}
            assert hellos["kiosk"]["events"] == ["camera_state_changed", "wall.changed"]
            assert "wall.changed" not in hellos["auditor"]["events"]
            assert hellos["auditor"]["events"] == sorted(
                ["incident.opened", "incident.updated", "incident.camera_linked", "incident.closed"]
            )
            await call(hub, "w1", Priority.HIGH)  # the spotlight of "mur" changes
            await hub.walls.set_screen("poste", "one", system_principal("x"), pinned=True)
            await hub.bus.drain()
            kiosk = await _frames(sockets["kiosk"], "wall.changed")
            assert [(f["event"], f["wall"]) for f in kiosk] == [("wall.changed", "poste")]
            operator = await _frames(sockets["operator"], "incident.opened")
            opened = operator[-1]["incident"]
            assert opened["priority"] == "high" and opened["status"] == "open"
            assert [c["id"] for c in opened["cameras"]] == ["cam-a", "cam-b", "cam-c"]
            assert "+33612345678" not in json.dumps(operator)
            auditor = await _frames(sockets["auditor"], "incident.opened")
            assert {f["event"] for f in auditor} == {"incident.opened"}
            for ws in sockets.values():
                await ws.close()
            # ?events= narrows; an unknown name is refused before the upgrade
            headers = {"Authorization": f"Bearer {tokens['operator']}"}
            async with http.get(
                url.replace("ws", "http", 1) + "?events=nope", headers=headers
            ) as r:
                assert r.status == 400 and "nope" in (await r.json())["error"]
            async with http.get(url.replace("ws", "http", 1), headers=headers) as r:
                assert r.status == 400  # not a WebSocket request
            ws = await http.ws_connect(url + "?events=wall.changed", headers=headers)
            hello = json.loads((await ws.receive()).data)
            assert hello["events"] == ["wall.changed"]
            await ws.close()


async def test_a_slow_reader_gets_a_lag_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import csuhub.web.events as events

    monkeypatch.setattr(events, "QUEUE", 4)
    async with make_hub(tmp_path / "hub", site(), plugins=PLUGINS, web=True) as hub:
        token = await api_token(hub, "admin")
        url = hub.web.url.replace("http", "ws") + "/api/events?events=wall.changed"
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(url, headers={"Authorization": f"Bearer {token}"})
            await ws.receive()  # hello
            # twenty changes in one go: the bus hands them over in one drain, before
            # the connection's writer runs, so all but the last four are dropped
            for i in range(20):
                hub.bus.fire(WallChanged(wall="mur", screen="s1", version=i, cause="operator"))
            frames: list[dict[str, Any]] = []
            async with asyncio.timeout(3):
                while not frames or frames[-1].get("version") != 19:
                    frames.append(json.loads((await ws.receive()).data))
            lag = [f for f in frames if f["event"] == "lag"]
            assert lag and sum(f["dropped"] for f in lag) == 20 - (len(frames) - len(lag))
            await ws.close()
