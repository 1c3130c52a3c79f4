"""``csuhub demo`` as issue 15's "done" says: it prints the panel's address and
an admin login, and every area of the panel opens on the simulated cameras, in
French and in English, without a console error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from panel_helpers import shoot
from test_demo_wall import _events

from csuhub.panel.render import NAV

playwright = pytest.importorskip("playwright.async_api")


async def test_the_demo_prints_the_panel_and_every_area_opens(
    cli_env: dict[str, str], tmp_path: Path, ffmpeg_bin: str, chromium: object
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "csuhub", "demo", "--data", str(tmp_path / "d"), "--port", "0",
         "--json"],
        env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        events = _events(proc)
        panel = next(e["url"] for e in events if e.get("event") == "panel")
        admin = next(e for e in events if e.get("event") == "first_admin")
        assert panel.endswith("/panel/")
        for lang in ("fr", "en"):
            context = await chromium.new_context(  # type: ignore[attr-defined]
                viewport={"width": 1366, "height": 768}, locale=lang
            )
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda err, into=errors: into.append(str(err)))
            page.on(
                "console",
                lambda msg, into=errors: into.append(msg.text) if msg.type == "error" else None,
            )
            await page.goto(f"{panel}login?lang={lang}")
            await page.fill("#user", admin["user"])
            await page.fill("#password", admin["password"])
            await page.click("#login button[type=submit]")
            await page.wait_for_url(panel)
            links = await page.locator("nav li a").evaluate_all("a => a.map(x => x.pathname)")
            assert links == [item.path for item in NAV]  # the admin opens every area
            for path in links:
                answer = await page.goto(f"{panel.removesuffix('/panel/')}{path}")
                assert answer is not None and answer.status == 200, (path, lang)
                assert await page.locator("html").get_attribute("lang") == lang
                assert await page.locator("h1").count() >= 1, path
                await page.wait_for_timeout(400)  # its modules ran (errors are collected)
                await shoot(page, f"demo-{lang}-{path.strip('/').replace('/', '-')}")
            assert errors == [], (lang, errors)
            await context.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
