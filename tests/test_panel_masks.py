"""The panel's masks pages in real Chromium against a hub with a simulated
camera: a polygon drawn by clicking on the camera's snapshot is saved (the
API returns it), an operator asks for a lift and a supervisor approves it
(never the requester), the refusals by role, French and English."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from panel_helpers import LAPTOP, login, person, shoot

from csuhub.panel.masks import DEFAULT_SIZE, frame_size
from csuhub.testing import api_token, make_hub, wait_camera_state

SIM = {"pattern": "smptebars", "width": 320, "height": 180, "fps": 5, "clip_seconds": 2}
AUTHORIZATION = {"reference": "A-1", "issued": "2022-01-01", "expires": "2099-01-01"}
HOUSE = [[0.0, 0.0], [0.2, 0.0], [0.2, 0.2], [0.0, 0.2]]
SITE = {
    "cameras": [
        {
            "id": "cam-1",
            "name": "Grand-Place",
            "driver": "simcam",
            "options": SIM,
            "authorization": AUTHORIZATION,
            "privacy_masks": [{"name": "house", "polygon": HOUSE}],
        }
    ]
}


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Any]:
    async with make_hub(tmp_path / "hub", SITE, web=True, sweeping=False) as running:
        yield running


async def _masks(hub: Any) -> dict[str, Any]:
    token = await api_token(hub, "admin")
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{hub.web.url}/api/cameras/cam-1/masks", headers={"Authorization": f"Bearer {token}"}
        ) as resp:
            assert resp.status == 200
            return dict(await resp.json())


def test_the_frame_follows_the_cameras_described_size() -> None:
    class Row:
        device: dict[str, Any] = {"profiles": [{"width": 640, "height": 480}]}

    assert frame_size(Row()) == (640, 480)
    Row.device = {"profiles": [{"width": "x"}, None, {"width": 10**9, "height": 1}]}
    assert frame_size(Row()) == DEFAULT_SIZE
    Row.device = {}
    assert frame_size(Row()) == DEFAULT_SIZE


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["width", "height", "x"]), inner, max_size=3)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.sampled_from(["profiles", "model"]), _JSON, max_size=2))
def test_any_device_description_gives_a_sane_frame(device: dict[str, Any]) -> None:
    """The description is the camera's (outside input): never an error, never
    a frame of no or absurd size."""

    class Row:
        pass

    row = Row()
    row.device = device  # type: ignore[attr-defined]
    width, height = frame_size(row)
    assert 16 <= width <= 16384 and 16 <= height <= 16384


async def test_draw_a_polygon_on_the_snapshot_and_save_it(hub: Any, chromium: Any) -> None:
    await wait_camera_state(hub, "cam-1", "online", timeout=60)
    await person(hub, "adele", "admin")
    page = await login(chromium, hub, "adele", lang="en", next_page="/panel/masks")
    async with page.expect_response("**/api/cameras/cam-1/snapshot.jpg") as answer:
        await page.click("a[href='/panel/masks/cam-1']")
    assert (await answer.value).status == 200
    assert await page.locator("#canvas .mask.site").count() == 1  # the site file's, shown
    canvas = page.locator("#canvas")
    box = await canvas.bounding_box()
    assert box is not None and abs(box["width"] / box["height"] - 320 / 180) < 0.02
    for fx, fy in ((0.5, 0.5), (0.9, 0.5), (0.9, 0.9), (0.5, 0.9)):
        await canvas.click(position={"x": box["width"] * fx, "y": box["height"] * fy})
    assert await page.locator("#canvas .point").count() == 4
    await page.click("#close-polygon")
    await page.fill("#mask-name-0", "fenetre-12")
    await shoot(page, "masks-draw")
    await page.click("#save")
    await page.locator("#toast", has_text="saved").wait_for()
    found = await _masks(hub)
    drawn = [m for m in found["masks"] if m["source"] == "api"]
    assert [m["name"] for m in drawn] == ["fenetre-12"]
    for (x, y), (ex, ey) in zip(drawn[0]["polygon"], HOUSE_DRAWN, strict=True):
        assert abs(x - ex) < 0.02 and abs(y - ey) < 0.02
    assert any(m["source"] == "site" for m in found["masks"])  # the file's mask stays
    # delete it again: saved as none drawn
    await page.reload()
    await page.locator("#mask-list li").wait_for()
    await page.click("#mask-list li button.danger")
    await page.click("#save")
    await page.locator("#toast", has_text="saved").wait_for()
    assert [m["source"] for m in (await _masks(hub))["masks"]] == ["site"]
    actions = [r.action for r in await hub.store.audit_records(limit=100)]
    assert actions.count("mask.edit") == 2 and "camera.snapshot" in actions
    assert page.errors == []  # type: ignore[attr-defined]


HOUSE_DRAWN = [[0.5, 0.5], [0.9, 0.5], [0.9, 0.9], [0.5, 0.9]]


def unexpected(page: Any) -> list[str]:
    """The page's console errors but the refusals the test asked for (a 403 or
    404 page opened on purpose, which Chromium logs)."""
    expected = ("status of 403", "status of 404")
    return [e for e in page.errors if not any(x in e for x in expected)]


async def test_an_operator_asks_and_a_supervisor_approves(hub: Any, chromium: Any) -> None:
    await person(hub, "olga", "operator")
    await person(hub, "sam", "supervisor")
    olga = await login(chromium, hub, "olga", lang="en", next_page="/panel/masks")
    assert await olga.locator("a[href='/panel/masks/cam-1']").count() == 0  # no mask.edit
    await olga.fill("#lift-reason", "Réquisition 2026/114: identify a vehicle")
    await olga.click("#ask-lift button[type=submit]")
    row = olga.locator("#pending tr[data-lift]")
    await row.wait_for()
    assert await row.locator("button[data-action=approve]").count() == 0  # not one's own
    lift_id = await row.get_attribute("data-lift")
    answer = await olga.goto(f"{hub.web.url}/panel/masks/cam-1")
    assert answer is not None and answer.status == 403
    sam = await login(chromium, hub, "sam", next_page="/panel/masks")
    assert "Levées" in await sam.locator("h2#lifts-title").inner_text()
    await sam.fill(f"#decision-{lift_id}", "vu avec l'officier")
    await sam.click(f"#pending button[data-action=approve][data-lift='{lift_id}']")
    await sam.locator(f"#lifts tr[data-lift='{lift_id}'][data-status=approved]").wait_for()
    lift = await hub.store.masks.lift(int(lift_id or 0))
    assert lift["status"] == "approved" and lift["decided_by"] == "sam"
    actions = [r.action for r in await hub.store.audit_records(limit=100)]
    assert "mask.lift.request" in actions and "mask.lift.approve" in actions
    await shoot(sam, "masks-lifts-fr")
    await sam.click(f"#lifts button[data-action=end][data-lift='{lift_id}']")
    await sam.locator(f"#lifts tr[data-lift='{lift_id}'][data-status=ended]").wait_for()
    assert unexpected(olga) == [] and sam.errors == []  # type: ignore[attr-defined]


async def test_refusals_and_languages(hub: Any, chromium: Any) -> None:
    await person(hub, "aude", "auditor")
    await person(hub, "adele", "admin")
    aude = await login(chromium, hub, "aude", lang="en")
    assert "Masks" not in await aude.locator("header").inner_text()
    for path in ("/panel/masks", "/panel/masks/cam-1"):
        answer = await aude.goto(f"{hub.web.url}{path}")
        assert answer is not None and answer.status == 403
    adele = await login(chromium, hub, "adele", viewport=LAPTOP, next_page="/panel/masks")
    assert await adele.locator("html").get_attribute("lang") == "fr"
    assert "Masques de confidentialité" in await adele.locator("h1").inner_text()
    answer = await adele.goto(f"{hub.web.url}/panel/masks/no-such-camera")
    assert answer is not None and answer.status == 404
    await adele.goto(f"{hub.web.url}/panel/masks/cam-1")
    assert "Masques de" in await adele.locator("h1").inner_text()
    assert unexpected(aude) == [] and unexpected(adele) == []
