"""What the panel's Chromium tests share (the browser itself is the
``chromium`` fixture of conftest.py): people with passwords,
logging in through the real login page, screenshots kept as CI artifacts, and
the check that a page has no untranslated text.

Usage::

    from panel_helpers import person, login, shoot

    async def test_x(hub, chromium):  # chromium: the fixture of tests/conftest.py
        await person(hub, "olga", "operator")
        page = await login(chromium, hub, "olga", lang="en")
        await page.goto(f"{hub.web.url}/panel/cameras")
        await shoot(page, "cameras-list")
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from csuhub.security.accounts import Accounts
from csuhub.security.permissions import system_principal

playwright = pytest.importorskip("playwright.async_api")

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = Path(os.environ.get("ARTIFACTS_DIR") or ROOT / "artifacts") / "screenshots"
#: every test person's password (long enough for the hub's policy)
PASSWORD = "un mot de passe assez long pour le panneau"
#: an operator screen and a laptop
SCREEN = {"width": 1920, "height": 1080}
LAPTOP = {"width": 1366, "height": 768}


async def person(
    hub: Any, name: str, *roles: str, scope: Iterable[str] = ("*",), password: str = PASSWORD
) -> str:
    """A person account with ``roles`` and ``password``; its (normalised) name."""
    added = await Accounts(hub.store).add(
        system_principal("cli"), name, roles=roles, scope=scope, password=password
    )
    return added.user.name


async def login(
    browser: Any,
    hub: Any,
    name: str,
    *,
    password: str = PASSWORD,
    lang: str = "fr",
    viewport: dict[str, int] | None = None,
    next_page: str = "/panel/",
) -> Any:
    """A new browser context logged in through ``/panel/login``; its page,
    left on ``next_page``. Console errors fail the test that reads
    ``page.errors`` (a list kept on the page object)."""
    context = await browser.new_context(viewport=viewport or SCREEN, locale=lang)
    page = await context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda err: page.errors.append(str(err)))
    page.on(
        "console",
        lambda msg: page.errors.append(msg.text) if msg.type == "error" else None,
    )
    await page.goto(f"{hub.web.url}/panel/login?lang={lang}&next={next_page}")
    await page.fill("#user", name)
    await page.fill("#password", password)
    await page.click("#login button[type=submit]")
    await page.wait_for_url(f"{hub.web.url}{next_page}*")
    return page


async def shoot(page: Any, name: str) -> Path:
    """A screenshot kept as a CI artifact (docs/panel.md shows some of them)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"panel-{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
