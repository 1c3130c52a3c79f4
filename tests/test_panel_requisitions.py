"""The panel's requisition pages in real Chromium against a real hub with real
footage: the requisition officer registers a requisition, exports it,
downloads the package and the receipt, ``csuhub verify --key`` accepts the
package, the fingerprint shown is the hub key's; hand-over and close with the
outcome; who may only read sees no form; French and English."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from panel_helpers import login, person, shoot
from test_panel_playback import CAMERA, T0, real_footage

from csuhub.recording.signing import fingerprint, public_pem
from csuhub.testing import make_hub


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Any]:
    async with make_hub(tmp_path / "hub", {"cameras": []}, web=True, sweeping=False) as running:
        await real_footage(running, tmp_path / "footage")
        yield running


async def _status(page: Any) -> str:
    return str(await page.locator("#status").get_attribute("data-status"))


async def test_the_officer_registers_exports_hands_over_and_closes(
    hub: Any, chromium: Any, cli: Any, tmp_path: Path
) -> None:
    await person(hub, "rita", "requisition_officer")
    page = await login(chromium, hub, "rita", lang="fr", next_page="/panel/requisitions")
    key = hub.recording.signing_key
    assert await page.locator("#signer").inner_text() == fingerprint(key)
    assert "Aucune réquisition" in await page.locator("main").inner_text()
    await page.fill("#reference", "PV 2026/00042")
    await page.fill("#service", "Commissariat central de Lille")
    await page.fill("#officer", "Cdt Martin, OPJ")
    await page.select_option("#legal-frame", "flagrant_delit")
    await page.fill("#req-from", str(int(T0 - 30)))
    await page.fill("#req-to", str(int(T0 + 30)))
    await page.check(f"#cam-{CAMERA}")
    await page.fill("#req-reason", "rixe rue Neuve, 21 h 05")
    await page.click("#create-form button[type=submit]")
    await page.wait_for_url("**/panel/requisitions/*")
    assert await _status(page) == "held"
    scope = await page.locator("#scope").inner_text()
    assert "camera offline" in scope  # the gap and its reason, told at registration
    # export, then the package and the receipt as the officer downloads them
    await page.click("#export-form button[type=submit]")
    await page.locator("#packages a.package").first.wait_for(timeout=30_000)
    assert await _status(page) == "exported"
    async with page.expect_download() as waiting:
        await page.locator("#packages a.package").first.click()
    package = tmp_path / "package.zip"
    await (await waiting.value).save_as(package)
    async with page.expect_download() as waiting:
        await page.click("#receipt")
    receipt = tmp_path / "receipt.html"
    await (await waiting.value).save_as(receipt)
    assert fingerprint(key) in receipt.read_text(encoding="utf-8")
    pub = tmp_path / "hub.pub"
    pub.write_bytes(public_pem(key))
    checked = await asyncio.to_thread(cli, "verify", str(package), "--key", str(pub), "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    verdict = json.loads(checked.stdout)
    assert verdict["status"] == "intact" and verdict["signer"] == fingerprint(key)
    assert await page.locator("#signer").inner_text() == verdict["signer"]
    # hand-over, then close with the outcome
    await page.fill("#deliver-to", "Cdt Martin, commissariat central")
    await page.click("#deliver-form button[type=submit]")
    await page.locator("#delivered-to").wait_for()
    assert await _status(page) == "delivered"
    await page.select_option("#close-outcome", "helped")
    await page.click("#close-form button[type=submit]")
    await page.locator("#outcome").wait_for()
    assert await _status(page) == "closed"
    assert "ont aidé" in await page.locator("#outcome").inner_text()
    assert await page.locator("section.actions").count() == 0
    await shoot(page, "requisition")
    await page.goto(page.url + "?lang=en")
    assert "Handed over to" in await page.locator("main").inner_text()
    assert "The footage helped" in await page.locator("#outcome").inner_text()
    assert "Flagrante delicto" in await page.locator("main").inner_text()  # not in French
    entries = await hub.store.audit_trail.entries(target="requisition:1")
    actions = {e["action"] for e in entries if e["outcome"] == "ok"}
    assert {"requisition.export", "requisition.deliver", "requisition.close"} <= actions
    assert "requisition.download" in actions
    assert page.errors == []  # type: ignore[attr-defined]


async def test_who_only_reads_sees_no_form_and_an_operator_nothing(hub: Any, chromium: Any) -> None:
    from csuhub.security.permissions import system_principal

    await hub.requisitions.create(
        {
            "reference": "PV 7",
            "service": "SRPJ",
            "officer": "Lt Durand",
            "legal_frame": "enquete_preliminaire",
            "cameras": [CAMERA],
            "start": T0 - 30,
            "end": T0 + 30,
            "reason": "vol à l'arraché",
        },
        system_principal("cli"),
    )
    await person(hub, "sam", "supervisor")
    await person(hub, "olga", "operator")
    page = await login(chromium, hub, "sam", lang="en", next_page="/panel/requisitions")
    assert await page.locator("#create-form").count() == 0
    assert "PV 7" in await page.locator("#requisitions").inner_text()
    await page.click("text=PV 7")
    await page.wait_for_url("**/panel/requisitions/*")
    assert "Footage held" in await page.locator("#status").inner_text()
    assert await page.locator("section.actions").count() == 0
    assert await page.locator("#signer").count() == 1
    answer = await page.goto(f"{hub.web.url}/panel/requisitions/999")
    assert answer is not None and answer.status == 404
    operator = await login(chromium, hub, "olga", lang="fr")
    assert "Réquisitions" not in await operator.locator("nav").inner_text()
    answer = await operator.goto(f"{hub.web.url}/panel/requisitions")
    assert answer is not None and answer.status == 403
    for one in (page, operator):  # the refusals' own status lines aside
        refusals = [e for e in one.errors if "status of 40" in e]  # type: ignore[attr-defined]
        assert one.errors == refusals  # type: ignore[attr-defined]
