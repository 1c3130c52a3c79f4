"""Shared fixtures. The plugin kit's fixtures (``hub_factory``, ``csuhub_hub``)
come from ``csuhub.testing`` through its pytest11 entry point."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def ffmpeg_bin() -> str:
    path = shutil.which("ffmpeg")
    if path is None:  # the README's install step provides it; CI must not silently skip
        pytest.fail("ffmpeg is not installed; run ./scripts/install.sh")
    return path


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "csuhub", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
    )


@pytest.fixture
def cli() -> Iterator[object]:
    yield run_cli


#: Debian's chromium, driven by Playwright (no browser download)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    """A headless Chromium for the panel's tests (tests/panel_helpers.py logs in)."""
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium missing: run ./scripts/install.sh --test")
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()
