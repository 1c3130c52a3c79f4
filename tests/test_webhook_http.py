"""The webhook call line end to end: a real hub serving on 127.0.0.1, its real
desk, SQLite and audit; requests signed as docs/webhook.md says a CAD signs
them, posted over a real socket.

Covers the issue's list (a valid request, a bad signature, a replay, a stale
timestamp, an oversized body, a duplicate external id) and the route's own
duties: 404 for a line that is not one, 415, refusals audited once per source
and minute without the signature, and the OpenAPI description.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import voluptuous as vol
from csuhub_webhook.signing import signature
from still_camera import StillPlugin as StillCameras

from csuhub.api import CallLineSpec, hookimpl
from csuhub.testing import api_token, wait_camera_state

SECRET = "exemple-de-secret-partage-du-cad"
#: Lille, Grand-Place
ORIGIN = (50.6367, 3.0633)
CAMERAS = {"cam-a": 50.0, "cam-b": 120.0, "cam-far": 5000.0}


class PhoneLine:
    """A call line that takes no HTTP calls (like the SIP leg)."""

    def __init__(self, hub: Any, line_id: str, options: dict[str, Any]) -> None:
        pass

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


class StillPlugin(StillCameras):
    """The still cameras, and a call line of type ``phone``."""

    @hookimpl
    def register_call_lines(self, hub: Any) -> list[Any]:
        return [CallLineSpec(name="phone", factory=PhoneLine, config_schema=vol.Schema({}))]


def north(metres: float) -> tuple[float, float]:
    return ORIGIN[0] + metres / 111_195.0, ORIGIN[1]


SITE = {
    "hub": {"timezone": "UTC"},
    "cameras": [
        {"id": cid, "driver": "still", "location": dict(zip(("lat", "lon"), north(m), strict=True))}
        for cid, m in CAMERAS.items()
    ],
    "incidents": {"radius": 1000, "max_cameras": 3},
    "call_lines": [
        {"id": "cad", "type": "webhook", "options": {"secret": SECRET, "max_body": "4KiB"}},
        {"id": "phone", "type": "phone"},
    ],
}


@pytest.fixture
async def hub(hub_factory: Any) -> AsyncIterator[Any]:
    async with hub_factory(SITE, web=True, plugins=[("still", StillPlugin())]) as hub:
        for camera_id in CAMERAS:
            await wait_camera_state(hub, camera_id, "online")
        yield hub


def signed(
    body: dict[str, Any] | bytes, ts: float | None = None, content_type: str = "application/json"
) -> tuple[dict[str, str], bytes]:
    """What a CAD sends (docs/webhook.md)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    stamp = str(int(time.time() if ts is None else ts))
    return {
        "Content-Type": content_type,
        "X-Csuhub-Timestamp": stamp,
        "X-Csuhub-Signature": "sha256=" + signature(SECRET, stamp, raw),
    }, raw


async def post(
    hub: Any, headers: dict[str, str], body: Any, line: str = "cad"
) -> tuple[int, dict[str, Any], Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{hub.web.url}/api/call-lines/{line}/calls", headers=headers, data=body) as resp,
    ):
        assert resp.content_type == "application/json"
        return resp.status, await resp.json(), resp.headers


async def refusals(hub: Any) -> list[dict[str, Any]]:
    return list(await hub.store.audit_trail.entries(action="call.refused"))


CALL = {
    "external_id": "2026-000123",
    "caller": "+33 6 12 34 56 78",
    "location": {"lat": ORIGIN[0], "lon": ORIGIN[1], "radius_m": 20, "address": "Grand Place"},
    "category": "rixe",
    "priority": "high",
    "text": "deux individus se battent",
}


async def test_a_signed_call_opens_an_incident_with_its_nearest_cameras(hub: Any) -> None:
    status, answer, _ = await post(hub, *signed(CALL))
    assert status == 201, answer
    assert set(answer) == {"incident", "status", "cameras"}  # nothing more: no caller
    assert answer["status"] == "open"
    assert [c["id"] for c in answer["cameras"]] == ["cam-a", "cam-b"]
    assert 40 < answer["cameras"][0]["distance_m"] < 60
    incident = await hub.incidents.get(answer["incident"])
    assert incident.source_line == "cad" and incident.call_id == "2026-000123"
    assert incident.caller == "+33 6 12 34 56 78" and incident.call_state == "dispatched"
    assert incident.camera_ids == ("cam-a", "cam-b")
    received = await hub.store.audit_trail.entries(action="call.received")
    assert received and received[-1]["actor"] == "line:cad"
    # what the operators see: the incident with those cameras, the caller masked
    token = await api_token(hub, "operator", name="olga")
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{hub.web.url}/api/incidents", headers={"Authorization": f"Bearer {token}"}
        ) as resp,
    ):
        listed = await resp.json()
    assert resp.status == 200
    [shown] = [i for i in listed["incidents"] if i["id"] == answer["incident"]]
    assert [c["id"] for c in shown["cameras"]] == ["cam-a", "cam-b"]
    assert shown["source"] == {"kind": "call_line", "line": "cad", "call_id": "2026-000123"}
    assert shown["caller"] != "+33 6 12 34 56 78"


async def test_the_same_external_id_updates_the_same_incident(hub: Any) -> None:
    status, first, _ = await post(hub, *signed(CALL))
    assert status == 201
    # re-sent a second later, re-signed: an update, not a replay
    moved = {**CALL, "priority": "critical", "location": {"address": "Rue Neuve, Lille"}}
    status, again, _ = await post(hub, *signed(moved, time.time() + 1))
    assert status == 200 and again["incident"] == first["incident"]
    assert len(await hub.incidents.list()) == 1
    incident = await hub.incidents.get(first["incident"])
    assert str(incident.priority) == "critical"


async def test_an_external_id_reused_after_its_incident_closed_opens_a_new_one(
    hub: Any,
) -> None:
    from csuhub.security.permissions import system_principal

    then = time.time() - 60
    status, first, _ = await post(hub, *signed({**CALL, "occurred_at": then}))
    assert status == 201
    await hub.incidents.close(first["incident"], "done", system_principal("sup"))
    # the CAD posts the old call again (an update it had queued): the closed
    # incident keeps its facts and no incident opens
    late = {**CALL, "occurred_at": then, "category": "autre", "caller": "+33 7 00 00 00 00"}
    status, again, _ = await post(hub, *signed(late, time.time() + 1))
    assert status == 200 and again == {**first, "status": "closed"}
    # a new call with the same id: a new incident, 201, following the closed one
    reused = {**CALL, "category": "vol", "caller": "+33 7 11 11 11 11"}
    status, second, _ = await post(hub, *signed(reused, time.time() + 2))
    assert status == 201 and second["incident"] != first["incident"]
    assert second["status"] == "open"
    closed = await hub.incidents.get(first["incident"])
    assert (closed.category, closed.caller) == ("rixe", "+33 6 12 34 56 78")
    assert not closed.is_open
    opened = await hub.incidents.get(second["incident"])
    assert opened.follows == first["incident"] and opened.category == "vol"
    # its later updates go to the new incident
    status, third, _ = await post(hub, *signed({**reused, "priority": "low"}, time.time() + 3))
    assert status == 200 and third["incident"] == second["incident"]


async def test_two_posts_of_a_new_call_at_once_open_one_incident(hub: Any) -> None:
    now = time.time()
    answers = await asyncio.gather(
        post(hub, *signed({"external_id": "X-1"}, now)),
        post(hub, *signed({"external_id": "X-1"}, now - 1)),
    )
    assert sorted(status for status, _, _ in answers) == [200, 201]
    assert answers[0][1]["incident"] == answers[1][1]["incident"]
    assert len(await hub.incidents.list()) == 1


async def test_a_bad_signature_is_401_and_audited_without_it(hub: Any) -> None:
    headers, body = signed(CALL)
    headers["X-Csuhub-Signature"] = "sha256=" + signature("not-the-secret-at-all", "1", body)
    status, answer, answer_headers = await post(hub, headers, body)
    assert status == 401 and "signature" in answer["error"]
    assert "WWW-Authenticate" in answer_headers
    [entry] = await refusals(hub)
    assert entry["actor"] == "line:cad" and entry["outcome"] == "refused"
    assert entry["source"] == "127.0.0.1" and entry["target"] == "line:cad"
    details = entry["details"]
    assert '"status":401' in details and headers["X-Csuhub-Signature"][7:] not in details
    assert SECRET not in json.dumps(entry)
    assert await hub.incidents.list() == []


async def test_a_replay_is_409(hub: Any) -> None:
    headers, body = signed(CALL)
    assert (await post(hub, headers, body))[0] == 201
    status, answer, _ = await post(hub, headers, body)
    assert status == 409 and "replay" in answer["error"]


async def test_a_stale_timestamp_is_409(hub: Any) -> None:
    status, answer, _ = await post(hub, *signed(CALL, time.time() - 301))
    assert status == 409 and "stale" in answer["error"]
    assert await hub.incidents.list() == []


async def test_an_oversized_body_is_413_without_being_read(hub: Any) -> None:
    big = {**CALL, "text": "x" * 3999}
    headers, body = signed(big)
    assert len(body) > 4096
    status, answer, _ = await post(hub, headers, body)
    assert status == 413 and "4096" in answer["error"]

    # no Content-Length (chunked): the handler stops reading past the limit (aiohttp
    # discards the rest of the stream; nothing accumulates in the hub's memory)
    async def endless() -> AsyncIterator[bytes]:
        for _ in range(128):
            yield b" " * 65536

    headers, _ = signed(b"")
    try:
        status, answer, _ = await post(hub, headers, endless())
        assert status == 413 and "4096" in answer["error"]
    except aiohttp.ClientError:
        pass  # the server may close before the client finished writing: also a refusal
    assert await hub.incidents.list() == []


@pytest.mark.parametrize("line", ["nope", "phone", "CAD", "cad%2F..", "x" * 100])
async def test_a_line_that_takes_no_http_calls_is_404(hub: Any, line: str) -> None:
    status, answer, _ = await post(hub, *signed(CALL), line=line)
    assert status == 404 and answer == {"error": "no such call line"}
    assert await refusals(hub) == []  # nothing to audit: no line was reached


async def test_a_wrong_content_type_is_415(hub: Any) -> None:
    status, answer, _ = await post(hub, *signed(CALL, content_type="text/plain"))
    assert status == 415 and "application/json" in answer["error"]
    # the same bytes, typed correctly: the refusal remembered no signature
    headers, body = signed(CALL)
    headers["Content-Type"] = "text/plain"
    assert (await post(hub, headers, body))[0] == 415
    headers["Content-Type"] = "application/json"
    assert (await post(hub, headers, body))[0] == 201


async def test_a_bad_body_is_400_naming_the_key(hub: Any) -> None:
    status, answer, _ = await post(hub, *signed({**CALL, "adress": "Rue Neuve"}))
    assert status == 400 and "'adress'" in answer["error"]
    status, answer, _ = await post(hub, *signed(b'{"external_id": "1", "external_id": "2"}'))
    assert status == 400 and "twice" in answer["error"]


async def test_a_flood_of_refusals_is_one_audit_entry_a_minute(hub: Any) -> None:
    headers, body = signed(CALL)
    headers["X-Csuhub-Signature"] = "sha256=" + "0" * 64
    statuses = await asyncio.gather(*(post(hub, headers, body) for _ in range(30)))
    assert {s for s, _, _ in statuses} == {401}
    assert len(await refusals(hub)) <= 2  # one, or two across a minute's turn


async def test_the_next_minutes_entry_counts_the_refusals_left_out(hub: Any) -> None:
    from csuhub.web.calllines import _state

    headers, body = signed(CALL)
    headers["X-Csuhub-Signature"] = "sha256=" + "0" * 64
    for _ in range(5):
        assert (await post(hub, headers, body))[0] == 401
    _state(hub).refusals.window -= 1  # as if the minute had turned
    assert (await post(hub, headers, body))[0] == 401
    entries = await refusals(hub)
    assert len(entries) == 2
    assert '"suppressed":0' in entries[0]["details"]
    assert '"suppressed":4' in entries[1]["details"]


async def test_the_route_is_described_in_openapi(hub: Any) -> None:
    token = await api_token(hub, "wall", name="kiosk")
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{hub.web.url}/api/openapi.json", headers={"Authorization": f"Bearer {token}"}
        ) as resp,
    ):
        doc = await resp.json()
    operation = doc["paths"]["/api/call-lines/{line}/calls"]["post"]
    assert operation["security"] == [{"callLineSignature": []}]
    assert operation["x-permission"] is None
    scheme = doc["components"]["securitySchemes"]["callLineSignature"]
    assert scheme["in"] == "header" and scheme["name"] == "X-Csuhub-Signature"
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["external_id"] and schema["additionalProperties"] is False
    headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
    assert headers == {"X-Csuhub-Timestamp", "X-Csuhub-Signature"}
    assert {"200", "201", "401", "404", "409", "413", "415"} <= set(operation["responses"])
