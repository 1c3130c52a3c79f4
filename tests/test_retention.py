"""Retention with real files and real SQLite: policies, holds, the register, crashes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from retention_helpers import files, indexed, mount_tmpfs, pressure_site, rel_path, seed, unmount

from csuhub.events import RetentionAlert, RetentionSwept
from csuhub.hookspecs import hookimpl
from csuhub.hub import Hub
from csuhub.retention import destroy, sweep
from csuhub.security.tokens import hash_secret
from csuhub.store.retention import LEGAL, PRESERVE, MarkRequest
from csuhub.testing import build_hub, index_footage, registered_plugin, sweep_at

DAY = 86400.0
HOUR = 3600.0
AUTH = {"reference": "2022-VP-1", "issued": "2022-01-10", "expires": "2099-01-09"}
NOW = time.time() // 3600 * 3600  # a round hour, so day boundaries are predictable


def config(**retention: Any) -> dict[str, Any]:
    return {
        "hub": {"timezone": "UTC"},
        "retention": {"interval": "1h", **retention},
    }


async def started(tmp_path: Path, cfg: dict[str, Any] | None = None) -> Hub:
    hub = build_hub(tmp_path / "data", cfg or config())
    await hub.start()
    await asyncio.wait_for(hub.retention.swept.wait(), 10)  # the start-up sweep is done
    await hub.bus.drain()
    return hub


def db(hub: Hub) -> Path:
    return hub.data_dir / "csuhub.db"


async def test_max_age_destroys_exactly_what_is_older_and_registers_it(tmp_path: Path) -> None:
    hub = await started(tmp_path, config(default="14d"))
    root = hub.recording.storage_root()
    try:
        starts = [NOW - 15 * DAY + i * 120 for i in range(30)]  # 1 h of expired footage
        starts += [NOW - 13 * DAY + i * 120 for i in range(30)]  # kept
        seed(db(hub), root, [("cam-a", s) for s in starts])
        report = await hub.retention.sweep(now=NOW)
        assert report.segments == 30
        assert report.by_policy == {"max_age": 30}
        left = indexed(db(hub))
        assert left == files(root)
        assert all(int(p.rsplit("/", 1)[1][:-4]) >= NOW - 13 * DAY for p in left)
        register = await hub.store.retention.destructions("cam-a")
        assert len(register) == 1
        row = register[0]
        assert (row["policy"], row["segments"], row["bytes"]) == ("max_age", 30, 30 * 64)
        assert row["footage_start"] == starts[0]
        assert row["footage_end"] == starts[29] + 120
        assert row["day"] == time.strftime("%Y-%m-%d", time.gmtime(starts[0]))
        # empty hour folders went with their files
        assert not (root / rel_path("cam-a", starts[0])).parent.exists()
        # a second sweep finds nothing, and the register does not grow a line per sweep
        again = await hub.retention.sweep(now=NOW + 60)
        assert again.segments == 0
        assert len(await hub.store.retention.destructions()) == 1
    finally:
        await hub.stop()


async def test_forgotten_cameras_footage_still_expires(tmp_path: Path) -> None:
    hub = await started(tmp_path, config(default="7d"))
    try:
        seed(db(hub), hub.recording.storage_root(), [("gone", NOW - 8 * DAY)])
        report = await hub.retention.sweep(now=NOW)
        assert report.segments == 1
    finally:
        await hub.stop()


async def test_batches_span_cameras_and_a_refused_unlink_spares_only_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One commit per batch, not per camera; a file that cannot be unlinked stays
    indexed and reported, and everything else still goes."""
    monkeypatch.setattr(sweep, "BATCH", 7)
    hub = await started(tmp_path, config(default="14d"))
    root = hub.recording.storage_root()
    try:
        cams = [f"cam-{i}" for i in range(5)]
        seed(db(hub), root, [(c, NOW - 15 * DAY + i * 120) for c in cams for i in range(4)])
        seed(db(hub), root, [(c, NOW - 2 * DAY) for c in cams])  # kept
        stuck = rel_path("cam-3", NOW - 15 * DAY + 120)
        (root / stuck).unlink()
        (root / stuck).mkdir()  # unlink() of a directory fails: EISDIR
        (root / stuck / "x").write_bytes(b"")
        commits = []
        real = hub.store.retention.destroyed

        async def counting(*args: Any) -> None:
            commits.append(len(args[1]))
            await real(*args)

        monkeypatch.setattr(hub.store.retention, "destroyed", counting)
        report = await hub.retention.sweep(now=NOW)
        assert report.segments == 19
        assert report.by_policy == {"max_age": 19}
        assert len(report.failed) == 1 and stuck in report.failed[0]
        # 20 marked over 3 batches of at most 7 (not 5 cameras x 2 expiries = 10 commits)
        assert len(commits) == 3 and sum(commits) == 19 and max(commits) <= 7
        left = indexed(db(hub))
        assert left == {stuck} | {rel_path(c, NOW - 2 * DAY) for c in cams}
        register = await hub.store.retention.destructions()
        assert {r["camera_id"]: r["segments"] for r in register} == {
            "cam-0": 4,
            "cam-1": 4,
            "cam-2": 4,
            "cam-3": 3,
            "cam-4": 4,
        }
    finally:
        await hub.stop()


async def test_the_legal_cap_applies_with_no_policy_at_all(tmp_path: Path) -> None:
    hub = await started(tmp_path, {**config(), "retention": {"policies": [], "interval": "1h"}})
    try:
        seed(
            db(hub),
            hub.recording.storage_root(),
            [("cam-a", NOW - 31 * DAY), ("cam-a", NOW - 20 * DAY)],
        )
        report = await hub.retention.sweep(now=NOW)
        assert report.by_policy == {"legal_cap": 1}
    finally:
        await hub.stop()


async def test_holds_win_preservation_until_the_cap_legal_beyond(tmp_path: Path) -> None:
    hub = await started(tmp_path, config(default="14d"))
    root = hub.recording.storage_root()
    try:
        old = NOW - 20 * DAY
        ancient = NOW - 40 * DAY
        seed(
            db(hub),
            root,
            [
                ("cam-a", old),
                ("cam-b", old),
                ("cam-c", ancient),
                ("cam-d", ancient),
                ("cam-e", old),
            ],
        )
        await hub.store.retention.place(
            ["cam-a", "cam-c"],
            0,
            NOW,
            level=PRESERVE,
            kind="manual",
            ref="flag-1",
            reason="t",
            actor="t",
        )
        await hub.store.retention.place(
            ["cam-b", "cam-d"],
            0,
            NOW,
            level=LEGAL,
            kind="requisition",
            ref="99",
            reason="t",
            actor="t",
        )
        await hub.retention.sweep(now=NOW)
        left = {p.split("/")[0] for p in indexed(db(hub))}
        # cam-a: preserved, within the cap; cam-b, cam-d: requisition; cam-c: past the cap
        assert left == {"cam-a", "cam-b", "cam-d"}
        assert left == {p.split("/")[0] for p in files(root)}
        policies = {r["camera_id"]: r["policy"] for r in await hub.store.retention.destructions()}
        assert policies == {"cam-c": "legal_cap", "cam-e": "max_age"}
        # releasing the requisition hands the footage back: destroyed at the next sweep
        await hub.store.retention.release("requisition", "99", "t")
        await hub.retention.sweep(now=NOW)
        assert {p.split("/")[0] for p in indexed(db(hub))} == {"cam-a"}
    finally:
        await hub.stop()


async def test_releasing_a_hold_leaves_the_strongest_remaining_one(tmp_path: Path) -> None:
    hub = await started(tmp_path)
    try:
        seed(db(hub), hub.recording.storage_root(), [("cam-a", NOW - 20 * DAY)])
        for level, kind, ref in ((PRESERVE, "incident", "5"), (LEGAL, "requisition", "99")):
            await hub.store.retention.place(
                ["cam-a"],
                NOW - 21 * DAY,
                NOW,
                level=level,
                kind=kind,
                ref=ref,
                reason="t",
                actor="t",
            )
        await hub.store.retention.release("requisition", "99", "t")
        con = sqlite3.connect(db(hub))
        row = con.execute("SELECT hold, hold_reason FROM segments").fetchone()
        con.close()
        assert tuple(row) == (PRESERVE, "incident 5")
        await hub.store.retention.release("incident", "5", "t")
        assert [(s.hold, s.hold_reason) for s in await hub.store.segments("cam-a")] == [
            (False, None)
        ]
    finally:
        await hub.stop()


async def test_footage_recorded_inside_an_active_hold_is_held(tmp_path: Path) -> None:
    hub = await started(tmp_path)
    try:
        await hub.store.retention.place(
            ["cam-a"],
            NOW - HOUR,
            NOW + HOUR,
            level=LEGAL,
            kind="requisition",
            ref="1",
            reason="t",
            actor="t",
        )
        await hub.store.add_segment(
            "cam-a", start=NOW, end=NOW + 60, size=1, path="a.mp4", sha256=None
        )
        await hub.store.add_segment(
            "cam-a",
            start=NOW + 2 * HOUR,
            end=NOW + 2 * HOUR + 60,
            size=1,
            path="b.mp4",
            sha256=None,
        )
        held = {s.path: s.hold for s in await hub.store.segments("cam-a")}
        assert held == {"a.mp4": True, "b.mp4": False}
    finally:
        await hub.stop()


async def test_a_plugin_can_hold_through_the_retention_hold_hook(tmp_path: Path) -> None:
    class Keeper:
        @hookimpl
        def retention_hold(self, hub: Any, segment: Any) -> str | None:
            return "kept by the plugin" if segment.camera_id == "cam-k" else None

    hub = await started(tmp_path)
    try:
        seed(
            db(hub),
            hub.recording.storage_root(),
            [("cam-k", NOW - 20 * DAY), ("cam-x", NOW - 20 * DAY)],
        )
        with registered_plugin(hub, Keeper()):
            report = await hub.retention.sweep(now=NOW)
        assert report.segments == 1
        assert {p.split("/")[0] for p in indexed(db(hub))} == {"cam-k"}
    finally:
        await hub.stop()


class _Raising:
    @hookimpl
    def retention_hold(self, hub: Any, segment: Any) -> str | None:
        raise RuntimeError("hold service unreachable")


class _Nonsense:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    @hookimpl
    def retention_hold(self, hub: Any, segment: Any) -> Any:
        return self.answer


class _Cancels:
    """Found by ACCEPT2: a CancelledError out of a hold plugin went through the
    selector and the sweeper's loop, which took it for its own cancellation and
    ended: no sweep again (the legal cap no longer enforced), no alert."""

    @hookimpl
    def retention_hold(self, hub: Any, segment: Any) -> str | None:
        raise asyncio.CancelledError


class _Async:
    @hookimpl
    async def retention_hold(self, hub: Any, segment: Any) -> str | None:
        return None


class _Slow:
    @hookimpl
    def retention_hold(self, hub: Any, segment: Any) -> str | None:
        time.sleep(0.03)
        return None


@pytest.mark.parametrize(
    ("plugin", "why"),
    [
        (_Raising(), "hold service unreachable"),
        (_Cancels(), "CancelledError"),
        (_Nonsense(True), "unusable answer (bool)"),
        (_Nonsense(""), "unusable answer (str)"),
        (_Nonsense({"keep": 1}), "unusable answer (dict)"),
        (_Async(), "async def"),
        (_Slow(), "budget"),
    ],
    ids=["raises", "cancels", "true", "empty", "dict", "async", "slow"],
)
async def test_a_failing_hold_plugin_keeps_the_footage_through_a_full_sweep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plugin: Any, why: str
) -> None:
    """Fail closed (issue 10 §1): before, a raising plugin was skipped, hold_reason()
    answered None and the segment was destroyed."""
    from csuhub import hookspecs
    from csuhub.selectors import POLICY_ATTR

    spec = hookspecs.retention_hold
    monkeypatch.setattr(spec, POLICY_ATTR, replace(getattr(spec, POLICY_ATTR), budget=0.01))
    hub = await started(tmp_path, config(default="14d"))
    root = hub.recording.storage_root()
    try:
        expired = [NOW - 20 * DAY + i * 120 for i in range(5)]
        beyond_cap = [NOW - 40 * DAY + i * 120 for i in range(3)]
        fresh = [NOW - 1 * DAY]
        paths = seed(db(hub), root, [("cam-a", t) for t in expired + beyond_cap + fresh])
        alerts: list[RetentionAlert] = []
        unlisten = hub.bus.listen(RetentionAlert, alerts.append)
        with registered_plugin(hub, plugin):
            report = await hub.retention.sweep(now=NOW)
        await hub.bus.drain()
        unlisten()
        assert report.segments == 0
        assert indexed(db(hub)) == set(paths) and files(root) == set(paths)
        # the reason is in the sweep report ...
        # (a slow plugin is asked once, the rest kept under a "not asked again" reason)
        assert sum(k["segments"] for k in report.kept) == 8
        for kept in report.kept:
            assert kept["failure"] is True
            assert "fail closed" in kept["reason"] and why in kept["reason"]
        # ... in the register ...
        register = await hub.store.retention.kept(sweep_id=report.sweep_id)
        assert {(r["camera_id"], r["failure"]) for r in register} == {("cam-a", 1)}
        assert sum(r["segments"] for r in register) == 8
        assert all(why in r["reason"] for r in register)
        assert min(r["footage_start"] for r in register) == beyond_cap[0]
        # ... and raised to the operators, including the footage past the legal cap
        kinds = {a.kind for a in alerts}
        assert {"hold_hook_failed", "kept_past_cap"} <= kinds
        # once the plugin is gone, the next sweep destroys what was due
        report = await hub.retention.sweep(now=NOW)
        assert report.segments == 8 and not report.kept
    finally:
        await hub.stop()


class _HoldsButBreaks:
    """A legal-hold plugin whose set-up fails after it was registered."""

    @hookimpl
    def hub_configure(self, hub: Any) -> None:
        raise RuntimeError("hold service configuration unreadable")

    @hookimpl
    def retention_hold(self, hub: Any, segment: Any) -> str | None:
        return "requisition PV-2026-1 (legal hold)"


async def test_a_hold_plugin_disabled_by_a_failure_still_keeps_the_footage(
    tmp_path: Path,
) -> None:
    """Found by ACCEPT2: a plugin that implements retention_hold and fails elsewhere
    (hub_configure, a factory hook) was unregistered whole, so its holds vanished and
    the next sweep destroyed the footage it held, with no alert."""
    hub = await started(tmp_path, config(default="14d"))
    root = hub.recording.storage_root()
    try:
        paths = seed(db(hub), root, [("cam-a", NOW - 20 * DAY + i * 120) for i in range(3)])
        alerts: list[RetentionAlert] = []
        unlisten = hub.bus.listen(RetentionAlert, alerts.append)
        with registered_plugin(hub, _HoldsButBreaks(), "legal-holds"):
            assert hub.pm.records["legal-holds"].state == "failed"
            assert not hub.pm.hook.retention_hold.get_hookimpls()
            report = await hub.retention.sweep(now=NOW)
            await hub.bus.drain()
        unlisten()
        assert report.segments == 0
        assert indexed(db(hub)) == set(paths) and files(root) == set(paths)
        assert [(k["segments"], k["failure"]) for k in report.kept] == [(3, True)]
        assert (
            "legal-holds implements retention_hold but was disabled" in (report.kept[0]["reason"])
        )
        assert "hold_hook_failed" in {a.kind for a in alerts}
    finally:
        await hub.stop()


class _CancellingPolicy:
    async def plan(self, sweep: Any) -> list[Any]:
        raise asyncio.CancelledError


async def test_a_policy_raising_cancelled_error_is_a_failure_not_the_sweepers_end(
    tmp_path: Path,
) -> None:
    """Found by ACCEPT2: a policy's own CancelledError went out of the sweep and the
    sweeper's loop took it for its cancellation: it stopped for good, no alert."""
    hub = await started(tmp_path, config(default="14d"))
    root = hub.recording.storage_root()
    try:
        seed(db(hub), root, [("cam-a", NOW - 20 * DAY)])
        alerts: list[RetentionAlert] = []
        unlisten = hub.bus.listen(RetentionAlert, alerts.append)
        hub.retention.policies.insert(0, ("cancelling", _CancellingPolicy()))
        report = await hub.retention.sweep(now=NOW)
        await hub.bus.drain()
        unlisten()
        assert report.segments == 1  # the other policies still applied
        assert [a.kind for a in alerts] == ["policy_failed"]
        assert "cancelling failed: CancelledError" in alerts[0].message
    finally:
        await hub.stop()


async def test_a_slow_hold_plugin_is_asked_once_per_sweep_not_once_per_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plugin over its budget blocked the event loop that long for every candidate
    (a 10,000-segment backlog at 1 s each froze recording and the API for hours):
    after the first overrun the rest of the sweep is kept without asking."""
    from csuhub import hookspecs
    from csuhub.selectors import POLICY_ATTR

    spec = hookspecs.retention_hold
    monkeypatch.setattr(spec, POLICY_ATTR, replace(getattr(spec, POLICY_ATTR), budget=0.01))
    calls: list[int] = []

    class Slow:
        @hookimpl
        def retention_hold(self, hub: Any, segment: Any) -> str | None:
            calls.append(segment.id)
            time.sleep(0.03)
            return None

    hub = await started(tmp_path, config(default="14d"))
    root = hub.recording.storage_root()
    try:
        paths = seed(db(hub), root, [("cam-a", NOW - 20 * DAY + i * 120) for i in range(40)])
        with registered_plugin(hub, Slow()):
            report = await hub.retention.sweep(now=NOW)
            assert len(calls) == 1 and report.segments == 0
            assert indexed(db(hub)) == set(paths)
            assert sum(k["segments"] for k in report.kept) == 40
            assert all(k["failure"] for k in report.kept)
            assert any("not asked again in this sweep" in k["reason"] for k in report.kept)
            await hub.retention.sweep(now=NOW)  # the next sweep asks again, once
            assert len(calls) == 2
    finally:
        await hub.stop()


async def test_the_register_of_kept_footage_is_append_only(tmp_path: Path) -> None:
    hub = build_hub(tmp_path / "data", config(default="14d"), web=True)
    await hub.start()
    await asyncio.wait_for(hub.retention.swept.wait(), 10)
    try:
        seed(db(hub), hub.recording.storage_root(), [("cam-a", NOW - 20 * DAY)])
        with registered_plugin(hub, _Raising()):
            await hub.retention.sweep(now=NOW)
        await hub.store.create_token("auditor", "auditor", hash_secret("csu_auditor"))
        async with aiohttp.ClientSession() as http:
            url = f"{hub.web.url}/api/register/kept?camera=cam-a"
            async with http.get(url, headers={"Authorization": "Bearer csu_auditor"}) as r:
                assert r.status == 200
                rows = (await r.json())["kept"]
            async with http.get(url) as r:
                assert r.status == 401
        assert [(k["camera_id"], k["segments"], k["failure"]) for k in rows] == [("cam-a", 1, 1)]
        con = sqlite3.connect(db(hub))
        try:
            for sql in ("DELETE FROM retention_kept", "UPDATE retention_kept SET segments=0"):
                with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                    con.execute(sql)
        finally:
            con.close()
    finally:
        await hub.stop()
    # the CLI's register shows it, failure and reason included
    result = await asyncio.to_thread(
        run_cli, "retention", "register", "--json", "--data", str(hub.data_dir)
    )
    assert result.returncode == 0, result.stderr
    kept = json.loads(result.stdout)["kept"]
    assert [(k["camera_id"], k["failure"]) for k in kept] == [("cam-a", 1)]
    assert "hold service unreachable" in kept[0]["reason"]
    text = await asyncio.to_thread(run_cli, "retention", "register", "--data", str(hub.data_dir))
    assert "FAILURE" in text.stdout and "hold service unreachable" in text.stdout


async def test_the_hook_is_asked_about_every_row_it_could_veto_and_only_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches reach past the first rows of a camera, and a camera's policy and its
    legal cap share rows: no row the hook would keep may go unasked, and none is
    asked twice (review finding: vetoed rows past the first batch were destroyed)."""
    monkeypatch.setattr(sweep, "BATCH", 7)
    hub = await started(tmp_path, config(default="14d"))
    root = hub.recording.storage_root()
    try:
        old = [NOW - 400 * DAY + i * 120 for i in range(9)]  # beyond the legal cap
        aged = [NOW - 20 * DAY + i * 120 for i in range(10)]  # beyond 14 days only
        paths = seed(db(hub), root, [("cam-a", t) for t in old + aged])
        preserved = set(paths[5:9])
        con = sqlite3.connect(db(hub))
        con.executemany(
            "UPDATE segments SET hold=?, hold_reason='incident 1' WHERE path=?",
            [(PRESERVE, path) for path in preserved],
        )
        con.commit()
        con.close()
        keep = preserved | {rel_path("cam-a", aged[0]), rel_path("cam-a", aged[7])}
        asked: list[str] = []

        class Keeper:
            @hookimpl
            def retention_hold(self, hub: Any, segment: Any) -> str | None:
                asked.append(segment.path)
                return "kept by the plugin" if segment.path in keep else None

        with registered_plugin(hub, Keeper()):
            report = await hub.retention.sweep(now=NOW)
        assert indexed(db(hub)) == keep
        assert report.segments == len(paths) - len(keep)
        assert len(asked) == len(set(asked)) == len(paths)
    finally:
        await hub.stop()


async def test_storage_refusing_every_unlink_gives_a_camera_up_not_the_backlog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweep, "BATCH", 100)
    hub = await started(tmp_path, config(default="14d"))
    root = hub.recording.storage_root()
    try:
        seed(
            db(hub),
            root,
            [(c, NOW - 20 * DAY + i * 10) for c in ("cam-a", "cam-b") for i in range(600)],
        )

        def refuse(path: Any, *args: Any, **kwargs: Any) -> None:
            raise PermissionError(30, "Read-only file system")

        monkeypatch.setattr(destroy.os, "unlink", refuse)
        report = await hub.retention.sweep(now=NOW)
        assert report.segments == 0
        # each camera is given up after CAMERA_FAILURE_LIMIT refusals: one batch each,
        # not 6 batches each (the whole backlog marked and given back every sweep)
        assert report.failures == 200
        assert len(report.failed) <= sweep.MAX_REPORTED_FAILURES
        assert "Read-only file system" in report.failed[0]
        assert len(indexed(db(hub))) == 1200  # nothing lost from the index
    finally:
        await hub.stop()


async def test_a_hold_placed_on_marked_rows_survives_a_failed_unlink(tmp_path: Path) -> None:
    """A hold skips rows a sweep has marked; if their unlink then fails, they are
    given back with the hold, not as unheld footage for the next sweep."""
    hub = await started(tmp_path)
    try:
        seed(db(hub), hub.recording.storage_root(), [("cam-a", NOW - 20 * DAY)])
        store = hub.store.retention
        sweep_id = await store.begin_sweep("test")
        rows, _ = await store.mark(sweep_id, [MarkRequest("cam-a", NOW, 0, "max_age")], limit=10)
        assert len(rows) == 1
        await store.place(
            ["cam-a"],
            NOW - 21 * DAY,
            NOW,
            level=LEGAL,
            kind="requisition",
            ref="PV-1",
            reason="enquête",
            actor="opj",
        )
        await store.unmark(sweep_id, [rows[0].id])
        con = sqlite3.connect(db(hub))
        hold, reason, mark = con.execute(
            "SELECT hold, hold_reason, sweep_id FROM segments"
        ).fetchone()
        con.close()
        assert (hold, mark) == (LEGAL, None) and "PV-1" in reason
    finally:
        await hub.stop()


async def test_a_dry_run_of_incident_preservation_says_what_the_sweep_does(
    hub_factory: Any,
) -> None:
    """Seen in acceptance: in a dry run the bundled policy's holds were skipped, not
    simulated, so ``would_destroy`` listed an open incident's footage (kept by the
    real sweep), and missed a closed incident's (released and destroyed by it)."""
    policies = [{"policy": "max_age"}, {"policy": "incident_preservation"}]
    start = NOW - 20 * DAY
    site = config(policies=policies, default="14d")
    async with hub_factory(site, sweeping=False) as hub:
        for camera in ("cam-a", "cam-b"):
            await index_footage(hub, camera, start, 1)
        await hub.store.retention.open_incident("INC-1", ["cam-a"], start, start + 1800)
        at = start + 15 * DAY
        dry = await sweep_at(hub, at, dry_run=True)
        assert sorted(dry.would_destroy) == ["cam-a:max_age", "cam-b:max_age"]
        assert [(w["segments"], w["from"]) for w in dry.would_destroy.values()] == [
            (30, start + 1800),
            (60, start),
        ]
        (held,) = dry.simulated
        assert (held["action"], held["camera_id"], held["ref"]) == ("place", "cam-a", "1")
        assert (held["segments"], held["reason"]) == (30, "incident INC-1")
        assert await hub.store.retention.holds() == []
        real = await sweep_at(hub, at)
        assert real.segments == 90 and real.simulated == []
        assert len(await hub.store.segments("cam-a")) == 30
        # the incident closes: the next sweep releases its hold and destroys the rest
        (incident,) = await hub.store.retention.incidents()
        await hub.store.retention.close_incident(incident["id"])
        dry = await sweep_at(hub, at + HOUR, dry_run=True)
        assert {k: w["segments"] for k, w in dry.would_destroy.items()} == {"cam-a:max_age": 30}
        (freed,) = dry.simulated
        assert (freed["action"], freed["camera_id"], freed["segments"]) == ("release", "cam-a", 30)
        assert len(await hub.store.retention.holds(kind="incident")) == 1  # still held
        real = await sweep_at(hub, at + HOUR)
        assert real.segments == 30 and await hub.store.segments("cam-a") == []


async def test_operators_are_alerted_before_preserved_footage_reaches_the_cap(
    tmp_path: Path,
) -> None:
    hub = await started(tmp_path, config(alert_before="24h"))
    alerts: list[RetentionAlert] = []
    hub.bus.listen(RetentionAlert, alerts.append)
    try:
        seed(db(hub), hub.recording.storage_root(), [("cam-a", NOW - 29.5 * DAY)])
        await hub.store.retention.open_incident(
            "INC-7", ["cam-a"], NOW - 29.5 * DAY, NOW - 29 * DAY
        )
        await hub.retention.sweep(now=NOW)
        await hub.bus.drain()
        expiring = [a for a in alerts if a.kind == "expiring"]
        assert len(expiring) == 1 and expiring[0].camera_id == "cam-a"
        assert expiring[0].expires_at == pytest.approx(NOW + 0.5 * DAY)
        assert len(indexed(db(hub))) == 1  # preserved: older than 14 d, under the cap
        await hub.retention.sweep(now=NOW + 60)
        await hub.bus.drain()
        assert len([a for a in alerts if a.kind == "expiring"]) == 1  # alerted once
        # the incident closes: its footage is past its age and goes
        incident = (await hub.store.retention.incidents())[0]
        await hub.store.retention.close_incident(incident["id"])
        await hub.retention.sweep(now=NOW + 120)
        assert indexed(db(hub)) == set()
    finally:
        await hub.stop()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    ages=st.lists(st.floats(min_value=0, max_value=45), min_size=1, max_size=40),
    # holds over chosen segments (index, how many after it, level), and over random ranges
    picked=st.lists(
        st.tuples(st.integers(0, 39), st.integers(0, 3), st.sampled_from([PRESERVE, LEGAL])),
        max_size=8,
    ),
    ranges=st.lists(
        st.tuples(
            st.sampled_from(["cam-a", "cam-b"]),
            st.floats(min_value=0, max_value=45),
            st.floats(min_value=0.01, max_value=10),
            st.sampled_from([PRESERVE, LEGAL]),
        ),
        max_size=4,
    ),
    retention=st.integers(min_value=1, max_value=30),
    sweeps=st.integers(min_value=1, max_value=3),
)
def test_property_no_held_segment_deleted_no_unheld_outlives_the_cap(
    ages: list[float],
    picked: list[tuple[int, int, int]],
    ranges: list[tuple[str, float, float, int]],
    retention: int,
    sweeps: int,
) -> None:
    segments = sorted(
        {(("cam-a", "cam-b")[i % 2], float(int(NOW - age * DAY))) for i, age in enumerate(ages)}
    )
    holds = [(c, NOW - a * DAY, NOW - a * DAY + sp * DAY, lvl) for c, a, sp, lvl in ranges]
    for index, more, level in picked:
        first = segments[index % len(segments)]
        last = segments[min(index % len(segments) + more, len(segments) - 1)]
        if first[0] == last[0]:
            holds.append((first[0], first[1], last[1] + 60, level))

    def held_at(camera: str, start: float, level: int) -> bool:
        return any(
            c == camera and lvl >= level and s < start + 60 and e > start for c, s, e, lvl in holds
        )

    async def scenario(tmp: Path) -> None:
        hub = await started(tmp, config(default=f"{retention}d"))
        root = hub.recording.storage_root()
        try:
            seed(db(hub), root, segments, length=60)
            for i, (camera, start, end, level) in enumerate(holds):
                await hub.store.retention.place(
                    [camera],
                    start,
                    end,
                    level=level,
                    kind="test",
                    ref=str(i),
                    reason="t",
                    actor="t",
                )
            for k in range(sweeps):
                now = NOW + k * 60
                await hub.retention.sweep(now=now)
                paths = indexed(db(hub))
                assert paths == files(root), "the index and the disk disagree"
                left = {(p.split("/")[0], float(p.rsplit("/", 1)[1][:-4])) for p in paths}
                for camera, start in segments:
                    present = (camera, start) in left
                    end = start + 60
                    if held_at(camera, start, LEGAL):
                        assert present, "a segment under a legal hold was destroyed"
                    elif held_at(camera, start, PRESERVE) and end > now - 30 * DAY:
                        assert present, "preserved footage under the cap was destroyed"
                    elif end <= now - 30 * DAY:
                        assert not present, "unheld footage outlived the legal cap"
                    elif end <= now - retention * DAY and not held_at(camera, start, PRESERVE):
                        assert not present, "unheld footage outlived its retention"
                    elif end > now - retention * DAY:
                        assert present, "footage younger than its retention was destroyed"
        finally:
            await hub.stop()

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(scenario(Path(tmp)))


async def test_storage_pressure_frees_oldest_unheld_first_after_an_alarm(
    tmp_path: Path,
) -> None:
    storage = mount_tmpfs(tmp_path / "small", "4m")
    try:
        cfg = pressure_site(storage, AUTH)
        hub = await started(tmp_path, cfg)
        events: list[Any] = []
        hub.bus.listen(RetentionAlert, events.append)
        hub.bus.listen(RetentionSwept, events.append)
        try:
            # 3 MiB of 64 KiB segments: 75 % used; the oldest is held
            starts = [NOW - 10 * DAY + i * 120 for i in range(24)]
            starts += [NOW - 1 * DAY + i * 120 for i in range(24)]
            seed(db(hub), storage, [("cam-m", s) for s in starts], size=64 * 1024)
            await hub.store.retention.place(
                ["cam-m"],
                starts[0],
                starts[0] + 1,
                level=LEGAL,
                kind="requisition",
                ref="1",
                reason="t",
                actor="t",
            )
            report = await hub.retention.sweep(now=NOW)
            await hub.bus.drain()
            kinds = [getattr(e, "kind", "swept") for e in events]
            assert kinds.index("storage_pressure") < kinds.index("swept")
            # not enough old footage without going under the 2-day minimum: alarm, stop there
            assert "below_minimum" in kinds
            left = indexed(db(hub))
            assert rel_path("cam-m", starts[0]) in left  # held: survives disk pressure
            assert report.by_policy == {"storage_pressure": 23}
            assert all(
                int(p.rsplit("/", 1)[1][:-4]) >= NOW - 1 * DAY or p == rel_path("cam-m", starts[0])
                for p in left
            )
        finally:
            await hub.stop()
    finally:
        unmount(storage)


def test_retention_above_the_cap_is_refused_with_the_law(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(
        "retention:\n  default: 45d\n  policies:\n    - policy: max_age\n"
        "      options: {max_age: 40d}\n"
    )
    result = run_cli("check", str(site))
    assert result.returncode == 1
    report = result.stdout + result.stderr
    assert "site.yaml:2:" in report and "CSI L252-5" in report
    assert "site.yaml:5:" in report


async def test_recovery_finishes_a_sweep_interrupted_after_marking(tmp_path: Path) -> None:
    hub = await started(tmp_path)
    root = hub.recording.storage_root()
    paths = seed(db(hub), root, [("cam-a", NOW - 20 * DAY + i * 120) for i in range(10)])
    sweep_id = await hub.store.retention.begin_sweep("test")
    marked, exhausted = await hub.store.retention.mark(
        sweep_id, [MarkRequest("cam-a", NOW, 0, "max_age")], limit=100
    )
    assert exhausted == 1
    assert len(marked) == 10
    for path in paths[:4]:  # the crash came mid-unlink
        (root / path).unlink()
    await hub.stop()
    hub = await started(tmp_path)
    try:
        assert hub.retention.recovered == {"sweeps": 1, "segments": 10}
        assert indexed(db(hub)) == set() and files(root) == set()
        register = await hub.store.retention.destructions()
        assert sum(r["segments"] for r in register) == 10
    finally:
        await hub.stop()


def test_kill_9_mid_sweep_leaves_no_orphans_nor_dangling_rows(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    data = tmp_path / "data"
    site = tmp_path / "site.yaml"
    site.write_text("hub: {timezone: UTC}\nretention: {interval: 1h}\n")

    async def prepare() -> None:
        hub = Hub.from_file(site, data_dir=data)
        hub.setup()
        await hub.store.open()
        await hub.store.close()

    asyncio.run(prepare())
    root = data / "recordings"
    total = 40_000
    seed(
        data / "csuhub.db",
        root,
        [(f"cam-{i % 20}", NOW - 20 * DAY + (i // 20) * 120) for i in range(total)],
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "csuhub",
            "retention",
            "sweep",
            "-c",
            str(site),
            "--data",
            str(data),
        ],
        env=cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # kill it once its first batch is destroyed
        con = sqlite3.connect(data / "csuhub.db")
        done = con.execute("SELECT COALESCE(SUM(segments), 0) FROM sweeps").fetchone()[0]
        con.close()
        if done or proc.poll() is not None:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(files(root)) > 0, "the sweep finished before the kill; make it bigger"

    async def restart() -> dict[str, int]:
        hub = Hub.from_file(site, data_dir=data)
        await hub.start()
        recovered = dict(hub.retention.recovered)
        await hub.retention.sweep()
        await hub.stop()
        return recovered

    asyncio.run(restart())
    con = sqlite3.connect(data / "csuhub.db")
    left = {r[0] for r in con.execute("SELECT path FROM segments")}
    marked = con.execute("SELECT COUNT(*) FROM segments WHERE sweep_id IS NOT NULL").fetchone()[0]
    destroyed = con.execute("SELECT COALESCE(SUM(segments), 0) FROM destructions").fetchone()[0]
    running = con.execute("SELECT COUNT(*) FROM sweeps WHERE state='running'").fetchone()[0]
    con.close()
    assert left == files(root)  # no orphan file, no dangling row
    assert marked == 0 and running == 0
    assert destroyed == total - len(left) == total  # every one registered exactly once


async def test_a_policy_failing_on_missing_storage_is_an_alert_and_a_nonzero_exit(
    tmp_path: Path,
) -> None:
    """The storage root gone (an unmounted NAS): storage_pressure cannot measure the
    disk. Before, the CLI logged a traceback and answered 'nothing would be destroyed'
    with exit 0, as if that were the whole truth."""
    hub = build_hub(tmp_path / "data", config(default="14d"))
    await hub.start()
    await hub.stop()
    root = hub.recording.storage_root()
    os.rmdir(root)
    for extra in (["--dry-run"], []):
        result = await asyncio.to_thread(
            run_cli, "retention", "sweep", *extra, "--data", str(hub.data_dir)
        )
        assert result.returncode == 1, result
        assert "Traceback" not in result.stderr
        assert "policy_failed: retention policy storage_pressure failed" in result.stderr
        as_json = await asyncio.to_thread(
            run_cli, "retention", "sweep", *extra, "--json", "--data", str(hub.data_dir)
        )
        assert as_json.returncode == 1
        # progress events (one JSON object per line), then the report
        decoder, text, values = json.JSONDecoder(), as_json.stdout.strip(), []
        while text:
            value, end = decoder.raw_decode(text)
            values.append(value)
            text = text[end:].strip()
        alerts = values[-1]["alerts"]
        assert [a["kind"] for a in alerts] == ["policy_failed"]


def test_retention_commands_report_a_policy_that_cannot_be_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A policy whose constructor raises is a located configuration error for every
    retention command (it was a traceback out of ``cli_retention._run``)."""
    import csuhub_retention

    from csuhub.cli import main

    site = tmp_path / "site.yaml"
    site.write_text(
        "hub: {name: t, timezone: UTC}\n"
        "retention:\n  default: 14d\n  policies:\n    - policy: max_age\n"
    )

    def broken(self: Any, hub: Any, options: Any) -> None:
        raise RuntimeError("cannot reach the policy's service")

    data = tmp_path / "data"

    async def create() -> None:
        hub = build_hub(data, config(default="14d"))
        await hub.start()
        await hub.stop()

    asyncio.run(create())
    monkeypatch.setattr(csuhub_retention.MaxAge, "__init__", broken)
    assert main(["retention", "status", "-c", str(site), "--data", str(data)]) in (1, 2)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "cannot reach the policy's service" in err


class _Greedy:
    """A third-party policy that wants everything gone (before = +inf), and a NaN."""

    def __init__(self, hub: Any, options: dict[str, Any]) -> None:
        pass

    async def plan(self, sweep: Any) -> list[Any]:
        from csuhub.protocols import Expiry

        return [
            Expiry("cam-m", float("inf"), "greedy", "all of it"),
            Expiry("cam-m", float("nan"), "greedy", "nonsense"),
        ]


class _GreedyPlugin:
    @hookimpl
    def register_retention_policies(self, hub: Any) -> list[Any]:
        import voluptuous as vol

        from csuhub.specs import RetentionPolicySpec

        return [RetentionPolicySpec(name="greedy", factory=_Greedy, config_schema=vol.Schema({}))]


async def test_no_policy_destroys_footage_under_the_authorised_minimum(tmp_path: Path) -> None:
    """Only storage_pressure, critically full, may go under a camera's authorised
    minimum; a third-party verdict reaching into the last two days was obeyed."""
    cfg = pressure_site(tmp_path / "rec", AUTH)
    cfg["retention"] = {"interval": "1h", "policies": [{"policy": "greedy"}]}
    hub = build_hub(tmp_path / "data", cfg, plugins=[("greedy", _GreedyPlugin())])
    await hub.start()
    try:
        await asyncio.wait_for(hub.retention.swept.wait(), 10)
        old = [NOW - 3 * DAY + i * 120 for i in range(5)]
        young = [NOW - 1 * DAY + i * 120 for i in range(5)]
        seed(db(hub), hub.recording.storage_root(), [("cam-m", t) for t in old + young])
        report = await hub.retention.sweep(now=NOW)
        assert report.by_policy == {"greedy": 5}
        assert indexed(db(hub)) == {rel_path("cam-m", t) for t in young}
    finally:
        await hub.stop()
