"""The panel's incidents board, incident page and logbook in real Chromium, on a
real hub: cameras from the GStreamer RTSP server, a call sent by real sipp to
the hub's SIP line. An operator sees the wall playing, the call's incident
appear on the board live with its nearest cameras, adds a note and a bookmark,
closes it; the logbook of the day shows it all and its CSV downloads."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from panel_helpers import login, person, shoot
from test_cameras_rtsp import start_server, stop_server

from csuhub.panel.incidents import chosen_day
from csuhub.security.permissions import system_principal
from csuhub.testing import make_hub, wait_camera_state

SIPP = shutil.which("sipp") or "/usr/bin/sipp"
SCENARIOS = Path(__file__).parent / "sipp"
#: Lille, Grand-Place; cam-a and cam-b near it, cam-c far
ORIGIN = (50.6367, 3.0633)
PLACES = {"cam-a": 40.0, "cam-b": 150.0, "cam-c": 4000.0}
MOUNTS = {"cam-a": "cam1", "cam-b": "cam2", "cam-c": "cam3"}
AUTHORIZATION = {"reference": "TEST-2024-001", "issued": "2024-01-01", "expires": "2099-01-01"}


def north(metres: float) -> dict[str, float]:
    return {"lat": ORIGIN[0] + metres / 111_195.0, "lon": ORIGIN[1]}


def site(port: int) -> dict[str, Any]:
    """Three RTSP cameras, a SIP line, a wall of two screens (the wall tests use it too)."""
    return {
        "hub": {"sessions": {"idle": "1h", "absolute": "1h"}},
        "cameras": [
            {
                "id": camera,
                "driver": "rtsp",
                "options": {"url": f"rtsp://127.0.0.1:{port}/{mount}"},
                "location": north(PLACES[camera]),
                "authorization": AUTHORIZATION,
            }
            for camera, mount in MOUNTS.items()
        ],
        "incidents": {"radius": 1000, "max_cameras": 2},
        "call_lines": [{"id": "sip", "type": "sip", "options": {"listen_port": 0, "ring_for": 0}}],
        "walls": [
            {
                "id": "main",
                "name": "Mur principal",
                "screens": [
                    {
                        "id": "quad",
                        "name": "Écran 1",
                        "layout": "grid",
                        "cameras": ["cam-a", "cam-b"],
                        "options": {"columns": 2, "rows": 1},
                    },
                    {"id": "side", "name": "Écran 2", "layout": "grid", "cameras": ["cam-c"]},
                ],
            }
        ],
    }


@pytest.fixture(scope="module")
def rtsp() -> Iterator[int]:
    proc, port = start_server(mounts=",".join(MOUNTS.values()))
    yield port
    stop_server(proc)


@pytest.fixture
async def hub(tmp_path: Path, rtsp: int) -> AsyncIterator[Any]:
    async with make_hub(tmp_path / "hub", site(rtsp), web=True, sweeping=False) as running:
        for camera in MOUNTS:
            await wait_camera_state(running, camera, "online")
        yield running


async def wait_playing(page: Any, count: int, timeout: float = 20_000) -> None:
    """Until ``count`` tiles of the panel's screen play and have shown frames."""
    await page.wait_for_function(
        "n => [...document.querySelectorAll('#screen .tile[data-state=playing] video')]"
        ".filter(v => v.getVideoPlaybackQuality().totalVideoFrames >= 3).length >= n",
        arg=count,
        timeout=timeout,
    )


async def sipp_call(hub: Any, tmp_path: Path) -> None:
    """One INVITE with the caller's point by value (tests/sipp/pidf_point.xml)."""
    if not Path(SIPP).exists():
        pytest.fail(f"sipp not found at {SIPP}: install sip-tester")
    argv = [
        SIPP, "-sf", str(SCENARIOS / "pidf_point.xml"), f"127.0.0.1:{hub.call_lines['sip'].port}",
        "-i", "127.0.0.1", "-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error",
        "-key", "lat", repr(ORIGIN[0]), "-key", "lon", repr(ORIGIN[1]),
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), 40)
    assert proc.returncode == 0, err.decode()[-1000:]


@given(st.dictionaries(st.sampled_from(["day", "x", "lang"]), st.text(max_size=30)))
def test_the_logbook_day_is_a_date_or_today_with_a_reason(query: dict[str, str]) -> None:
    now = dt.datetime(2026, 11, 29, 23, 30, tzinfo=dt.UTC).timestamp()
    day, problem = chosen_day(query, "Europe/Paris", now)
    if problem:
        assert day == dt.date(2026, 11, 30)  # today in Paris, said why
    elif query.get("day"):
        assert day.isoformat() == query["day"]


async def test_a_call_on_the_board_to_its_close_and_the_logbook(
    hub: Any, chromium: Any, tmp_path: Path
) -> None:
    await person(hub, "olga", "operator")
    page = await login(chromium, hub, "olga", next_page="/panel/wall")
    await wait_playing(page, 2)  # the wall plays, as the kiosk does
    await page.goto(f"{hub.web.url}/panel/incidents")
    assert await page.locator("#open-board tr[data-incident]").count() == 0
    assert "Caméras les plus proches" in await page.locator("#open-board").inner_text()
    await page.wait_for_timeout(300)  # the board's events socket is open
    await sipp_call(hub, tmp_path)
    row = page.locator("#open-board tr[data-incident]")
    await row.first.wait_for(timeout=10_000)  # live: no reload
    [incident] = await hub.incidents.list()
    cameras = await row.locator("li[data-camera]").evaluate_all(
        "items => items.map(i => i.dataset.camera)"
    )
    assert cameras == ["cam-a", "cam-b"]  # the nearest, nearest first
    caller = await row.locator(".caller").inner_text()
    assert "•" in caller and caller != incident.caller  # masked for an operator
    await shoot(page, "incidents")
    await row.locator("a").first.click()
    await page.wait_for_url(f"**/panel/incidents/{incident.id}")
    await page.fill("#note-text", "Patrouille envoyée sur place")
    await page.click("#note-form button")
    await page.locator("#notes", has_text="Patrouille envoyée").wait_for()
    await page.select_option("#bookmark-camera", "cam-b")
    await page.fill("#bookmark-note", "individu en fuite")
    await page.click("#bookmark-form button")
    await page.locator("#bookmarks", has_text="individu en fuite").wait_for()
    replay = await page.locator("#bookmarks a.replay").get_attribute("href")
    assert replay is not None and replay.startswith("/panel/playback/cam-b?from=")
    await shoot(page, "incident")
    await page.fill("#outcome-text", "Interpellation")
    await page.click("#close-form button")
    await page.locator("#outcome", has_text="Interpellation").wait_for()
    assert await page.locator("#actions").count() == 0
    closed = await hub.incidents.get(incident.id)
    assert closed.outcome == "Interpellation" and [n.text for n in closed.notes] == [
        "Patrouille envoyée sur place"
    ]
    assert [b.camera_id for b in closed.bookmarks] == ["cam-b"]
    # the logbook of the day: the call, the note, the close
    await page.goto(f"{hub.web.url}/panel/logbook")
    actions = await page.locator("#lines tr[data-action]").evaluate_all(
        "rows => rows.map(r => r.dataset.action)"
    )
    assert {"call.received", "incident.note", "incident.close"} <= set(actions), actions
    await page.fill("#note-text", "Relève de 20 h : rien à signaler")
    await page.click("#note-form button")
    await page.locator("#lines", has_text="Relève de 20 h").wait_for()
    assert "Inscriptions du jour" in await page.locator("#lines caption").inner_text()
    await shoot(page, "logbook")
    async with page.expect_download() as started:
        await page.click("#export-csv")
    download = await started.value
    text = Path(await download.path()).read_text(encoding="utf-8")
    assert "Relève de 20 h" in text and "Interpellation" in text
    assert download.suggested_filename.startswith("logbook-")
    # English renders
    await page.goto(f"{hub.web.url}/panel/incidents/{incident.id}?lang=en")
    assert "Closing outcome" in await page.locator("main").inner_text()
    await page.goto(f"{hub.web.url}/panel/logbook?lang=en")
    assert "Logbook" in await page.locator("h1").inner_text()
    await page.goto(f"{hub.web.url}/panel/incidents?lang=en")
    assert "Closed in the last 24 hours" in await page.locator("main").inner_text()
    assert page.errors == []  # type: ignore[attr-defined]
    answer = await page.goto(f"{hub.web.url}/panel/logbook?day=2026-02-30")
    assert answer is not None and answer.status == 400
    assert await page.locator("p.error").count() == 1  # refused, said, today shown


async def test_a_supervisor_sees_the_caller_an_operator_does_not(hub: Any, chromium: Any) -> None:
    who = system_principal("cli")
    opened = await hub.incidents.open(who, category="rixe", caller="+33612345678")
    await person(hub, "sam", "supervisor")
    await person(hub, "olga", "operator")
    for name, shown in (("sam", "+33612345678"), ("olga", "+336••••••78")):
        page = await login(chromium, hub, name, next_page=f"/panel/incidents/{opened.id}")
        assert await page.locator(".facts .caller").inner_text() == shown, name
        await page.goto(f"{hub.web.url}/panel/incidents")
        row = page.locator(f"#open-board tr[data-incident='{opened.id}']")
        assert await row.locator(".caller").inner_text() == shown, name
        assert page.errors == []  # type: ignore[attr-defined]


async def test_who_may_not_read_incidents_gets_a_refusal(hub: Any, chromium: Any) -> None:
    await person(hub, "ecran", "wall")
    page = await login(chromium, hub, "ecran", lang="en")
    nav = await page.locator("nav").inner_text()
    assert "Incidents" not in nav and "Logbook" not in nav
    for path in ("/panel/incidents", "/panel/incidents/1", "/panel/logbook"):
        answer = await page.goto(f"{hub.web.url}{path}")
        assert answer is not None and answer.status == 403, path
    # an auditor reads but has no form to write
    await person(hub, "aude", "auditor")
    other = await login(chromium, hub, "aude", lang="fr")
    await other.goto(f"{hub.web.url}/panel/logbook")
    assert await other.locator("#note-form").count() == 0
    assert other.errors == []  # type: ignore[attr-defined]
    answer = await other.goto(f"{hub.web.url}/panel/incidents/999")
    assert answer is not None and answer.status == 404
