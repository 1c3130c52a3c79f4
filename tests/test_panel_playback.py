"""The panel's playback page in real Chromium against a real hub with real
footage (ffmpeg-encoded segments, indexed as the recorder indexes them): the
timeline, the reason asked before anything plays, the audit of the view, play
across a segment boundary, thumbnails, export with a reason; and the query
parser of the page and the export API's body parser (hypothesis)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import subprocess
import time
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from panel_helpers import login, person, shoot

from csuhub.panel.playback import MAX_SPAN, parse_range, runs
from csuhub.recording.layout import hour_dir
from csuhub.recording.signing import fingerprint
from csuhub.security.permissions import system_principal
from csuhub.testing import api_token, make_hub
from csuhub.web.exports import MAX_EXPORT, parse_export
from csuhub.web.validation import InputError

CAMERA = "cam-1"
#: the footage: segments of 2 s at T0 and T0 + 2, then a gap, then one at T0 + 10
T0 = float(int(time.time()) - 600)
STARTS = (0.0, 2.0, 10.0)
GAP_REASON = "camera offline: no answer to RTSP"


def encode_segments(work: Path) -> list[Path]:
    """Three 2 s H.264 segments of a test pattern (keyframe each second)."""
    clip = work / "clip.mp4"
    quiet = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
    subprocess.run(
        [*quiet, "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=10", "-t", "6",
         "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast", "-g", "10",
         str(clip)],
        check=True,
    )  # fmt: skip
    staging = work / "staging"
    staging.mkdir()
    subprocess.run(
        [*quiet, "-i", str(clip), "-c", "copy", "-f", "segment", "-segment_time", "2",
         "-reset_timestamps", "1", "-segment_format", "mp4", str(staging / "%03d.mp4")],
        check=True,
    )  # fmt: skip
    return sorted(staging.iterdir())


async def real_footage(hub: Any, work: Path, camera: str = CAMERA, t0: float = T0) -> None:
    """The camera in the register, and its footage indexed with a gap and its reason."""
    await hub.store.upsert_camera(
        camera, name="Grand-Place", driver="x", state="online", origin="adopted",
        location={"district": "Centre"},
    )  # fmt: skip
    work.mkdir(parents=True, exist_ok=True)
    root = hub.recording.storage_root()
    for offset, source in zip(STARTS, encode_segments(work), strict=True):
        start = t0 + offset
        folder = hour_dir(root, camera, start)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / time.strftime("%Y%m%dT%H%M%SZ.mp4", time.gmtime(start))
        source.rename(target)
        data = target.read_bytes()
        await hub.store.add_segment(
            camera,
            start=start,
            end=start + 2.0,
            size=len(data),
            path=target.relative_to(root).as_posix(),
            sha256=hashlib.sha256(data).hexdigest(),
            gap_reason=GAP_REASON if offset == 10.0 else None,
        )


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Any]:
    async with make_hub(tmp_path / "hub", {"cameras": []}, web=True, sweeping=False) as running:
        await real_footage(running, tmp_path / "footage")
        yield running


async def until(page: Any, script: str, timeout: float = 20.0) -> None:
    """Poll ``script`` (a function) in the page until it is true: the page's CSP
    forbids the eval that ``wait_for_function`` uses."""
    deadline = time.monotonic() + timeout
    while not await page.evaluate(script):
        if time.monotonic() > deadline:
            state = await page.evaluate(STATE)
            raise AssertionError(f"false after {timeout} s: {script}; {state} {page.errors}")
        await asyncio.sleep(0.2)


STATE = """() => { const v = document.getElementById('player');
  return {src: v.currentSrc, t: v.currentTime, ready: v.readyState, paused: v.paused,
          error: v.error && v.error.message, network: v.networkState}; }"""


def _media(url: str) -> bool:
    return any(part in url for part in ("/play.mp4", "/frame.jpg", "/api/segments/"))


async def test_reason_first_then_play_across_a_boundary_audited(hub: Any, chromium: Any) -> None:
    await person(hub, "olga", "operator")
    incident = await hub.incidents.open(system_principal("cli"), category="rixe", text="rue Neuve")
    await hub.incidents.bookmark(
        incident.id, CAMERA, T0 + 1, "suspect en rouge", system_principal("cli")
    )
    page = await login(chromium, hub, "olga", lang="en")
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    await page.goto(f"{hub.web.url}/panel/playback/{CAMERA}?from={T0 - 20:.0f}&to={T0 + 30:.0f}")
    # the timeline: two stretches (the two first segments joined), the gap and its reason
    assert await page.locator("#timeline rect.segment").count() == 2
    gaps = page.locator("#gaps tbody tr")
    assert await gaps.count() >= 1
    assert GAP_REASON in await page.locator("#gaps").inner_text()
    assert "Not recorded" in await page.locator("#gaps").inner_text()
    assert await page.locator("#timeline path.bookmark").count() == 1
    assert "suspect en rouge" in await page.locator("main").inner_text()
    # nothing plays before a reason, not even a click on the timeline
    await page.locator("#timeline").click(position={"x": 400, "y": 30})
    await page.locator("button.seek").first.click()
    assert await page.locator("#reason-error").is_visible()
    await shoot(page, "playback-reason")
    assert not [url for url in asked if _media(url)], asked
    assert await page.locator("#player").get_attribute("src") is None
    # the reason, then the video plays from the first segment into the second
    why = "réquisition orale OPJ: rixe rue Neuve"
    await page.fill("#reason", why)
    await page.click("#reason-form button[type=submit]")
    await until(page, "() => document.getElementById('player').currentTime > 2.3")
    assert any("/play.mp4" in url and "reason=" in url for url in asked)
    await page.locator("#thumbs img").first.wait_for()
    await until(
        page,
        "() => [...document.querySelectorAll('#thumbs img')]"
        ".every((i) => i.complete && i.naturalWidth > 0)",
    )
    shown = float(await page.locator("#now-showing").get_attribute("data-t") or 0)
    assert shown > T0 + 2.0  # the wall clock is past the first segment's end
    await shoot(page, "playback")
    views = await hub.store.audit_trail.entries(action="recording.view")
    assert views and all(e["reason"] == why and e["target"] == CAMERA for e in views)
    assert {e["outcome"] for e in views} >= {"started"} and views[0]["actor"] == "olga"
    frames = await hub.store.audit_trail.entries(action="recording.frame")
    assert frames and all(e["reason"] == why for e in frames)
    assert page.errors == []  # type: ignore[attr-defined]


async def test_export_with_a_reason(hub: Any, chromium: Any, tmp_path: Path) -> None:
    await person(hub, "sam", "supervisor")
    leftover = hub.data_dir / "exports" / ".sending-dead"  # a hub died mid-export
    leftover.mkdir(parents=True)
    (leftover / "cam-1.zip").write_bytes(b"footage")
    os.utime(leftover, (time.time() - 7 * 3600, time.time() - 7 * 3600))
    page = await login(chromium, hub, "sam", lang="fr")
    await page.goto(f"{hub.web.url}/panel/playback/{CAMERA}")
    assert "Pourquoi consultez-vous ces images" in await page.locator("main").inner_text()
    await page.fill("#export-from", str(T0))
    await page.fill("#export-to", str(T0 + 4))
    async with page.expect_download() as waiting:
        await page.fill("#export-reason", "PV 2026/118: rixe")
        await page.click("#export-form button[type=submit]")
    download = await waiting.value
    package = tmp_path / "export.zip"
    await download.save_as(package)
    with zipfile.ZipFile(io.BytesIO(package.read_bytes())) as archive:
        assert "manifest.json" in archive.namelist() and "video.mp4" in archive.namelist()
    done = page.locator("#export-done")
    await done.wait_for(state="visible")
    assert await done.get_attribute("data-signer") == fingerprint(hub.recording.signing_key)
    exports = await hub.store.audit_trail.entries(action="recording.export")
    assert [e["outcome"] for e in exports] == ["started", "ok"]
    assert all(e["reason"] == "PV 2026/118: rixe" and e["actor"] == "sam" for e in exports)
    assert not list((hub.data_dir / "exports").glob("**/*.zip"))  # the hub kept no copy
    assert not leftover.exists()
    assert page.errors == []  # type: ignore[attr-defined]


async def test_refusals_and_the_list(hub: Any, chromium: Any) -> None:
    await person(hub, "aude", "auditor")
    await person(hub, "nora", "operator", scope=("district:Nord",))
    await person(hub, "olga", "operator")
    page = await login(chromium, hub, "olga", lang="fr")
    await page.goto(f"{hub.web.url}/panel/playback")
    assert "Grand-Place" in await page.locator("main").inner_text()
    await page.goto(f"{hub.web.url}/panel/playback/{CAMERA}")
    assert await page.locator("#export-form").count() == 0  # no export.create
    answer = await page.goto(f"{hub.web.url}/panel/playback/no-such-cam")
    assert answer is not None and answer.status == 404
    assert "Introuvable" in await page.locator("main").inner_text()
    auditor = await login(chromium, hub, "aude", lang="en")
    answer = await auditor.goto(f"{hub.web.url}/panel/playback/{CAMERA}")
    assert answer is not None and answer.status == 403
    outside = await login(chromium, hub, "nora", lang="en")
    answer = await outside.goto(f"{hub.web.url}/panel/playback/{CAMERA}")
    assert answer is not None and answer.status == 404  # out of scope reads as unknown
    await outside.goto(f"{hub.web.url}/panel/playback")
    assert "Grand-Place" not in await outside.locator("main").inner_text()
    token = await api_token(hub, "operator")
    async with aiohttp.ClientSession() as http:  # the export API needs export.create
        async with http.post(
            f"{hub.web.url}/api/exports",
            json={"camera": CAMERA, "from": T0, "to": T0 + 2, "reason": "x"},
            headers={"Authorization": f"Bearer {token}"},
        ) as resp:
            assert resp.status == 403
    for one in (page, auditor, outside):  # the refusals' own status lines aside
        refusals = [e for e in one.errors if "status of 40" in e]  # type: ignore[attr-defined]
        assert one.errors == refusals  # type: ignore[attr-defined]


async def test_exports_beyond_the_running_ones_are_told_to_wait(hub: Any) -> None:
    """Two exports run at once per hub; a third is a 503 with Retry-After, and
    the hub takes exports again once one ends (no queue of CPU-heavy jobs)."""
    from csuhub.web.exports import BUSY_RETRY, MAX_RUNNING, _gate

    token = await api_token(hub, "supervisor")
    body = {"camera": CAMERA, "from": T0, "to": T0 + 2, "reason": "contrôle de charge"}
    gate = _gate(hub)
    for _ in range(MAX_RUNNING):
        await gate.acquire()  # as two long exports would
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.post(f"{hub.web.url}/api/exports", json=body) as resp:
            assert resp.status == 503
            assert resp.headers["Retry-After"] == str(BUSY_RETRY)
            assert "busy" in (await resp.json())["error"]
        gate.release()
        async with http.post(f"{hub.web.url}/api/exports", json=body) as resp:
            assert resp.status == 200 and (await resp.read())[:2] == b"PK"
    gate.release()


# -- the parsers ----------------------------------------------------------------------

TEXT = st.one_of(st.text(max_size=80), st.sampled_from(["2026-11-25T14:00", "1764075600", ""]))


@given(st.dictionaries(st.sampled_from(["from", "to", "x"]), TEXT, max_size=3))
def test_the_page_range_is_always_a_drawable_one(query: dict[str, str]) -> None:
    now = 1_764_075_600.0
    span = parse_range(query, "Europe/Paris", now)
    assert span.start < span.end and span.end - span.start <= MAX_SPAN


VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=40),
    st.sampled_from(["2026-11-25T14:00", "2026-11-25T14:30", "cam-1", "  "]),
)  # fmt: skip


@given(st.dictionaries(st.sampled_from(["camera", "from", "to", "reason", "extra"]), VALUE))
def test_the_export_body_is_checked_or_refused(body: dict[str, Any]) -> None:
    try:
        ask = parse_export(body, "Europe/Paris")
    except InputError as err:
        assert str(err)
        return
    assert 0 < ask.end - ask.start <= MAX_EXPORT
    assert ask.reason == ask.reason.strip() and ask.reason
    assert set(body) == {"camera", "from", "to", "reason"}


def test_an_export_body_that_is_right() -> None:
    ask = parse_export(
        {"camera": "cam-1", "from": "2026-11-25T14:00", "to": 1795615200, "reason": " PV 12 "},
        "Europe/Paris",
    )
    assert ask.camera == "cam-1" and ask.reason == "PV 12" and ask.end - ask.start == 3600
    with pytest.raises(InputError, match="at most"):
        parse_export({"camera": "c", "from": 0, "to": 4 * 3600, "reason": "r"}, "UTC")


def test_stretches_join_segments_that_follow_each_other() -> None:
    class Seg:
        def __init__(self, start: float, end: float, status: str = "ok") -> None:
            self.start, self.end, self.status = start, end, status

    found = runs([Seg(0, 2), Seg(2, 4), Seg(10, 12), Seg(12, 14, "damaged")], 1, 20)
    assert found == [(1, 4), (10, 12)]
