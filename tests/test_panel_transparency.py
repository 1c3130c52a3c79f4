"""The public transparency page (/transparence) against a real hub, and its
static export (``csuhub transparency export``) opened from file:// in real
Chromium with every http request failed: no login, French and English, no
video, no API, no state, no camera marked ``public: false``, no expired one."""

from __future__ import annotations

import html
import json
import re
import struct
import subprocess
import sys
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from panel_helpers import SCREEN, shoot
from still_camera import StillPlugin

from csuhub.panel.cameras import AUTHORISATIONS, STATES
from csuhub.panel.i18n import translations
from csuhub.panel.transparency import NotAModule, approximate, classic_leaflet
from csuhub.testing import make_hub

ROOT = Path(__file__).resolve().parent.parent
AUTHORISED = {"reference": "ARR-59-2024-117", "issued": "2024-03-01", "expires": "2099-03-01"}
HIDDEN = {"reference": "ARR-CACHEE-9", "issued": "2024-03-01", "expires": "2099-03-01"}
EXPIRED = {"reference": "ARR-ANCIENNE-1", "issued": "2019-01-01", "expires": "2020-01-01"}
CONTACT = "Mairie de Lille, délégué à la protection des données, place Augustin-Laurent"


def site(tiles: str | None = None) -> dict[str, Any]:
    def camera(cid: str, district: str, lat: float, auth: dict[str, str], **more: Any) -> Any:
        return {
            "id": cid,
            "name": cid.replace("-", " ").title(),
            "driver": "still",
            "location": {"lat": lat, "lon": 3.063404, "district": district},
            "authorization": auth,
            **more,
        }

    panel: dict[str, Any] = {"transparency": {"contact": CONTACT}}
    if tiles:
        panel["tiles"] = {"url": tiles, "attribution": "Tuiles de test"}
    return {
        "hub": {"name": "Ville de Lille", "districts": ["Centre", "Fives", "Wazemmes"]},
        "cameras": [
            camera("cam-theatre", "Centre", 50.636921, AUTHORISED, retention="14d"),
            camera("cam-gare", "Fives", 50.63650, AUTHORISED, options={"down": True}),
            camera("cam-cachee", "Wazemmes", 50.626, HIDDEN, public=False),
            camera("cam-ancienne", "Wazemmes", 50.627, EXPIRED),
        ],
        "panel": panel,
    }


def png() -> bytes:
    """A 256x256 grey tile, a real PNG."""
    raw = b"".join(b"\x00" + b"\xc8" * 256 for _ in range(256))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 256, 256, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
async def tiles() -> AsyncIterator[tuple[str, list[str]]]:
    """A tile server on 127.0.0.1 (its own port: another origin); the tiles asked."""
    asked: list[str] = []
    tile = png()

    async def serve(request: web.Request) -> web.Response:
        asked.append(request.path)
        return web.Response(body=tile, content_type="image/png")

    app = web.Application()
    app.router.add_get("/{z}/{x}/{y}.png", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site_ = web.TCPSite(runner, "127.0.0.1", 0)
    await site_.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", asked
    await runner.cleanup()


@pytest.fixture
async def hub(tmp_path: Path, tiles: tuple[str, list[str]]) -> AsyncIterator[Any]:
    config = site(tiles=tiles[0] + "/{z}/{x}/{y}.png")
    async with make_hub(
        tmp_path / "hub", config, plugins=[("still", StillPlugin())], web=True, sweeping=False
    ) as running:
        yield running


def state_words() -> set[str]:
    """Every state and authorisation word of the Cameras pages, in both languages."""
    english = {*STATES.values(), *AUTHORISATIONS.values()}
    french = {translations("fr").gettext(word) for word in english}
    return english | french


def check_public(text: str) -> None:
    lowered = text.lower()
    assert "<video" not in lowered and "/api/" not in text and "snapshot" not in lowered
    assert "instantané" not in lowered
    for word in state_words():
        assert word not in text, word
    for secret in ("ARR-CACHEE-9", "Cam Cachee", "cam-cachee", "ARR-ANCIENNE-1", "Cam Ancienne"):
        assert secret not in text, secret
    assert "unreachable" not in text  # cam-gare's outage


async def test_the_page_needs_no_login_and_shows_only_what_is_public(
    hub: Any, tiles: tuple[str, list[str]]
) -> None:
    async with aiohttp.ClientSession() as http:
        for path in ("/transparence", "/transparency"):
            async with http.get(f"{hub.web.url}{path}", allow_redirects=False) as resp:
                assert resp.status == 200, path
                html = await resp.text()
                csp = resp.headers["Content-Security-Policy"]
            assert '<html lang="fr">' in html
            check_public(html)
            assert "ARR-59-2024-117" in html and "50.637, 3.063" in html  # rounded
            assert "50.636921" not in html and "Cam Theatre" not in html
            assert "L251-1" in html and "L253-5" in html and "CNIL" in html and CONTACT in html
            assert "14 jours" in html and "30 jours" in html
            assert f"img-src 'self' data: blob: {tiles[0]};" in csp
        async with http.get(f"{hub.web.url}/transparence?lang=en") as resp:
            html = await resp.text()
        assert '<html lang="en">' in html and "Your right of access" in html
        check_public(html)


async def test_the_page_in_chromium_with_its_map(
    hub: Any, chromium: Any, tiles: tuple[str, list[str]]
) -> None:
    context = await chromium.new_context(viewport=SCREEN, locale="fr")
    page = await context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("request", lambda request: requests.append(request.url))
    await page.goto(f"{hub.web.url}/transparence")
    await page.wait_for_selector("#map[data-markers='2']")
    await page.wait_for_selector("#map img.leaflet-tile-loaded")  # the tile server, allowed
    assert tiles[1], "no tile was asked"
    assert await page.locator("video, img[src*=snapshot]").count() == 0
    check_public(await page.content())
    assert not [url for url in requests if "/api/" in url]
    await shoot(page, "transparence")
    await page.click("a.lang")
    await page.wait_for_selector("html[lang=en]")
    assert "The authorised cameras" in await page.locator("main").inner_text()
    check_public(await page.content())
    assert errors == [], errors
    await context.close()


async def test_the_export_opens_offline_from_file(hub: Any, chromium: Any, tmp_path: Path) -> None:
    site_file = tmp_path / "site.yaml"
    site_file.write_text(yaml.safe_dump(site()), encoding="utf-8")  # no tile server
    out = tmp_path / "export"
    (out).mkdir()
    (out / "old.txt").write_text("the city's own file")
    command = [sys.executable, "-m", "csuhub", "transparency", "export", str(out)]
    command += ["-c", str(site_file), "--data", str(hub.data_dir), "--json"]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "not empty" in refused.stdout + refused.stderr
    done = subprocess.run([*command, "--force"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[-1]["event"] == "done" and "index.html" in lines[-1]["files"]
    assert any(line.get("event") == "progress" for line in lines)
    assert (out / "old.txt").read_text() == "the city's own file"  # nothing else touched
    index = (out / "index.html").read_text()
    check_public(index)
    check_public((out / "en.html").read_text())
    # the bundle carries its own policy: its files only, no connection, no form
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', index)
    assert policy is not None and "connect-src 'none'" in html.unescape(policy.group(1))

    context = await chromium.new_context(viewport=SCREEN)
    page = await context.new_page()
    errors: list[str] = []
    network: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    async def refuse(route: Any) -> None:
        network.append(route.request.url)
        await route.abort()

    await page.route("http*://**/*", refuse)
    await page.goto((out / "index.html").as_uri())
    await page.wait_for_selector("#map[data-markers='2']")
    assert "CNIL" in await page.locator("main").inner_text()
    await page.click("a.lang")
    await page.wait_for_selector("html[lang=en]")
    await page.wait_for_selector("#map[data-markers='2']")
    assert network == [] and errors == [], (network, errors)
    await context.close()


def test_the_target_folder_is_checked(tmp_path: Path) -> None:
    from csuhub.cli.common import CliError
    from csuhub.cli.transparency import check_target

    afile = tmp_path / "a-file"
    afile.write_text("x")
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    for bad in (afile, link, tmp_path / "no" / "such" / "dir"):
        with pytest.raises(CliError):
            check_target(bad, force=True)
    assert check_target(tmp_path / "new", force=False) == (tmp_path / "new").resolve()


@given(st.floats(-90, 90), st.floats(-180, 180))
def test_positions_are_rounded_to_about_100_m(lat: float, lon: float) -> None:
    rounded = approximate(lat, lon)
    assert abs(rounded[0] - lat) <= 0.0005 + 1e-12 and abs(rounded[1] - lon) <= 0.0005 + 1e-12
    assert rounded == (round(rounded[0], 3), round(rounded[1], 3))


NAME = st.from_regex(r"[A-Za-z_$][A-Za-z0-9_$]{0,8}", fullmatch=True)


@given(st.lists(st.tuples(NAME, st.one_of(st.none(), NAME)), min_size=1, max_size=8), st.text())
def test_the_leaflet_conversion_maps_every_export(pairs: list[Any], junk: str) -> None:
    items = [local if alias is None else f"{local} as {alias}" for local, alias in pairs]
    source = "var a=1;" + "export{" + ",".join(items) + "};"
    script = classic_leaflet(source)
    assert "export" not in script.split("window.L", 1)[1]
    for local, alias in pairs:
        assert f"{alias or local}: {local}" in script
    try:
        classic_leaflet(junk)
    except NotAModule:
        pass


def test_the_vendored_leaflet_converts() -> None:
    from csuhub.panel.render import STATIC_ROOT
    from csuhub.panel.transparency import LEAFLET_MODULE

    script = classic_leaflet((STATIC_ROOT / LEAFLET_MODULE).read_text())
    assert "map: createMap" in script and "circleMarker: circleMarker" in script
