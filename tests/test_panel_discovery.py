"""The panel's discovery and adoption page in real Chromium on a real hub.

No multicast ever leaves the machine: the discovery source is a test plugin's,
like simcam's, which sends nothing at all; it answers with two simulated
cameras, the second a while after the first, so the page must show cameras
as they answer, before the scan ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from panel_helpers import login, person, shoot
from playwright.async_api import expect

from csuhub.api import DiscoveredCamera, DiscoverySourceSpec, hookimpl
from csuhub.testing import make_hub

#: the second camera answers this long after the first
LATE = 1.5


class SlowSource:
    """Two simulated cameras (simcam's references, so simcam's driver claims
    them), sending no packet; nobody answers until ``awake``."""

    awake = False

    def __init__(self, hub: Any, options: Any) -> None:
        SOURCES.append(self)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def scan(self, timeout: float) -> Iterator[DiscoveredCamera]:  # type: ignore[misc]
        if not self.awake:
            return
        for index in (1, 2):
            if index == 2:
                await asyncio.sleep(LATE)
            yield DiscoveredCamera(
                ref=f"urn:csuhub:simcam:{index}",
                address=f"127.0.0.{index + 1}",
                source="slow",
                name=f"Caméra trouvée {index}",
                driver="simcam",
                info={"manufacturer": "csuhub", "model": "simcam"},
            )


SOURCES: list[SlowSource] = []


class SlowPlugin:
    @hookimpl
    def register_discovery_sources(self, hub: Any) -> list[DiscoverySourceSpec]:
        return [DiscoverySourceSpec(name="slow", factory=SlowSource, description="test")]


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Any]:
    SOURCES.clear()
    config = {"cameras": [], "discovery": [{"source": "slow", "interval": "1h"}]}
    async with make_hub(
        tmp_path / "hub", config, web=True, sweeping=False, plugins=[("slow", SlowPlugin())]
    ) as running:
        yield running


async def test_an_admin_adopts_a_discovered_camera(hub: Any, chromium: Any) -> None:
    await person(hub, "ada", "admin")
    page = await login(chromium, hub, "ada", lang="en", next_page="/panel/discovery")
    assert await page.locator("#none-found").is_visible()
    assert "slow" in await page.locator("#sources").inner_text()
    SOURCES[0].awake = True
    await page.click("#scan")
    rows = page.locator("#found tbody tr")
    # the first camera shows while the scan still listens for the second
    await expect(rows).to_have_count(1, timeout=LATE * 1000)
    assert await page.locator("#scan").is_disabled()
    await expect(rows).to_have_count(2)
    await expect(page.locator("#scan-status")).to_contain_text("Scan done: 2 found")
    assert "Ready to adopt" in await rows.first.inner_text()
    await shoot(page, "discovery")
    # an expired authorisation: refused, said, nothing adopted
    await page.click('button.adopt[data-id="disc-csuhub-simcam-1"]')
    await expect(page.locator("#adopt-camera")).to_have_text("disc-csuhub-simcam-1")
    assert await page.input_value("#a-name") == "Caméra trouvée 1"
    await page.fill("#a-reference", "AP-2026-0042")
    await page.fill("#a-issued", "2020-01-01")
    await page.fill("#a-expires", "2021-01-01")
    await page.select_option("#a-district", "Wazemmes")
    await page.fill("#a-lat", "50.62835")
    await page.fill("#a-lon", "3.0502")
    await page.fill("#a-address", "Place de la Nouvelle-Aventure")
    await page.click("#adopt-form button[type=submit]")
    await expect(page.locator("#adopt-error")).to_contain_text("expired")
    # a valid one: adopted, in the register, gone from the list
    expires = (date.today() + timedelta(days=5 * 365)).isoformat()
    await page.fill("#a-expires", expires)
    await page.fill("#a-name", "Marché de Wazemmes")
    await page.fill("#a-reason", "new camera, arrêté du 2 mars")
    await page.click("#adopt-form button[type=submit]")
    await expect(rows).to_have_count(1)
    await expect(page.locator("#adopt-panel")).to_be_hidden()
    answer = await page.context.request.get(f"{hub.web.url}/api/cameras")
    cameras = {c["id"]: c for c in (await answer.json())["cameras"]}
    adopted = cameras["disc-csuhub-simcam-1"]
    assert adopted["origin"] == "adopted" and adopted["name"] == "Marché de Wazemmes"
    assert adopted["authorization"]["reference"] == "AP-2026-0042"
    assert adopted["authorization"]["issued"] == "2020-01-01"
    assert adopted["authorization"]["expires"] == expires
    assert adopted["location"]["district"] == "Wazemmes"
    assert adopted["location"]["lat"] == pytest.approx(50.62835)
    trail = await hub.store.audit_trail.entries(action="camera.adopt", limit=10)
    assert [e["outcome"] for e in trail] == ["refused", "started", "ok"]
    assert all(e["actor"] == "ada" for e in trail)
    # the browser logs the refused request (422) itself; nothing else went wrong
    unexpected = [e for e in page.errors if "422" not in e]  # type: ignore[attr-defined]
    assert unexpected == []


async def test_french_and_the_refusal(hub: Any, chromium: Any) -> None:
    await person(hub, "ada", "admin")
    await person(hub, "sam", "supervisor")
    page = await login(chromium, hub, "ada", lang="fr", next_page="/panel/discovery")
    assert await page.locator("html").get_attribute("lang") == "fr"
    assert "Lancer la recherche" in await page.locator("#scan").inner_text()
    assert "Aucune caméra" in await page.locator("#none-found").inner_text()
    assert page.errors == []  # type: ignore[attr-defined]
    other = await login(chromium, hub, "sam", lang="en")
    assert "Discovery" not in await other.locator("nav").inner_text()
    answer = await other.goto(f"{hub.web.url}/panel/discovery")
    assert answer is not None and answer.status == 403
