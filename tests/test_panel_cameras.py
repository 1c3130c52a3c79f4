"""The panel's Cameras pages in real Chromium against a real hub: simulated
cameras (simcam: a looping H.264 clip, recorded, live and snapshots) and
``still`` ones (offline, disabled); the list by district with states, the
coverage, the map, one camera's live view and snapshot, and who sees what."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from panel_helpers import login, person, shoot
from still_camera import StillDriver, StillPlugin

from csuhub.api import CameraDriverSpec, hookimpl
from csuhub.config.schema import tile_origin, tile_url
from csuhub.panel.cameras import CameraView, by_district, coverage
from csuhub.testing import make_hub, wait_camera_state

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")

SIM = {"pattern": "smptebars", "width": 320, "height": 180, "fps": 10, "clip_seconds": 4}
AUTHORISED = {"reference": "ARR-59-2024-117", "issued": "2024-03-01", "expires": "2099-03-01"}
DISTRICTS = ["Centre", "Fives", "Wazemmes", "Moulins"]


class TurretDriver(StillDriver):
    """A still camera with PTZ: it keeps the commands it took, in order."""

    taken: list[tuple[str, Any]] = []

    async def ptz_move(self, pan: float, tilt: float, zoom: float = 0.0) -> None:
        self.taken.append(("move", (pan, tilt, zoom)))

    async def ptz_stop(self) -> None:
        self.taken.append(("stop", None))

    async def ptz_absolute(self, pan: float, tilt: float, zoom: float = 0.0) -> None:
        self.taken.append(("absolute", (pan, tilt, zoom)))

    async def ptz_home(self) -> None:
        self.taken.append(("home", None))

    async def ptz_presets(self) -> list[dict[str, str]]:
        return [{"token": "p1", "name": "Parvis"}, {"token": "p2", "name": ""}]

    async def ptz_goto_preset(self, preset: str) -> None:
        self.taken.append(("preset", preset))


class TurretPlugin:
    @hookimpl
    def register_camera_drivers(self, hub: Any) -> list[CameraDriverSpec]:
        return [CameraDriverSpec(name="turret", factory=TurretDriver)]


def site(simcam: bool = True) -> dict[str, Any]:
    def at(district: str, lat: float, lon: float) -> dict[str, Any]:
        return {"lat": lat, "lon": lon, "district": district}

    return {
        "hub": {"districts": DISTRICTS, "sessions": {"idle": "1h", "absolute": "1h"}},
        "cameras": [
            {
                "id": "cam-grand-place" if simcam else "cam-place",
                "name": "Grand-Place",
                "driver": "simcam" if simcam else "still",
                "options": SIM if simcam else {},
                "location": at("Centre", 50.63692, 3.06340),
                # without video, not authorised: the still driver cannot be recorded
                **({"authorization": AUTHORISED} if simcam else {}),
                "retention": "14d",
            },
            {
                "id": "cam-gare",
                # a name as a device may report it: shown as text, never as markup
                "name": "Gare <b>Lille</b>-Flandres",
                "driver": "still",
                "options": {"down": True},
                "location": at("Fives", 50.63650, 3.07000),
                "authorization": AUTHORISED,
            },
            {
                "id": "cam-beffroi",
                "name": "Beffroi",
                "driver": "turret",
            },
            {
                "id": "cam-wazemmes",
                "name": "Marché de Wazemmes",
                "driver": "still",
                "enabled": False,
                "location": at("Wazemmes", 50.62600, 3.05100),
                "authorization": AUTHORISED,
            },
        ],
    }


PLUGINS = [("still", StillPlugin()), ("turret", TurretPlugin())]


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Any]:
    """The site with its simulated camera, recorded and live."""
    async with make_hub(
        tmp_path / "hub", site(), plugins=PLUGINS, web=True, sweeping=False
    ) as running:
        await wait_camera_state(running, "cam-grand-place", "online", timeout=30)
        for _ in range(100):  # the recorder starts once the camera is online
            if "cam-grand-place" in running.recording.recorders:
                break
            await asyncio.sleep(0.1)
        yield running


@pytest.fixture
async def still_hub(tmp_path: Path) -> AsyncIterator[Any]:
    """The same site without video (no ffmpeg): for PTZ and permissions."""
    async with make_hub(
        tmp_path / "hub", site(simcam=False), plugins=PLUGINS, web=True, sweeping=False
    ) as running:
        await wait_camera_state(running, "cam-beffroi", "online")
        yield running


async def test_the_list_by_district_with_states_coverage_and_map(hub: Any, chromium: Any) -> None:
    await person(hub, "olga", "operator")
    page = await login(chromium, hub, "olga", next_page="/panel/cameras")
    rows = page.locator("tr[data-camera]")
    await wait_camera_state(hub, "cam-beffroi", "online")
    assert await rows.count() == 4
    states = {
        await r.get_attribute("data-camera"): await r.get_attribute("data-state")
        for r in await rows.all()
    }
    assert states == {
        "cam-grand-place": "recording",
        "cam-gare": "offline",
        "cam-wazemmes": "disabled",
        "cam-beffroi": "online",
    }
    # grouped by district in the site's order, each with its caption
    captions = await page.locator("table.cameras caption").all_inner_texts()
    assert captions == ["Centre", "Fives", "Wazemmes", "Sans quartier"]
    beffroi = await page.locator("tr[data-camera=cam-beffroi]").inner_text()
    assert "En ligne, sans enregistrement" in beffroi and "Sans autorisation" in beffroi
    gare = await page.locator("tr[data-camera=cam-gare]").inner_text()
    assert "Hors ligne" in gare and "ARR-59-2024-117" in gare and "2099" in gare
    grand = await page.locator("tr[data-camera=cam-grand-place]").inner_text()
    assert "Enregistrement en cours" in grand
    # coverage: Moulins has no camera and says so
    assert await page.locator("tr.uncovered").count() == 1
    moulins = page.locator("tr[data-district=Moulins]")
    assert await moulins.get_attribute("class") == "uncovered"
    assert "Aucune caméra" in await moulins.inner_text()
    # the map: one marker per positioned camera, on a plain background (no tiles)
    await page.wait_for_selector("#map[data-markers='3']")
    assert await page.locator("#map path.leaflet-interactive").count() == 3
    assert await page.locator("#map .leaflet-tile").count() == 0
    tooltips = await page.locator("#map .leaflet-tooltip").all_inner_texts()
    assert "Gare <b>Lille</b>-Flandres" in tooltips  # the name as text
    assert await page.locator("#map .leaflet-tooltip b").count() == 0  # not as markup
    await shoot(page, "cameras-list")
    # a camera changing state shows without reloading the page (the events socket)
    await hub.cameras.set_state("cam-wazemmes", "offline", "câble coupé")
    row = page.locator("tr[data-camera=cam-wazemmes][data-state=offline]")
    await row.wait_for(timeout=10_000)
    assert "câble coupé" in await row.inner_text()
    assert page.errors == []  # type: ignore[attr-defined]
    # in English too
    await page.goto(f"{hub.web.url}/panel/cameras?lang=en")
    assert "Recording" in await page.locator("tr[data-camera=cam-grand-place]").inner_text()
    assert "No camera" in await page.locator("tr[data-district=Moulins]").inner_text()
    assert page.errors == []  # type: ignore[attr-defined]


async def test_a_camera_plays_live_and_takes_a_snapshot(hub: Any, chromium: Any) -> None:
    await person(hub, "olga", "operator")
    page = await login(chromium, hub, "olga", lang="en", next_page="/panel/cameras/cam-grand-place")
    assert "ARR-59-2024-117" in await page.locator("#auth-ref").inner_text()
    assert "14 days" in await page.locator("#retention").inner_text()
    await page.wait_for_function(
        "() => { const v = document.querySelector('#live-video');"
        " return v && v.getVideoPlaybackQuality().totalVideoFrames >= 5 }",
        timeout=20_000,
    )
    first = await page.evaluate("document.querySelector('#live-video').currentTime")
    # the playhead advances (a loaded machine may deliver in bursts: up to 15 s)
    await page.wait_for_function(
        "t => document.querySelector('#live-video').currentTime > t + 1", arg=first, timeout=15_000
    )
    assert await page.locator("#live").get_attribute("data-state") == "playing"
    # the simcam driver has no PTZ: no pad, even for an operator
    assert await page.locator("#ptz").count() == 0
    await page.click("#snapshot-take")
    await page.wait_for_function(
        "() => { const i = document.querySelector('#snapshot');"
        " return !i.hidden && i.complete && i.naturalWidth === 320 }",
        timeout=15_000,
    )
    await shoot(page, "camera-live")
    records = await hub.store.audit_records(limit=200)
    assert any(r.action == "camera.snapshot" and r.target == "cam-grand-place" for r in records)
    assert page.errors == []  # type: ignore[attr-defined]
    # in French
    await page.goto(f"{hub.web.url}/panel/cameras/cam-grand-place?lang=fr")
    assert "14 jours" in await page.locator("#retention").inner_text()
    assert page.errors == []  # type: ignore[attr-defined]


async def test_the_ptz_pad_and_presets(still_hub: Any, chromium: Any) -> None:
    hub = still_hub
    TurretDriver.taken.clear()
    await person(hub, "olga", "operator")
    page = await login(chromium, hub, "olga", lang="en", next_page="/panel/cameras/cam-beffroi")
    await page.click("#ptz button[aria-label='Pan right']")
    for _ in range(50):  # the move, then its own end after its 0.6 s
        if ("stop", None) in TurretDriver.taken:
            break
        await asyncio.sleep(0.1)
    assert TurretDriver.taken[:2] == [("move", (0.5, 0.0, 0.0)), ("stop", None)]
    await page.click("#presets-load")
    await page.wait_for_selector("#presets button >> nth=1")
    assert await page.locator("#presets button").all_inner_texts() == ["Go to Parvis", "Go to p2"]
    await page.click("#presets button >> nth=0")
    await page.locator("#toast", has_text="Preset reached").wait_for()
    assert ("preset", "p1") in TurretDriver.taken
    records = await hub.store.audit_records(limit=200)
    assert any(r.action == "camera.ptz" and r.target == "cam-beffroi" for r in records)
    # an auditor: no pad
    await person(hub, "aude", "auditor")
    other = await login(chromium, hub, "aude", next_page="/panel/cameras/cam-beffroi")
    assert await other.locator("#ptz, #presets-load").count() == 0
    assert other.errors == []  # type: ignore[attr-defined]


async def test_an_auditor_sees_no_picture_and_scope_hides_cameras(
    still_hub: Any, chromium: Any
) -> None:
    hub = still_hub
    await person(hub, "aude", "auditor")
    await person(hub, "fabien", "operator", scope=["district:Fives"])
    # cam-beffroi is online with PTZ: an operator gets the live view and the pad
    page = await login(chromium, hub, "aude", next_page="/panel/cameras/cam-beffroi")
    assert await page.locator("#live, #live-video, #snapshot-take, #ptz").count() == 0
    assert await page.locator("#no-picture").count() == 1
    await page.goto(f"{hub.web.url}/panel/cameras/cam-gare")
    assert "ARR-59-2024-117" in await page.locator("#auth-ref").inner_text()
    assert page.errors == []  # type: ignore[attr-defined]
    # an operator of Fives: only the Fives camera; another one is a 404 page
    other = await login(chromium, hub, "fabien", lang="en", next_page="/panel/cameras")
    assert await other.locator("tr[data-camera]").count() == 1
    assert await other.locator("tr[data-camera=cam-gare]").count() == 1
    # coverage covers the scope only: no count of the other districts' cameras
    coverage = await other.locator("table.coverage").inner_text()
    assert "Fives" in coverage and all(d not in coverage for d in ("Centre", "Moulins"))
    assert await other.locator("tr.uncovered").count() == 0
    assert other.errors == []  # type: ignore[attr-defined]
    answer = await other.goto(f"{hub.web.url}/panel/cameras/cam-place")
    assert answer is not None and answer.status == 404
    assert "Not found" in await other.locator("h1").inner_text()
    answer = await other.goto(f"{hub.web.url}/panel/cameras/no-such-camera")
    assert answer is not None and answer.status == 404
    # (every shipped role holds camera.read: the refusal is the API's, test_access_matrix)


def _camera(district: str | None, name: str) -> CameraView:
    return CameraView(name, name, district, "online", "", None, None, None, "valid", None, None)


@given(st.lists(st.sampled_from([None, "Centre", "Fives", "Ailleurs", "Moulins"]), max_size=12))
def test_grouping_and_coverage_keep_every_camera(districts: list[str | None]) -> None:
    cameras = [_camera(d, f"c{i}") for i, d in enumerate(districts)]
    groups = by_district(DISTRICTS, cameras)
    assert sorted(c.id for _, group in groups for c in group) == sorted(c.id for c in cameras)
    names = [d for d, _ in groups]
    assert names.count(None) <= 1 and (None not in names or names[-1] is None)
    counted = dict(coverage(DISTRICTS, districts))
    assert list(counted) == DISTRICTS
    assert all(counted[d] == districts.count(d) for d in DISTRICTS)


@given(st.text(max_size=120))
def test_a_tile_url_is_refused_or_safe_for_the_csp(value: str) -> None:
    import voluptuous as vol

    try:
        checked = tile_url(value)
    except vol.Invalid:
        return
    origin = tile_origin(checked)
    assert origin.startswith(("http://", "https://"))
    assert not any(c in origin for c in " ;,'\"\n\t{}")
    assert checked.count("{z}") == checked.count("{x}") == checked.count("{y}") == 1


@given(
    st.from_regex(r"[a-z0-9]{1,12}(\.[a-z0-9]{1,8}){0,2}", fullmatch=True),
    st.sampled_from(["", ":8080", ":443"]),
)
def test_a_tile_url_template_gives_its_origin(host: str, port: str) -> None:
    url = tile_url(f"https://{host}{port}/{{z}}/{{x}}/{{y}}.png")
    assert tile_origin(url) == f"https://{host}{port}"
