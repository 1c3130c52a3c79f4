"""``csuhub demo`` as issue 14's "done" says: its kiosk page plays the simulated
cameras live in a real browser, and its spotlight screen reacts to a call from
the demo's webhook line."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import CHROMIUM, CHROMIUM_ARGS
from test_kiosk import SHOWN, shoot, wait_playing

playwright = pytest.importorskip("playwright.async_api")

#: Rue de la Monnaie (Vieux-Lille): cam-vieux-lille is the nearest demo camera
CALL_AT = {"lat": 50.64015, "lon": 3.06305}


def _events(proc: subprocess.Popen[str], timeout: float = 90) -> list[dict[str, Any]]:
    """The demo's JSON lines until its kiosks are printed and every camera is online."""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        events.append(json.loads(line))
        online = {
            e["camera_id"]
            for e in events
            if e.get("event") == "camera_state_changed" and e["new_state"] == "online"
        }
        kiosks = [e for e in events if e.get("event") == "kiosk"]
        if len(online) >= 4 and len(kiosks) == 2:
            return events
    raise AssertionError(f"the demo never got ready: {events[-20:]}")


def _post_call(url: str, secret: str) -> dict[str, Any]:
    body = json.dumps({"external_id": "wall-1", "location": CALL_AT, "priority": "high"}).encode()
    ts = str(int(time.time()))
    sig = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Csuhub-Timestamp": ts,
            "X-Csuhub-Signature": f"sha256={sig}",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 201
        return json.loads(resp.read())


async def test_the_demo_wall_plays_live_and_follows_a_call(
    cli_env: dict[str, str], tmp_path: Path, ffmpeg_bin: str
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium missing: run ./scripts/install.sh --test")
    proc = subprocess.Popen(
        [sys.executable, "-m", "csuhub", "demo", "--data", str(tmp_path / "d"), "--port", "0",
         "--json"],
        env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        events = _events(proc)
        kiosks = {e["screen"]: e["url"] for e in events if e.get("event") == "kiosk"}
        cad = next(e for e in events if e.get("line") == "cad")
        secret = Path(cad["secret_file"]).read_text().strip()
        async with playwright.async_playwright() as driver:
            browser = await driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = await browser.new_context(viewport={"width": 960, "height": 540})
            grid = await context.new_page()
            await grid.goto(kiosks["ecran-1"])
            assert "token=" not in grid.url
            await wait_playing(grid, 4, timeout=30_000)
            await shoot(grid, "demo-grid")
            spot = await context.new_page()
            await spot.goto(kiosks["appels"])
            await spot.wait_for_function(f"() => ({SHOWN})() === 'cam-grand-place'", timeout=15_000)
            answer = _post_call(cad["url"], secret)
            nearest = [c["id"] for c in answer["cameras"]]
            assert nearest[0] == "cam-vieux-lille"
            started = time.monotonic()
            await spot.wait_for_function(
                f"want => ({SHOWN})().startsWith(want)", arg=nearest[0], timeout=2_000
            )
            assert time.monotonic() - started < 2.5
            await wait_playing(spot, len(nearest), timeout=20_000)
            await shoot(spot, "demo-spotlight")
            await browser.close()
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
