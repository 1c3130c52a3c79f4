"""A kiosk's scope follows what its wall shows now (a spotlighted or pushed
camera is in it, a camera of another wall is not), and the site check judges a
screen's options as its layout receives them (the wall rules' keys are the
manager's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
from conftest import run_cli
from test_walls_hub import call, ready, scoped_token
from walls_helpers import PLUGINS, site

from csuhub.testing import make_hub
from csuhub.web.login import wall_cameras


async def _wall(hub: Any, token: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{hub.web.url}/api/walls/mur", headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        assert r.status == 200
        return await r.json()


async def test_a_wall_token_sees_the_cameras_its_wall_spotlights(tmp_path: Path) -> None:
    async with make_hub(tmp_path / "hub", site(), plugins=PLUGINS, web=True) as hub:
        await ready(hub)
        token = await scoped_token(hub, "kiosk", "wall", ["wall:mur"])
        before = wall_cameras(hub, ("wall:mur",))
        assert "cam-c" not in before and "cam-far" not in before
        incident = await call(hub, "c1")
        await hub.bus.drain()
        assert "cam-c" in incident.camera_ids
        now = wall_cameras(hub, ("wall:mur",))
        assert set(incident.camera_ids) <= now and "cam-far" not in now
        spot = next(s for s in (await _wall(hub, token))["screens"] if s["id"] == "spot")
        shown = [t["camera"] for t in spot["tiles"] if t["camera"]]
        assert shown == list(incident.camera_ids)
        assert not any(t.get("reason") == "out_of_scope" for t in spot["tiles"])


def test_the_check_accepts_the_rule_keys_on_any_layout(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(
        "walls:\n"
        "  - id: mur\n"
        "    screens:\n"
        "      - id: s1\n"
        "        layout: grid\n"
        "        options: {columns: 2, rows: 2, spotlight: true, timeout: 10m, hold: 3h}\n"
    )
    result = run_cli("check", str(path), env=cli_env)
    assert result.returncode == 0, result.stdout + result.stderr
    path.write_text(path.read_text().replace("columns: 2", "columns: 99"))
    result = run_cli("check", str(path), env=cli_env)
    assert result.returncode == 1 and "site.yaml:6:" in result.stdout + result.stderr
    assert "columns" in result.stdout + result.stderr


async def test_an_incident_id_shows_only_to_readers_of_one_of_its_cameras(
    tmp_path: Path,
) -> None:
    async with make_hub(tmp_path / "hub", site(), plugins=PLUGINS, web=True) as hub:
        await ready(hub)
        far = await scoped_token(hub, "far", "supervisor", ["camera:cam-far", "camera:cam-d"])
        near = await scoped_token(hub, "near", "supervisor", ["camera:cam-c"])
        incident = await call(hub, "n5")
        await hub.bus.drain()
        assert "cam-far" not in incident.camera_ids and "cam-c" in incident.camera_ids
        for token, shown in ((far, None), (near, incident.id)):
            wall = await _wall(hub, token)
            spot = next(s for s in wall["screens"] if s["id"] == "spot")
            assert spot["incident"] == shown
            async with (
                aiohttp.ClientSession() as http,
                http.get(
                    f"{hub.web.url}/api/walls", headers={"Authorization": f"Bearer {token}"}
                ) as r,
            ):
                listed = (await r.json())["walls"][0]["screens"]
            assert next(s for s in listed if s["id"] == "spot")["incident"] == shown


async def test_a_district_on_a_screen_through_the_api_needs_every_camera_in_scope(
    tmp_path: Path,
) -> None:
    async with make_hub(tmp_path / "hub", site(), plugins=PLUGINS, web=True) as hub:
        narrow = await scoped_token(hub, "narrow", "supervisor", ["camera:cam-a"])
        wide = await scoped_token(hub, "wide", "supervisor", ["*"])
        url = f"{hub.web.url}/api/walls/mur/screens/s1"
        async with aiohttp.ClientSession() as http:
            for token, body, status in (
                (narrow, {"cameras": ["district:Centre"]}, 404),
                (wide, {"cameras": ["district:Nowhere"]}, 404),
                (wide, {"cameras": ["group:Bad"]}, 400),
                (wide, {"cameras": ["district:centre"], "options": {"columns": 3, "rows": 2}}, 200),
            ):
                async with http.post(
                    url, json=body, headers={"Authorization": f"Bearer {token}"}
                ) as r:
                    assert r.status == status, (body, await r.text())
                    answer = await r.json()
            tiles = answer["screens"][0]["tiles"]
            # every camera of the site file is in the Centre: sorted by id
            assert [t["camera"] for t in tiles] == [
                "cam-a", "cam-b", "cam-c", "cam-d", "cam-down", "cam-far"
            ]  # fmt: skip


def test_the_check_resolves_screen_selectors_and_judges_rule_values(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    path = tmp_path / "site.yaml"
    site_text = (
        "cameras:\n"
        "  - id: cam-a\n"
        "    driver: simcam\n"
        "    groups: [parvis]\n"
        "    location: {lat: 50.63, lon: 3.06, district: Centre}\n"
        "walls:\n"
        "  - id: mur\n"
        "    screens:\n"
        "      - id: s1\n"
        "        layout: grid\n"
        "        cameras: ['group:parvis', 'district:centre', cam-a]\n"
        "        options: {min_priority: high, hold: 2m}\n"
    )
    path.write_text(site_text)
    result = run_cli("check", str(path), env=cli_env)
    assert result.returncode == 0, result.stdout + result.stderr
    path.write_text(
        site_text.replace("group:parvis", "group:gare").replace(
            "min_priority: high", "min_priority: urgent"
        )
    )
    result = run_cli("check", str(path), env=cli_env)
    out = result.stdout + result.stderr
    assert result.returncode == 1
    assert "site.yaml:11:" in out and "group 'gare'" in out
    assert "site.yaml:12:" in out and "min_priority" in out
