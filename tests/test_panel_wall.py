"""The panel's wall page in real Chromium on a real hub (cameras from the
GStreamer RTSP server): a screen's tiles play through the kiosk's player.js; a
supervisor (wall.edit) pushes a camera to a tile, pins the screen and sets a
layout, and an operator's page (no editor) follows the change live."""

from __future__ import annotations

from typing import Any

import test_panel_incidents as incidents
from panel_helpers import login, person, shoot
from test_panel_incidents import wait_playing

CAMERAS = "() => [...document.querySelectorAll('#screen .tile')].map(t => t.dataset.camera || '')"

#: the same GStreamer cameras and hub as the incidents page's tests
rtsp = incidents.rtsp
hub = incidents.hub


async def test_the_editor_pushes_pins_and_sets_and_others_follow(hub: Any, chromium: Any) -> None:
    await person(hub, "sam", "supervisor")
    await person(hub, "olga", "operator")
    watcher = await login(chromium, hub, "olga", next_page="/panel/wall")
    await wait_playing(watcher, 2)
    # an operator has no wall.edit: no editor
    assert await watcher.locator("#layout-form, #push-form, #pin").count() == 0
    page = await login(chromium, hub, "sam", next_page="/panel/wall/main/quad")
    await wait_playing(page, 2)
    assert await page.evaluate(CAMERAS) == ["cam-a", "cam-b"]
    assert "Modifier cet écran" in await page.locator("#editor-title").inner_text()
    await page.select_option("#push-camera", "cam-c")
    await page.select_option("#push-tile", "1")  # the second tile
    await page.click("#push-form button")
    await page.wait_for_function(f"() => ({CAMERAS})().join() === 'cam-a,cam-c'")
    # the operator's page follows over /api/events, without a reload
    await watcher.wait_for_function(f"() => ({CAMERAS})().join() === 'cam-a,cam-c'")
    await wait_playing(page, 2)
    await page.click("#pin")
    await page.locator("#pin-state").wait_for(state="visible")
    screen = hub.walls.walls["main"].screens["quad"]
    assert screen.state.pinned is True
    await watcher.locator("#pin-state").wait_for(state="visible")
    pinned = watcher.locator("#walls-list li", has_text="Écran 1").locator(".badge")
    await pinned.wait_for()  # the list of screens follows too
    await shoot(page, "wall")
    records = [r.action for r in await hub.store.audit_records(limit=50)]
    assert "wall.push" in records and "wall.pin" in records
    # a layout and cameras for the other screen
    await page.goto(f"{hub.web.url}/panel/wall/main/side?lang=en")
    assert "Edit this screen" in await page.locator("main").inner_text()
    await page.fill("#sources", "cam-b, cam-c")
    await page.select_option("#layout", "grid")
    await page.click("#layout-form button")
    await page.wait_for_function(f"() => ({CAMERAS})().join() === 'cam-b,cam-c'")
    assert hub.walls.walls["main"].screens["side"].state.shown.cameras == ("cam-b", "cam-c")
    # a camera that does not exist is refused, and said
    await page.fill("#sources", "cam-nowhere")
    await page.click("#layout-form button")
    await page.locator("#toast.error").wait_for()
    page.errors = [e for e in page.errors if "404" not in e]  # type: ignore[attr-defined]
    assert page.errors == [] and watcher.errors == []  # type: ignore[attr-defined]


async def test_the_wall_page_refuses_who_may_not_see_it(hub: Any, chromium: Any) -> None:
    await person(hub, "aude", "auditor")
    page = await login(chromium, hub, "aude", lang="en")
    assert "Wall" not in await page.locator("nav").inner_text()
    answer = await page.goto(f"{hub.web.url}/panel/wall")
    assert answer is not None and answer.status == 403
    await person(hub, "olga", "operator")
    other = await login(chromium, hub, "olga", lang="en", next_page="/panel/wall")
    assert "Walls and screens" in await other.locator("main").inner_text()
    assert other.errors == []  # type: ignore[attr-defined]
    for path in ("/panel/wall/main/nope", "/panel/wall/nope/quad", "/panel/wall/Main!/x"):
        answer = await other.goto(f"{hub.web.url}{path}")
        assert answer is not None and answer.status == 404, path


async def test_the_editor_shows_only_the_sources_in_its_scope(hub: Any, chromium: Any) -> None:
    """A scoped editor's form holds none of the screen's cameras it may not see
    (the screen 'quad' shows cam-a and cam-b; this supervisor sees cam-a only)."""
    await person(hub, "sam", "supervisor", scope=["camera:cam-a"])
    page = await login(chromium, hub, "sam", next_page="/panel/wall/main/quad")
    given = await page.locator("#sources").input_value()
    assert given == "cam-a"
    assert "cam-b" not in await page.content()
