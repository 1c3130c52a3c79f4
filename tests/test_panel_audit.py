"""The panel's audit and ethics pages in real Chromium on a real hub: the
figures drawn from a store seeded through its own functions, the audit search
and export, the chain's status before and after a row is edited in the SQLite
file, French and English; and that an auditor can reach no video URL from any
page they can open."""

from __future__ import annotations

import asyncio
import csv
import io
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from panel_helpers import login, person, shoot
from playwright.async_api import expect

from csuhub.audit.actions import OUTCOMES
from csuhub.panel.audit import MAX_LIMIT, search_filters
from csuhub.security.permissions import Principal, permissions_of
from csuhub.store import DATABASE
from csuhub.store.audited import Entry
from csuhub.testing import make_hub

#: what an auditor must never be offered: live video, footage, frames, snapshots
VIDEO_PATHS = ("/api/live", "/api/recordings", "/api/segments")


def _who(name: str, role: str) -> Principal:
    return Principal(
        name=name, kind="user", roles=(role,), permissions=permissions_of([role]), via="sess"
    )


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Any]:
    config = {"hub": {"timezone": "Europe/Paris"}, "cameras": []}
    async with make_hub(tmp_path / "hub", config, web=True, sweeping=False) as running:
        yield running


async def _seed(hub: Any) -> None:
    """Three cameras, three requisitions (two closed), three exports, two
    playback sessions, two mask lifts: through the store's and the workflow's
    own functions, as the hub writes them."""
    for camera, district in (("cam-a", "Centre"), ("cam-b", "Centre"), ("cam-c", "Fives")):
        location = {"lat": 50.63, "lon": 3.06, "district": district}
        await hub.store.upsert_camera(
            camera, name=camera, driver="rtsp", state="adopted", location=location
        )
    now = time.time()
    made = []
    for i in range(3):
        req = await hub.requisitions.create(
            {
                "reference": f"PV 2026/{i}",
                "service": "SLPJ Lille",
                "officer": "OPJ Martin",
                "legal_frame": "flagrant_delit",
                "cameras": ["cam-a"],
                "start": now - 7200,
                "end": now - 3600,
                "reason": "vol",
            },
            "sup",
        )
        made.append(req["id"])
    await hub.requisitions.close(made[0], "sup", "helped")
    await hub.requisitions.close(made[1], "sup", "not_helped")
    sup, op = _who("sam", "supervisor"), _who("olga", "operator")
    for reason in ("PV-1", "PV-1", "PV-2"):
        await hub.store.audit_event(sup, "recording.export", "cam-a", reason=reason)
    await hub.store.audit_event(sup, "recording.export", "cam-b", reason="x", outcome="refused")
    await hub.store.audit_event(
        op, "recording.view", "cam-a", reason="call", start=now - 9000, end=now - 3600
    )
    await hub.store.audit_event(
        sup, "recording.view", "cam-b", reason="call", start=now - 7200, end=now
    )
    for camera in ("cam-a", "cam-b"):
        lift = await hub.store.masks.create_lift(
            camera, "PV", None, "olga", 900, now, Entry(op, "mask.lift.request", camera)
        )
        if camera == "cam-a":
            entry = Entry(sup, "mask.lift.approve", camera)
            await hub.store.masks.decide(lift["id"], "sam", True, now, entry)


async def _bars(page: Any, chart: str) -> dict[str, float]:
    bars = page.locator(f'svg[data-chart="chart-{chart}"] g.bar')
    found = {}
    for i in range(await bars.count()):
        bar = bars.nth(i)
        found[await bar.get_attribute("data-label")] = float(await bar.get_attribute("data-value"))
    return found


async def test_an_auditor_sees_the_ethics_figures(hub: Any, chromium: Any) -> None:
    await _seed(hub)
    await person(hub, "aude", "auditor")
    page = await login(chromium, hub, "aude", lang="en", next_page="/panel/audit/ethics")
    await page.wait_for_selector('svg[data-chart="chart-exports"]')
    assert await _bars(page, "exports") == {"PV-1": 2, "PV-2": 1}
    assert "1 refused" in await page.locator("#exp-total").inner_text()
    assert await _bars(page, "playback") == {"operator": 1.5, "supervisor": 2.0}
    assert await _bars(page, "req-status") == {"Closed": 2, "Footage held": 1}
    assert await _bars(page, "req-outcome") == {"Helped the inquiry": 1, "Did not help": 1}
    assert await _bars(page, "masks") == {"Approved": 1, "Requested": 1}
    assert await _bars(page, "coverage") == {"Centre": 2, "Fives": 1}
    assert sum((await _bars(page, "req-months")).values()) == 3
    # each chart is an image named by its caption, with its data table beside it
    chart = page.locator('svg[data-chart="chart-exports"]')
    assert await chart.get_attribute("role") == "img"
    assert "Exports by stated reason" in await chart.locator("title").text_content()
    rows = await page.locator("#tab-exports tbody tr").all_inner_texts()
    assert [r.split("\t") for r in rows] == [["PV-1", "2"], ["PV-2", "1"]]
    await shoot(page, "ethics")
    # a period with nothing in it, then a wrong one: said, and the default shown
    await page.goto(f"{hub.web.url}/panel/audit/ethics?from=2020-01-01&to=2020-02-01")
    assert await page.locator("svg[data-chart=chart-exports]").count() == 0
    await page.goto(f"{hub.web.url}/panel/audit/ethics?from=2020-02-01&to=2020-01-01")
    assert await page.locator("#period-error").is_visible()
    # French
    await page.goto(f"{hub.web.url}/panel/audit/ethics?lang=fr")
    await page.wait_for_selector('svg[data-chart="chart-exports"]')
    assert await _bars(page, "req-outcome") == {"A aidé l'enquête": 1, "N'a pas aidé": 1}
    assert "Exportations" in await page.locator("#exp-title").inner_text()
    assert page.errors == []  # type: ignore[attr-defined]


async def _links(page: Any) -> list[str]:
    return await page.eval_on_selector_all(
        "[href], [src], form[action], [data-src], [poster]",
        """nodes => nodes.flatMap(n => ['href', 'src', 'action', 'data-src', 'poster']
              .map(a => n.getAttribute(a)).filter(Boolean))""",
    )


def _own_module(url: str) -> bool:
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    return name.startswith(("audit", "charts", "panel")) and name.endswith(".js")


def _is_video(url: str) -> bool:
    path = urlsplit(url).path
    return path.startswith(VIDEO_PATHS) or "snapshot" in path or "frame" in path


async def test_no_video_url_is_reachable_by_an_auditor(hub: Any, chromium: Any) -> None:
    await _seed(hub)
    await person(hub, "aude", "auditor")
    page = await login(chromium, hub, "aude", lang="en")
    base = hub.web.url
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    todo, seen, offered = ["/panel/"], set(), set()
    while todo:  # every page the auditor can open, from the home page down
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        answer = await page.goto(urljoin(base, path))
        assert answer is not None and answer.status == 200, path
        await page.wait_for_load_state("networkidle")
        assert await page.locator("video, img, canvas, iframe").count() == 0, path
        for link in await _links(page):
            url = urljoin(urljoin(base, path), link)
            offered.add(url)
            parts = urlsplit(url)
            if parts.netloc == urlsplit(base).netloc and parts.path.startswith("/panel/"):
                if not parts.path.startswith("/panel/static/") and "lang=" not in url:
                    todo.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    assert {"/panel/audit", "/panel/audit/ethics"} <= seen
    assert asked and offered
    assert [u for u in [*asked, *offered] if _is_video(u)] == []
    mine = [u for u in asked if "/panel/static/" in u and _own_module(u)]
    assert mine
    for url in mine:  # this area's modules name none either
        text = await (await page.context.request.get(url)).text()
        assert not any(p in text for p in VIDEO_PATHS) and "snapshot" not in text, url
    for path in (
        "/api/live/cam-a",
        "/api/recordings/cam-a",
        "/api/recordings/cam-a/play.mp4?from=1&to=2",
        "/api/recordings/cam-a/frame.jpg?at=1",
        "/api/segments/1.mp4",
        "/api/cameras/cam-a/snapshot.jpg",
    ):
        answer = await page.context.request.get(urljoin(base, path))
        assert answer.status == 403, path
    assert page.errors == []  # type: ignore[attr-defined]


async def test_audit_search_export_and_the_chain(hub: Any, chromium: Any) -> None:
    alice, bob = _who("alice", "operator"), _who("bob", "supervisor")
    await hub.store.audit_event(alice, "camera.ptz", "cam-a", pan=0.5)
    await hub.store.audit_event(alice, "camera.ptz", "cam-b", outcome="refused", why="no")
    edited = await hub.store.audit_event(bob, "incident.open", "incident:1")
    await person(hub, "aude", "auditor")
    page = await login(chromium, hub, "aude", lang="en", next_page="/panel/audit?actor=alice")
    status = page.locator("#chain-status")
    assert await status.get_attribute("data-ok") == "true"
    assert "Intact" in await status.inner_text()
    rows = page.locator("#audit-results tbody tr")
    await expect(rows).to_have_count(2)
    assert await page.input_value("#f-actor") == "alice"
    assert set(await page.locator("#audit-results tbody tr td:nth-child(3)").all_inner_texts()) == {
        "alice"
    }
    await page.select_option("#f-outcome", "refused")
    await page.click("#audit-search button[type=submit]")
    await expect(rows).to_have_count(1)
    assert "cam-b" in await rows.first.inner_text()
    assert "outcome=refused" in page.url and "actor=alice" in page.url
    await page.fill("#f-actor", "")
    await page.select_option("#f-outcome", "")
    await page.fill("#f-action", "incident.open")
    await page.click("#audit-search button[type=submit]")
    await expect(rows.first.locator("td:nth-child(5)")).to_have_text("incident.open")
    await expect(rows).to_have_count(1)
    await shoot(page, "audit")
    # the export of a period: a CSV file with the hash columns
    await page.fill("#f-from", "2020-01-01T00:00:00")
    await page.fill("#f-to", "2099-01-01T00:00:00")
    async with page.expect_download() as waiting:
        await page.click("#audit-export")
    download = await waiting.value
    text = Path(await download.path()).read_text("utf-8")
    table = list(csv.DictReader(io.StringIO(text)))
    assert {"hash", "prev_hash", "actor"} <= set(table[0])
    assert {"alice", "bob"} <= {r["actor"] for r in table}
    searches = await hub.store.audit_trail.entries(action="audit.search", limit=50)
    assert searches and all(e["actor"] == "aude" for e in searches)
    # a row edited in the SQLite file: the chain is broken there
    conn = sqlite3.connect(hub.data_dir / DATABASE, isolation_level=None, timeout=10)
    try:
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("UPDATE audit_log SET target='incident:2' WHERE id=?", (edited,))
    finally:
        conn.close()
    await page.goto(f"{hub.web.url}/panel/audit")  # the last check is kept a while
    assert await status.get_attribute("data-ok") == "true"
    async with page.expect_navigation():
        await page.click("#chain button[type=submit]")  # check now
    assert await status.get_attribute("data-ok") == "false"
    assert await status.get_attribute("data-broken") == str(edited)
    assert f"broken at entry {edited}" in await status.inner_text()
    await shoot(page, "audit-broken")
    # French
    await page.goto(f"{hub.web.url}/panel/audit?lang=fr&check=now")
    assert f"rompue à l'entrée {edited}" in await status.inner_text()
    assert "Rechercher" in await page.locator("#audit-search").inner_text()
    assert page.errors == []  # type: ignore[attr-defined]


async def test_other_roles_are_refused(hub: Any, chromium: Any) -> None:
    await person(hub, "olga", "operator")
    page = await login(chromium, hub, "olga", lang="en")
    assert "Audit and ethics" not in await page.locator("nav").inner_text()
    for path in ("/panel/audit", "/panel/audit/ethics"):
        answer = await page.goto(f"{hub.web.url}{path}")
        assert answer is not None and answer.status == 403
        assert "Not allowed" in await page.locator("h1").inner_text()


_QUERY_KEYS = st.sampled_from(["actor", "action", "target", "from", "to", "outcome", "limit", "x"])


@given(st.dictionaries(_QUERY_KEYS, st.text(max_size=260)))
def test_search_filters_keep_only_what_the_api_takes(query: dict[str, str]) -> None:
    filters = search_filters(query)
    assert set(filters.values) <= {"actor", "action", "target", "from", "to", "outcome", "limit"}
    for key in ("actor", "action", "target"):
        if key in filters.values:
            text = filters.values[key]
            assert 0 < len(text) <= 200
            assert not any(ord(c) < 32 or ord(c) == 127 for c in text)
    if "outcome" in filters.values:
        assert filters.values["outcome"] in OUTCOMES
    if "limit" in filters.values:
        assert 1 <= int(filters.values["limit"]) <= MAX_LIMIT
    for key in ("from", "to"):
        if key in filters.values:
            assert len(filters.values[key]) >= 16 and filters.values[key][10] == "T"
    assert set(filters.errors) <= set(query)


@given(
    st.datetimes(),
    st.sampled_from(["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]),
)
def test_the_form_s_times_are_kept(moment: Any, fmt: str) -> None:
    text = moment.strftime(fmt)
    if len(text.split("-")[0]) != 4:
        return
    assert search_filters({"from": text}).values == {"from": text}


async def test_the_chain_check_reads_the_file_read_only(tmp_path: Path) -> None:
    """The page's check on a path with URI characters in it; it never writes."""
    from csuhub.panel.audit import check_chain
    from csuhub.store import Store

    folder = tmp_path / "a #b?c"
    store = Store(folder / DATABASE)
    await store.open()
    try:
        first = await store.audit("cli", "user.add", "olga")
        await store.audit("cli", "user.add", "sam")
    finally:
        await store.close()
    before = (folder / DATABASE).stat().st_mtime_ns
    report = check_chain(folder / DATABASE, folder)
    assert report["ok"] and report["entries"] == 2
    assert (folder / DATABASE).stat().st_mtime_ns == before
    conn = sqlite3.connect(folder / DATABASE, isolation_level=None)
    conn.execute("DROP TRIGGER audit_log_no_update")
    conn.execute("UPDATE audit_log SET target='mallory' WHERE id=?", (first,))
    conn.close()
    report = check_chain(folder / DATABASE, folder)
    assert not report["ok"] and report["broken"]["id"] == first


async def test_queued_checks_share_one_walk(tmp_path: Path, monkeypatch: Any) -> None:
    """Ten "check now" at once walk the chain once, not ten times in a row."""
    import threading

    import csuhub.panel.audit as audit

    walks = []
    gate = threading.Event()

    def slow_check(database: Path, data_dir: Path) -> dict[str, Any]:
        walks.append(database)
        gate.wait(5)
        return {"ok": True, "entries": len(walks), "broken": None}

    monkeypatch.setattr(audit, "check_chain", slow_check)
    checks = audit.ChainChecks()
    first = asyncio.create_task(checks.status(tmp_path / "db", tmp_path, fresh=True))
    await asyncio.sleep(0.05)  # the first walk is under way; nine more ask meanwhile
    others = [
        asyncio.create_task(checks.status(tmp_path / "db", tmp_path, fresh=True)) for _ in range(9)
    ]
    await asyncio.sleep(0.05)
    gate.set()
    done = await asyncio.gather(first, *others)
    assert len(walks) == 2  # the one under way, then one for all who asked during it
    assert len({id(d) for d in done[1:]}) == 1
    again = await checks.status(tmp_path / "db", tmp_path, fresh=True)  # asked after: walks
    assert len(walks) == 3 and again.report["entries"] == 3
