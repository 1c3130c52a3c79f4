"""The OpenAPI document covers every route, is valid OpenAPI 3.1, and says what
each route needs; footage routes take a stated reason and are audited with it.

The document is read from a real hub serving on 127.0.0.1, as a client reads it.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import schemathesis
from hypothesis import given
from hypothesis import strategies as st

from csuhub.testing import api_token, index_footage
from csuhub.web.declare import iter_routes
from csuhub.web.openapi import openapi_path
from csuhub.web.validation import MAX_REASON, InputError, check_reason

T0 = 1_764_000_000.0


async def _get(hub: Any, path: str, token: str, **kw: Any) -> tuple[int, Any, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(hub.web.url + path, headers={"Authorization": f"Bearer {token}"}, **kw) as resp,
    ):
        body = await resp.read()
        data: Any = body
        if resp.content_type == "application/json":
            data = await resp.json()
        return resp.status, data, resp.content_type


async def test_every_route_is_in_the_valid_document(hub_factory: Any) -> None:
    async with hub_factory(web=True) as hub:
        token = await api_token(hub, "wall", name="kiosk")  # the narrowest role reads it
        status, doc, _ = await _get(hub, "/api/openapi.json", token)
        assert status == 200 and doc["openapi"] == "3.1.0"
        schemathesis.openapi.from_dict(doc).validate()  # the OpenAPI 3.1 meta-schema
        missing = []
        for route in iter_routes(hub.web.app):
            if route.method == "*":  # the JSON catch-all for unknown paths
                continue
            operation = doc["paths"].get(openapi_path(route.path), {}).get(route.method.lower())
            if operation is None:
                missing.append(f"{route.method} {route.path}")
                continue
            access = route.declaration.access  # type: ignore[union-attr]
            assert operation["x-permission"] == access.permission, route.path
            if access.public:
                signed = route.declaration.signed_by  # type: ignore[union-attr]
                assert operation["security"] == ([{signed: []}] if signed else [])
                if signed:
                    assert signed in doc["components"]["securitySchemes"]
            else:  # a panel page sends a person without a session to the login
                page = "panel" in operation.get("tags", []) and route.method == "GET"
                refused = {"303", "403"} if page else {"401", "403"}
                assert refused <= set(operation["responses"]), route.path
            assert any(s.startswith("2") for s in operation["responses"]), route.path
            for answer in operation["responses"].values():
                if answer["content"].get("application/json") and not answer["description"]:
                    raise AssertionError(f"{route.path}: an answer without a description")
        assert not missing, f"routes missing from /api/openapi.json: {missing}"
        ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
        assert len(ids) == len(set(ids))
        # the declarations' details reach the document
        play = doc["paths"]["/api/recordings/{camera_id}/play.mp4"]["get"]
        reason = next(p for p in play["parameters"] if p["name"] == "reason")
        assert reason["required"] and reason["schema"]["maxLength"] == MAX_REASON
        assert (
            play["x-audited"] == "recording.view"
            and "video/mp4" in play["responses"]["200"]["content"]
        )
        ptz = doc["paths"]["/api/cameras/{camera_id}/ptz"]["post"]
        assert ptz["requestBody"]["required"] and ptz["x-camera-scope"] == "camera_id"
        assert doc["paths"]["/api/register/destructions"]["get"]["responses"]["200"][
            "content"
        ].keys() == {"application/json", "text/csv"}


def test_an_invalid_document_is_caught() -> None:
    """The validation the test relies on does refuse a broken document."""
    broken = {"openapi": "3.1.0", "info": {"title": "x"}, "paths": {"/a": {"get": {"x": 1}}}}
    with pytest.raises(Exception, match=r"version|required"):
        schemathesis.openapi.from_dict(broken).validate()


async def test_the_docs_page_lists_every_operation_offline(hub_factory: Any) -> None:
    async with hub_factory(web=True) as hub:
        token = await api_token(hub, "auditor", name="committee")
        status, page, kind = await _get(hub, "/api/docs", token)
        assert status == 200 and kind == "text/html"
        text = page.decode()
        _, doc, _ = await _get(hub, "/api/openapi.json", token)
        for path in doc["paths"]:
            assert f"<code>{path}</code>" in text, path
        assert "<script" not in text and "src=" not in text and "https://" not in text
        assert "permission <code class=perm>playback.view</code>" in text
        status, _, _ = await _get(hub, "/api/docs", "csu_nobody")
        assert status == 401


@given(st.text(max_size=700))
def test_check_reason_keeps_printable_bounded_text(raw: str) -> None:
    text = raw.strip()
    ok = 0 < len(text) <= MAX_REASON and text.isprintable()
    if ok:
        assert check_reason(raw) == text
    else:
        with pytest.raises(InputError):
            check_reason(raw)


@pytest.mark.parametrize("raw", [None, "", "   ", "a\x00b", "x" * 501, "\u202e"])
def test_seen_reasons_are_refused(raw: str | None) -> None:
    with pytest.raises(InputError):
        check_reason(raw)


# -- stated reasons and the audit ----------------------------------------------------


def _real_segment(ffmpeg: str, path: Path, seconds: int = 4) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
         f"testsrc=size=160x120:rate=10:duration={seconds}", "-c:v", "libx264",
         "-g", "10", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(path)],
        check=True,
    )  # fmt: skip


async def _entries(hub: Any, action: str) -> list[dict[str, Any]]:
    return [e for e in await hub.store.audit_trail.entries(action=action)]


async def test_footage_needs_a_reason_and_is_audited_with_it(
    hub_factory: Any, ffmpeg_bin: str
) -> None:
    async with hub_factory(web=True) as hub:
        token = await api_token(hub, "operator", name="olga")
        root = hub.recording.storage_root()
        _real_segment(ffmpeg_bin, root / "cam-a" / "real.mp4")
        seg_id, _ = await hub.store.add_segment(
            "cam-a", start=T0, end=T0 + 4, size=1, path="cam-a/real.mp4", sha256=None
        )
        urls = [
            f"/api/recordings/cam-a/play.mp4?from={T0}&to={T0 + 3}",
            f"/api/recordings/cam-a/frame.jpg?t={T0 + 1}",
            f"/api/segments/{seg_id}.mp4?x=1",
        ]
        for url in urls:
            for bad in ("", "&reason=", "&reason=%20%20", "&reason=a%00b", "&reason=" + "x" * 501):
                status, data, _ = await _get(hub, url + bad, token)
                assert status == 400 and "reason" in data["error"], (url, bad)
        refused = await hub.store.audit_trail.entries(newest_first=True, limit=15)
        assert {e["outcome"] for e in refused} == {"refused"}
        assert all(e["actor"] == "olga" and e["role"] == "operator" for e in refused)
        assert all(e["via"] == "token:olga" and e["source"] == "127.0.0.1" for e in refused)

        why = "appel 17: rixe rue Pasteur"
        status, video, kind = await _get(hub, urls[0] + f"&reason={why}", token)
        assert status == 200 and kind == "video/mp4" and len(video) > 1000
        views = await _entries(hub, "recording.view")
        begun, done = views[-2], views[-1]
        assert begun["outcome"] == "started" and begun["reason"] == why
        assert '"start":' in begun["details"] and '"end":' in begun["details"]
        assert done["outcome"] == "ok" and done["ref"] == begun["id"]
        assert f'"bytes":{len(video)}' in done["details"]

        status, image, kind = await _get(hub, urls[1] + f"&reason={why}", token)
        assert status == 200 and image.startswith(b"\xff\xd8")
        assert (await _entries(hub, "recording.frame"))[-1]["reason"] == why

        status, data, _ = await _get(hub, urls[2] + f"&reason={why}", token)
        assert status == 200 and len(data) > 1000
        last = (await _entries(hub, "recording.segment"))[-1]
        assert last["reason"] == why and f'"segment":{seg_id}' in last["details"]


async def test_a_playback_without_footage_is_a_refusal_with_its_reason(hub_factory: Any) -> None:
    async with hub_factory(web=True) as hub:
        token = await api_token(hub, "admin", name="adam")
        await index_footage(hub, "cam-b", T0, 0.05)
        status, _, _ = await _get(
            hub, f"/api/recordings/cam-b/play.mp4?from={T0 + 9000}&to={T0 + 9060}&reason=x", token
        )
        assert status == 404
        entry = (await _entries(hub, "recording.view"))[-1]
        assert entry["outcome"] == "refused" and entry["reason"] == "x"
        assert "no footage" in entry["details"]


class PtzCamera:
    """A driver with PTZ that records the commands it takes (the ONVIF driver
    against ipycam covers the protocol in test_cameras_onvif)."""

    ptz_deadman = 1.0

    def __init__(self) -> None:
        self.taken: list[tuple[str, tuple[Any, ...]]] = []

    async def ptz_move(self, pan: float, tilt: float, zoom: float = 0.0) -> None:
        self.taken.append(("move", (pan, tilt, zoom)))

    async def ptz_stop(self) -> None:
        self.taken.append(("stop", ()))

    async def close(self) -> None:
        pass

    async def ptz_presets(self) -> list[str]:
        raise RuntimeError("garbage from GetPresets")


async def test_ptz_is_audited_before_the_move_with_its_parameters(hub_factory: Any) -> None:
    async with hub_factory(web=True) as hub:
        token = await api_token(hub, "operator", name="olga")
        camera = PtzCamera()
        hub.cameras.drivers["cam-p"] = camera
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{hub.web.url}/api/cameras/cam-p/ptz"
        async with aiohttp.ClientSession() as http:
            body = {"action": "move", "pan": 0.5, "duration": 0.2}
            async with http.post(url, json=body, headers=headers) as resp:
                assert resp.status == 200, await resp.text()
            async with http.post(url, json={"action": "presets"}, headers=headers) as resp:
                assert resp.status == 502
            async with http.post(url, json={"action": "move", "pan": 2}, headers=headers) as resp:
                assert resp.status == 400
        await asyncio.sleep(0.4)
        entries = await _entries(hub, "camera.ptz")
        assert [e["outcome"] for e in entries] == ["started", "ok", "started", "failed", "refused"]
        begun = entries[0]
        assert '"pan":0.5' in begun["details"] and '"duration":0.2' in begun["details"]
        assert '"tilt":0.0' in begun["details"] and '"zoom":0.0' in begun["details"]
        assert entries[1]["ref"] == begun["id"] and entries[3]["ref"] == entries[2]["id"]
        assert "garbage" in entries[3]["details"] and "pan" in entries[4]["details"]
        hub.cameras.drivers.pop("cam-p")


async def test_the_camera_list_shows_a_district_team_its_district_only(hub_factory: Any) -> None:
    """The list filters the rows it has read (their district), not one store query
    per camera; a camera of another district is absent, and a 404 when asked for."""
    from csuhub.security.accounts import Accounts
    from csuhub.security.permissions import system_principal
    from csuhub.security.tokens import hash_secret, new_secret

    async with hub_factory(web=True) as hub:
        for i, district in enumerate(["nord", "sud", "nord", ""]):
            await hub.store.upsert_camera(
                f"cam-{i}",
                name=f"C{i}",
                driver="onvif",
                state="discovered",
                origin="discovered",
                location={"district": district} if district else None,
            )
        await Accounts(hub.store).add(
            system_principal("cli"), "nina", roles=["operator"], scope=["district:nord"],
            password="a long password for nina",
        )  # fmt: skip
        secret = new_secret()
        await hub.store.tokens.create("nina-kiosk", "operator", hash_secret(secret), user="nina")
        status, data, _ = await _get(hub, "/api/cameras", secret)
        assert status == 200
        assert [c["id"] for c in data["cameras"]] == ["cam-0", "cam-2"]
        assert (await _get(hub, "/api/cameras/cam-1", secret))[0] == 404
        admin = await api_token(hub, "admin", name="adam")
        _, everything, _ = await _get(hub, "/api/cameras", admin)
        assert {c["id"] for c in everything["cameras"]} >= {"cam-0", "cam-1", "cam-2", "cam-3"}


async def test_the_permission_table_of_docs_api_md_matches_the_routes(hub_factory: Any) -> None:
    """docs/api.md's table, row for row, is the routes' declarations (plugins aside)."""
    docs = Path(__file__).resolve().parent.parent / "docs" / "api.md"
    documented = {
        line
        for line in docs.read_text(encoding="utf-8").splitlines()
        if line.startswith("| `")
        and any(
            f" /{root}" in line for root in ("api/", "wall/", "static/", "panel/", "transparen")
        )
    }
    async with hub_factory(web=True) as hub:
        expected = set()
        for route in iter_routes(hub.web.app):
            if route.method == "*" or route.path.startswith("/plugins/"):
                continue
            declaration = route.declaration
            assert declaration is not None, route.path
            access = declaration.access
            permission = "public" if access.public else f"`{access.permission}`"
            scope = f"`{access.camera_param}`" if access.camera_param else ""
            audited = f"`{declaration.audited}`" if declaration.audited else ""
            path = openapi_path(route.path)
            expected.add(f"| `{route.method} {path}` | {permission} | {scope} | {audited} |")
    missing = "\n".join(sorted(expected - documented))
    stale = "\n".join(sorted(documented - expected))
    assert not missing and not stale, (
        f"docs/api.md's permission table: add\n{missing}\nremove\n{stale}"
    )
