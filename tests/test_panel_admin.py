"""The panel's administration pages in real Chromium, against a hub started
from a site file on disk (so that check and reload read a real file): a
failed plugin and its reason, a broken site file's errors at ``site.yaml:line``,
people, roles and tokens (a secret shown once), sessions; and the two JSON
routes they added (``/api/plugins``, ``/api/config/check``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from panel_helpers import LAPTOP, login, person, shoot

from csuhub.api import hookimpl
from csuhub.hub import Hub
from csuhub.plugins import make_plugin_manager
from csuhub.testing import api_token, stop_sweeper

SITE = """\
hub:
  name: CSU test
  web: {host: 127.0.0.1, port: 0}
plugins:
  disabled: [zeroconf]
cameras: []
"""
#: line 5 is the error: an unknown key under hub
BROKEN = """\
hub:
  name: CSU test
  web: {host: 127.0.0.1, port: 0}
cameras: []
retension: 14d
"""


class Broken:
    """A vendor plugin whose SDK is missing: it raises when the hub collects it."""

    @hookimpl
    def register_camera_drivers(self, hub: Any) -> list[Any]:
        raise RuntimeError("vendor SDK missing")


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    site = tmp_path / "site.yaml"
    site.write_text(SITE)
    pm = make_plugin_manager(disabled=["zeroconf"], plugins=[("broken-vendor", Broken())])
    running = Hub.from_file(site, data_dir=tmp_path / "data", pm=pm, web=True)
    await running.start()
    try:
        await stop_sweeper(running)
        yield running
    finally:
        await running.stop("test finished")


async def _get(url: str, token: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
            return resp.status, await resp.json()


async def test_plugins_and_config_check_over_the_api(hub: Hub) -> None:
    admin, operator = await api_token(hub, "admin"), await api_token(hub, "operator")
    status, body = await _get(f"{hub.web.url}/api/plugins", admin)
    assert status == 200
    states = {p["name"]: (p["state"], p["reason"]) for p in body["plugins"]}
    assert states["broken-vendor"][0] == "failed"
    assert "vendor SDK missing" in states["broken-vendor"][1]
    assert states["zeroconf"][0] == "disabled"
    simcam = next(p for p in body["plugins"] if p["name"] == "simcam")
    assert simcam["state"] == "loaded" and "camera_driver:simcam" in simcam["provides"]
    assert (await _get(f"{hub.web.url}/api/plugins", operator))[0] == 403
    status, body = await _get(f"{hub.web.url}/api/config/check", admin)
    assert status == 200 and body["valid"] is True and body["errors"] == []
    Path(hub.config.source).write_text(BROKEN)  # type: ignore[arg-type]
    status, body = await _get(f"{hub.web.url}/api/config/check", admin)
    assert status == 200 and body["valid"] is False
    (error,) = body["errors"]
    assert error["line"] == 5 and error["file"].endswith("site.yaml")
    assert "site.yaml:5:1: retension: unknown key" in error["text"]
    assert hub.config.data.get("retension") is None  # nothing applied
    assert (await _get(f"{hub.web.url}/api/config/check", operator))[0] == 403


async def test_config_error_at_file_line_and_failed_plugin(hub: Hub, chromium: Any) -> None:
    await person(hub, "adele", "admin")
    page = await login(chromium, hub, "adele", lang="en", next_page="/panel/admin")
    row = page.locator("#plugins tr[data-plugin=broken-vendor]")
    assert await row.get_attribute("data-state") == "failed"
    assert "vendor SDK missing" in await row.locator(".reason").inner_text()
    assert (
        await page.locator("#plugins tr[data-plugin=zeroconf]").get_attribute("data-state")
        == "disabled"
    )
    await page.click("#config-check")
    await page.locator("#config-result .ok").wait_for()
    Path(hub.config.source).write_text(BROKEN)  # type: ignore[arg-type]
    await page.click("#config-check")
    await page.locator("#config-result .issues").wait_for()
    text = await page.locator("#config-result").inner_text()
    assert "site.yaml:5:1" in text and "retension" in text and "nothing was applied" in text
    await page.click("#config-reload")
    await page.locator("#config-result", has_text="Reload refused").wait_for()
    assert "site.yaml:5" in await page.locator("#config-result").inner_text()
    await shoot(page, "admin-config-error")
    # the file fixed, the reload applies it
    Path(hub.config.source).write_text(SITE)  # type: ignore[arg-type]
    await page.click("#config-reload")
    await page.locator("#config-result .ok").wait_for()
    actions = [r.action for r in await hub.store.audit_records(limit=100)]
    assert "config.reload_refused" in actions and "config.reload" in actions
    # the refused reload's 422 is the API's answer, which Chromium logs; nothing else
    unexpected = [e for e in page.errors if "status of 422" not in e]  # type: ignore[attr-defined]
    assert unexpected == []


async def test_users_roles_tokens_and_sessions(hub: Hub, chromium: Any) -> None:
    await person(hub, "adele", "admin")
    page = await login(chromium, hub, "adele", lang="en", next_page="/panel/admin/users")
    page.on("dialog", lambda dialog: dialog.accept())
    await page.fill("#new-name", "olga")
    await page.select_option("#new-role", "operator")
    await page.click("#add-user button[type=submit]")
    secret = page.locator("#secret-value")
    await secret.wait_for()
    assert len(await secret.inner_text()) >= 12  # the generated password, shown once
    row = page.locator("#users-table tr[data-user=olga]")
    await row.wait_for()
    await row.locator("select[name=role]").select_option("supervisor")
    await row.locator("button[data-action=grant]").click()
    await page.locator("#users-table tr[data-user=olga] .roles", has_text="supervisor").wait_for()
    user = await hub.store.users.get("olga")
    assert user is not None and set(user.roles) == {"operator", "supervisor"}
    await shoot(page, "admin-users")
    row = page.locator("#users-table tr[data-user=olga]")
    await row.locator("button[data-action=disable]").click()
    await page.locator("#users-table tr[data-user=olga] .badge.bad").wait_for()
    # a token: its secret once, then only its name
    await page.click("a[href='/panel/admin/tokens']")
    await page.fill("#token-name", "cad-desk")
    await page.select_option("#token-role", "operator")
    await page.click("#add-token button[type=submit]")
    await page.locator("#secret-value").wait_for()
    token = await page.locator("#secret-value").inner_text()
    assert (await _get(f"{hub.web.url}/api/cameras", token))[0] == 200
    await page.reload()
    assert token not in await page.content()  # never shown again
    await page.locator("tr[data-token=cad-desk] button[data-action=revoke-token]").click()
    await page.locator("tr[data-token=cad-desk] .badge.bad").wait_for()
    assert (await _get(f"{hub.web.url}/api/cameras", token))[0] == 401
    # sessions: someone else's ended
    await person(hub, "paul", "operator")
    other = await login(chromium, hub, "paul")
    await page.click("a[href='/panel/admin/sessions']")
    await page.locator("#sessions-table th", has_text="paul").wait_for()
    await page.locator("tr:has(th:text('paul')) button[data-action=end-session]").click()
    await page.locator("#sessions-table th", has_text="paul").wait_for(state="detached")
    await other.goto(f"{hub.web.url}/panel/")  # no session any more: to the login
    assert "/panel/login" in other.url
    actions = {r.action for r in await hub.store.audit_records(limit=200)}
    assert {"user.add", "user.grant", "user.disable", "token.create", "token.revoke"} <= actions
    assert "session.end" in actions
    assert page.errors == []  # type: ignore[attr-defined]


async def test_french_laptop_and_refusals(hub: Hub, chromium: Any) -> None:
    await person(hub, "adele", "admin")
    await person(hub, "olga", "operator")
    page = await login(chromium, hub, "adele", viewport=LAPTOP, next_page="/panel/admin")
    assert "Extensions et configuration" in await page.locator(".tabs").inner_text()
    assert "échoué" in await page.locator("#plugins").inner_text()
    for sub in ("users", "tokens", "sessions"):
        await page.goto(f"{hub.web.url}/panel/admin/{sub}")
        assert await page.locator("html").get_attribute("lang") == "fr"
    await shoot(page, "admin-sessions-fr")
    operator = await login(chromium, hub, "olga", lang="en")
    assert "Administration" not in await operator.locator("header").inner_text()
    assert operator.errors == []  # type: ignore[attr-defined]
    for sub in ("", "/users", "/tokens", "/sessions"):
        answer = await operator.goto(f"{hub.web.url}/panel/admin{sub}")
        assert answer is not None and answer.status == 403
    assert page.errors == []  # type: ignore[attr-defined]
