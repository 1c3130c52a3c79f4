"""The kiosk player's close codes (docs/live.md): 4003 is final (the reason
shown, no reconnection loop), 1013 retries slowly, anything else on the
normal backoff. Chromium runs the real module against a scripted WebSocket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CHROMIUM, CHROMIUM_ARGS

from csuhub.testing import make_hub
from csuhub.web.kiosk import assets_version

playwright = pytest.importorskip("playwright.async_api")

#: a WebSocket that closes with the code the test sets, and setTimeout spied on
SCRIPT = """async ([url, code, reason]) => {
    const opened = [];
    const waits = [];
    class FakeSocket {
        constructor(address) {
            opened.push(address);
            setTimeout(() => this.onclose && this.onclose({ code, reason }), 10);
        }
        close() {}
        send() {}
    }
    window.WebSocket = FakeSocket;
    const realTimeout = window.setTimeout.bind(window);
    window.setTimeout = (fn, ms) => { waits.push(ms); return realTimeout(fn, Math.min(ms, 50)); };
    const { Player } = await import(url);
    const states = [];
    const video = document.createElement("video");
    const player = new Player(video, "cam-a", "sub", (s, d) => states.push([s, d]));
    player.start();
    await new Promise((done) => realTimeout(done, 600));
    player.stop();
    return { opened: opened.length, waits: waits.filter((w) => w >= 1000), states,
             title: video.title };
}"""


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium missing: run ./scripts/install.sh --test")
    async with (
        make_hub(tmp_path / "hub", {}, web=True, sweeping=False) as hub,
        playwright.async_playwright() as driver,
    ):
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser, hub.web.url
        await browser.close()


async def _run(page: Any, code: int, reason: str) -> dict[str, Any]:
    """A fresh page each time: the module and the patched globals start clean."""
    browser, base = page
    opened = await browser.new_page()
    await opened.goto(f"{base}/wall/login")
    url = f"/static/kiosk/{assets_version()}/player.js"
    try:
        return await opened.evaluate(SCRIPT, [url, code, reason])  # type: ignore[no-any-return]
    finally:
        await opened.close()


async def test_a_refused_socket_is_final_and_says_why(page: Any) -> None:
    got = await _run(page, 4003, "the camera is no longer in the viewer's scope")
    assert got["opened"] == 1 and got["waits"] == []  # no reconnection
    assert got["states"] == [["offline", "the camera is no longer in the viewer's scope"]]
    assert got["title"] == "the camera is no longer in the viewer's scope"


async def test_a_busy_hub_is_retried_slowly_and_a_drop_on_the_backoff(page: Any) -> None:
    busy = await _run(page, 1013, "too many live streams")
    assert busy["opened"] > 1 and min(busy["waits"]) >= 20_000, busy
    dropped = await _run(page, 1006, "")
    assert dropped["opened"] > 1 and dropped["waits"][0] == 1000, dropped
    assert dropped["states"][0] == ["offline", "connection"]
