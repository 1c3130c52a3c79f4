"""Recording with real ffmpeg: segments, index, gaps, faults, playback, export."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import run_cli
from csuhub_rtsp.rtsp import RtspClient, RtspError
from hypothesis import given, settings
from hypothesis import strategies as st
from retention_helpers import mount_tmpfs, unmount

from csuhub.cameras.health import MAX_HEALTH_BACKOFF
from csuhub.events import GapRecorded, RecordingAlert, RecordingStateChanged, SegmentRecorded
from csuhub.hub import Hub
from csuhub.recording import layout
from csuhub.recording.export import ExportError, export_evidence, verify_package
from csuhub.recording.layout import hour_dir
from csuhub.recording.trust import hub_anchor
from csuhub.security.tokens import hash_secret
from csuhub.testing import wait_camera_state

AUTH = {"reference": "2022-VP-1", "issued": "2022-01-10", "expires": "2099-01-09"}
SIM = {"width": 320, "height": 180, "fps": 10, "clip_seconds": 4}


def site(tmp_path: Path, cameras: list[dict[str, Any]], **recording: Any) -> Path:
    path = tmp_path / "site.yaml"
    config = {
        "hub": {"name": "Rec", "web": {"host": "127.0.0.1", "port": 0}},
        "recording": {"segment": "2s", **recording},
        "cameras": cameras,
    }
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def simcam(camera_id: str = "cam-a", **options: Any) -> dict[str, Any]:
    return {
        "id": camera_id,
        "driver": "simcam",
        "options": {**SIM, **options},
        "authorization": AUTH,
    }


def rtsp_camera(camera_id: str, port: int) -> dict[str, Any]:
    """A camera on the GStreamer RTSP server of test_cameras_rtsp."""
    return {
        "id": camera_id,
        "driver": "rtsp",
        "authorization": AUTH,
        "options": {"url": "rtsp://{host}:{port}/cam1", "host": "127.0.0.1", "port": port},
    }


async def first_describe(port: int, timeout: float = 60) -> float:
    """When the GStreamer server at ``port`` first answers DESCRIBE on cam1."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            await RtspClient(f"rtsp://127.0.0.1:{port}/cam1", timeout=10).describe()
            return time.time()
        except RtspError:
            await asyncio.sleep(0.2)
    raise AssertionError(f"the RTSP server on port {port} never answered DESCRIBE")


async def wait_segments(hub: Hub, camera_id: str, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(await hub.store.segments(camera_id)) >= count:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{camera_id}: fewer than {count} segments after {timeout}s")


def recorder_pid(hub: Hub) -> int:
    for pid in hub.processes.pids():
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"segment" in cmdline:
            return pid
    raise AssertionError("no recording ffmpeg running")


async def test_records_indexes_and_proves_continuity(tmp_path: Path, ffmpeg_bin: str) -> None:
    hub = Hub.from_file(site(tmp_path, [simcam()]), data_dir=tmp_path / "data")
    latencies: list[float] = []
    hub.bus.listen(SegmentRecorded, lambda e: latencies.append(e.latency))
    await hub.start()
    try:
        # the evidence signing key exists from the first start, private to the hub
        key = tmp_path / "data" / "keys" / "export_ed25519.pem"
        assert key.is_file() and key.stat().st_mode & 0o777 == 0o600
        assert hub.recording.signing_key is not None
        await wait_segments(hub, "cam-a", 3)
        segments = await hub.store.segments("cam-a")
        root = hub.recording.storage_root()
        for seg in segments:
            path = root / seg.path
            assert seg.path.startswith("cam-a/") and path.exists()
            parts = seg.path.split("/")
            assert len(parts) == 6 and parts[5].endswith("Z.mp4")
            assert hashlib.sha256(path.read_bytes()).hexdigest() == seg.sha256
            assert 1.5 < seg.duration < 4.5 and seg.size > 1000
        report = await hub.store.segments("cam-a", segments[0].start, segments[-1].end)
        assert report == segments
        from csuhub.recording.continuity import continuity

        proof = await continuity(hub.store, "cam-a", segments[0].start, segments[-1].end)
        assert proof["percent"] == 100.0 and proof["gaps"] == []
        assert hub.recording.states["cam-a"][0] == "recording"
        assert max(latencies) < 0.5
    finally:
        await hub.stop()
    # the segment open at shutdown was closed and indexed too
    con = sqlite3.connect(tmp_path / "data" / "csuhub.db")
    indexed = {row[0] for row in con.execute("SELECT path FROM segments")}
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*.mp4")}
    assert on_disk == indexed


async def test_kill_9_of_ffmpeg_mid_segment(tmp_path: Path, ffmpeg_bin: str) -> None:
    hub = Hub.from_file(site(tmp_path, [simcam()]), data_dir=tmp_path / "data")
    gaps: list[GapRecorded] = []
    hub.bus.listen(GapRecorded, gaps.append)
    await hub.start()
    try:
        await wait_segments(hub, "cam-a", 2)
        before = await hub.store.segments("cam-a")
        await asyncio.sleep(1.0)  # mid-segment
        os.kill(recorder_pid(hub), signal.SIGKILL)
        await wait_segments(hub, "cam-a", len(before) + 3, timeout=40)
        after = await hub.store.segments("cam-a")
        assert [s.id for s in after[: len(before)]] == [s.id for s in before]
        # the interrupted segment was kept (fragmented MP4) and indexed
        interrupted = after[len(before)]
        assert interrupted.status == "ok" and interrupted.duration > 0.3
        await hub.bus.drain()
        # at most one gap, no longer than a segment plus the restart, and it says why
        assert len(gaps) <= 1
        for gap in gaps:
            assert gap.reason == "ffmpeg killed (signal 9, SIGKILL)"
            assert gap.end - gap.start <= 2.0 + 3.0
        assert hub.recording.recorders["cam-a"].restarts == 1
    finally:
        await hub.stop()


async def test_a_camera_that_stops_recording_raises_one_alert(
    tmp_path: Path, ffmpeg_bin: str
) -> None:
    """Its ffmpeg keeps failing (the stream is gone): operators hear of it once,
    ``alert_after`` past its last footage, and not while it records (start-up
    included)."""
    # alert_after must exceed a segment (2 s) plus its indexing: footage arrives a
    # segment at a time
    hub = Hub.from_file(site(tmp_path, [simcam()], alert_after="5s"), data_dir=tmp_path / "data")
    alerts: list[RecordingAlert] = []
    hub.bus.listen(RecordingAlert, alerts.append)
    await hub.start()
    try:
        await wait_segments(hub, "cam-a", 3)
        assert alerts == []
        clip = hub.cameras.drivers["cam-a"].clip
        hidden = clip.with_suffix(".away")
        clip.rename(hidden)  # the camera's stream is gone: every restart fails
        os.kill(recorder_pid(hub), signal.SIGKILL)
        deadline = time.monotonic() + 20
        while not alerts and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert alerts, "no not_recording alert"
        alert = alerts[0]
        assert (alert.camera_id, alert.kind) == ("cam-a", "not_recording")
        assert "no footage for 5 s" in alert.message
        last_end = max(seg.end for seg in await hub.store.segments("cam-a"))
        assert alert.time_fired - last_end >= 5.0
        await asyncio.sleep(3.0)  # several more checks: still one alert
        assert len(alerts) == 1
        hidden.rename(clip)  # back: recording resumes by itself, the alert re-arms
        count = len(await hub.store.segments("cam-a"))
        await wait_segments(hub, "cam-a", count + 1, timeout=60)
        assert not hub.recording.alarms.is_active("not_recording", "cam-a")
    finally:
        await hub.stop()


def test_kill_9_of_the_hub_then_reconciliation(
    tmp_path: Path, cli_env: dict[str, str], ffmpeg_bin: str
) -> None:
    config = site(tmp_path, [simcam()])
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "csuhub", "run", "-c", str(config), "--data", str(data), "--json"],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    seen = 0
    for line in proc.stdout:
        if '"segment_recorded"' in line:
            seen += 1
            if seen == 2:
                break
    # Freeze the hub while ffmpeg goes on: the segments it closes now are on disk but
    # not indexed, exactly as when the hub dies between ffmpeg's close and the index.
    os.kill(proc.pid, signal.SIGSTOP)
    time.sleep(5.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(4.0)  # ffmpeg (SIGTERMed by the parent-death signal) finishes; the hub stays down
    root = data / "recordings"
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*.mp4")}
    con = sqlite3.connect(data / "csuhub.db")
    indexed_before = {row[0] for row in con.execute("SELECT path FROM segments")}
    con.close()
    # ffmpeg's files the frozen hub never placed wait in the staging folder
    staging = root / "cam-a" / layout.STAGING
    staged = {p.name for p in staging.iterdir()}
    assert staged, "the test needs files the hub never placed"
    assert on_disk - indexed_before, "the test needs unindexed files"

    async def restart() -> dict[str, Any]:
        hub = Hub.from_file(config, data_dir=data)
        await hub.start()
        report = dict(hub.recording.reconciliation)
        await wait_segments(hub, "cam-a", len(on_disk) + 1)  # recording resumed
        await hub.stop()
        return report

    report = asyncio.run(restart())
    assert report["recovered"] >= len(staged)
    con = sqlite3.connect(data / "csuhub.db")
    rows = con.execute(
        "SELECT path, size, sha256, start, end FROM segments ORDER BY start"
    ).fetchall()
    indexed = {row[0] for row in rows}
    reasons = {row[0] for row in con.execute("SELECT reason FROM gaps")}
    # every file was placed (none left staged) and indexed, true to its bytes
    assert not any(staging.iterdir())
    assert {p.relative_to(root).as_posix() for p in root.rglob("*.mp4")} == indexed
    assert len(indexed) >= len(on_disk)
    assert on_disk - {f"cam-a/{layout.STAGING}/{name}" for name in staged} <= indexed
    for path, size, sha256, _, _ in rows:
        data_bytes = (root / path).read_bytes()
        assert (len(data_bytes), hashlib.sha256(data_bytes).hexdigest()) == (size, sha256)
    for before, after in itertools.pairwise(rows):  # recovered files overlap nothing
        assert after[3] >= before[4] - 1e-3, (before, after)
    assert "hub down" in reasons


async def test_rtsp_server_down_30s_then_back(tmp_path: Path, ffmpeg_bin: str) -> None:
    from test_cameras_rtsp import start_server, stop_server

    proc, port = start_server()
    config = site(
        tmp_path,
        [rtsp_camera("cam-r", port)],
    )
    hub = Hub.from_file(config, data_dir=tmp_path / "data")
    hub.setup()  # the managers exist once the configuration is valid
    hub.cameras.health_interval = 0.5
    gaps: list[GapRecorded] = []
    hub.bus.listen(GapRecorded, gaps.append)
    await hub.start()
    try:
        await wait_segments(hub, "cam-r", 2, timeout=40)
        stop_server(proc)
        down_at = time.time()
        await wait_camera_state(hub, "cam-r", "offline", timeout=20)
        await asyncio.sleep(max(0.0, 30 - (time.time() - down_at)))
        proc, _ = start_server(port=port)
        # the camera serves again once its first DESCRIBE answers (a loaded machine
        # takes seconds to preroll the encoder): the hub's reaction counts from there
        served_at = await first_describe(port)
        count = len(await hub.store.segments("cam-r"))
        await wait_segments(hub, "cam-r", count + 2, timeout=90)
        await hub.bus.drain()
        assert gaps, "the outage was not recorded as a gap"
        gap = gaps[0]
        assert gap.start <= down_at + 1
        assert gap.end - gap.start > 25
        # health checks back off to at most MAX_HEALTH_BACKOFF, then ffmpeg starts and
        # its first segment closes (connect + one segment + slack)
        assert gap.end - served_at < MAX_HEALTH_BACKOFF + 15
        assert gap.reason  # "camera offline", or the ffmpeg state that saw it first
        stored = await hub.store.gaps("cam-r")
        assert stored[0].reason == gap.reason
    finally:
        await hub.stop()
        stop_server(proc)


async def test_full_disk_raises_an_alarm_without_corrupting(
    tmp_path: Path, ffmpeg_bin: str
) -> None:
    storage = mount_tmpfs(tmp_path / "small", "400k")
    try:
        config = site(tmp_path, [simcam(width=640, height=360, fps=25)], storage=str(storage))
        hub = Hub.from_file(config, data_dir=tmp_path / "data")
        alerts: list[RecordingAlert] = []
        states: list[RecordingStateChanged] = []
        hub.bus.listen(RecordingAlert, alerts.append)
        hub.bus.listen(RecordingStateChanged, states.append)
        await hub.start()
        try:
            for _ in range(150):
                if any(a.kind == "disk_full" for a in alerts):
                    break
                await asyncio.sleep(0.2)
            assert any(a.kind == "disk_full" for a in alerts)
            assert any("disk full" in s.reason for s in states)
            assert hub.state == "running"
        finally:
            await hub.stop()
        con = sqlite3.connect(tmp_path / "data" / "csuhub.db")
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        unmount(storage)


async def test_unauthorised_camera_is_not_recorded(tmp_path: Path, ffmpeg_bin: str) -> None:
    expired = {"reference": "OLD", "issued": "2015-01-01", "expires": "2020-01-01"}
    cameras = [
        simcam("cam-ok"),
        {**simcam("cam-old"), "authorization": expired},
        {k: v for k, v in simcam("cam-none").items() if k != "authorization"},
    ]
    hub = Hub.from_file(site(tmp_path, cameras), data_dir=tmp_path / "data")
    await hub.start()
    try:
        await wait_segments(hub, "cam-ok", 1)
        await wait_camera_state(hub, "cam-old", "online")
        assert await hub.store.segments("cam-old") == []
        assert await hub.store.segments("cam-none") == []
        assert hub.recording.states["cam-old"] == (
            "blocked",
            "prefectoral authorisation expired on 2020-01-01",
        )
        assert hub.recording.states["cam-none"] == ("blocked", "no prefectoral authorisation")
    finally:
        await hub.stop()


async def test_playback_frames_files_and_export_roundtrip(tmp_path: Path, ffmpeg_bin: str) -> None:
    hub = Hub.from_file(site(tmp_path, [simcam()]), data_dir=tmp_path / "data")
    await hub.start()
    try:
        await wait_segments(hub, "cam-a", 4)
        segments = await hub.store.segments("cam-a")
        start, end = segments[0].start + 1.0, segments[2].end - 0.5  # across boundaries
        await hub.store.create_token("viewer", "viewer", hash_secret("csu_v"))
        auth = {"Authorization": "Bearer csu_v"}
        base = hub.web.url
        async with aiohttp.ClientSession() as session:
            async with session.get(
                f"{base}/api/recordings/cam-a",
                params={"from": str(start), "to": str(end)},
                headers=auth,
            ) as resp:
                timeline = await resp.json()
            assert len(timeline["segments"]) == 3 and timeline["percent"] == 100.0
            async with session.get(
                f"{base}/api/recordings/cam-a/play.mp4",
                params={"from": str(start), "to": str(end), "reason": "test"},
                headers=auth,
            ) as resp:
                assert resp.status == 200
                video = await resp.read()
            played = tmp_path / "played.mp4"
            played.write_bytes(video)
            probe = subprocess.run(
                [
                    "ffprobe",
                    "-v",
                    "error",
                    "-show_entries",
                    "packet=pts_time",
                    "-of",
                    "csv=p=0",
                    str(played),
                ],
                capture_output=True,
                text=True,
            )
            times = [float(t) for t in probe.stdout.split() if t.replace(".", "").isdigit()]
            assert abs(max(times) - min(times) - (end - start)) < 2.5
            async with session.get(
                f"{base}/api/recordings/cam-a/frame.jpg",
                params={"t": str(start + 2.2), "reason": "test"},
                headers=auth,
            ) as resp:
                assert resp.status == 200 and (await resp.read()).startswith(b"\xff\xd8")
            seg_url = f"{base}/api/segments/{segments[1].id}.mp4?reason=test"
            async with session.get(seg_url, headers={**auth, "Range": "bytes=0-99"}) as resp:
                assert resp.status == 206 and len(await resp.read()) == 100
            async with session.get(
                f"{base}/api/segments/..%2F..%2Fetc%2Fpasswd.mp4?reason=test", headers=auth
            ) as resp:
                assert resp.status == 404
            async with session.get(seg_url) as resp:
                assert resp.status == 401
            async with session.get(
                f"{base}/api/recordings/cam-a/gaps", headers=auth, params={"from": "yesterday"}
            ) as resp:
                assert resp.status == 400
        package = tmp_path / "evidence.zip"
        manifest = await export_evidence(
            hub,
            hub.recording,
            "cam-a",
            start,
            end,
            user="opj-durand",
            reason="PV 2026/1234",
            output=package,
        )
        assert manifest["requested"] == {"from": start, "to": end}
        assert manifest["actual"]["from"] <= start and manifest["actual"]["to"] >= end - 0.1
        assert len(manifest["sources"]) == 3
        assert manifest["camera"]["authorization"]["reference"] == "2022-VP-1"
        assert manifest["exported_by"] == "opj-durand" and manifest["reason"] == "PV 2026/1234"
        assert verify_package(package, [hub_anchor(hub.data_dir)]).ok
        # ffmpeg wrote the video straight into the zip: every CRC holds, the member is
        # the hashed size, and it plays as the range it claims to be
        with zipfile.ZipFile(package) as archive:
            assert archive.testzip() is None
            assert archive.getinfo("video.mp4").file_size == manifest["output"]["size"]
            (tmp_path / "out.mp4").write_bytes(archive.read("video.mp4"))
        played = subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-show_entries",
                "format=duration",
                "-of",
                "csv=p=0",
                str(tmp_path / "out.mp4"),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert abs(float(played.stdout) - manifest["actual"]["duration"]) < 0.5
        trail = [r.action for r in await hub.store.audit_records(target="cam-a")]
        assert {
            "recording.view",
            "recording.frame",
            "recording.segment",
            "recording.export",
        } <= set(trail)
        # a source segment altered on disk stops the next export, by name
        victim = hub.recording.storage_root() / segments[1].path
        with victim.open("r+b") as handle:
            handle.seek(200)
            handle.write(b"\x00\x01\x02")
        with pytest.raises(ExportError, match=segments[1].path):
            await export_evidence(
                hub,
                hub.recording,
                "cam-a",
                start,
                end,
                user="x",
                reason="y",
                output=tmp_path / "second.zip",
            )
    finally:
        await hub.stop()
    # verify: exit 0 intact, 1 tampered, naming the file
    ok = run_cli("verify", str(package), "--data", str(tmp_path / "data"))
    assert ok.returncode == 0 and "intact" in ok.stdout
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(package) as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.namelist():
            data = src.read(item)
            if item == "manifest.json":
                data = data.replace(b"PV 2026/1234", b"PV 2026/9999")
            dst.writestr(item, data)
    bad = run_cli("verify", str(tampered))
    assert bad.returncode == 1 and "manifest.json: the signature does not match" in bad.stdout


def test_cli_export_shows_progress_and_gaps(
    tmp_path: Path, cli_env: dict[str, str], ffmpeg_bin: str
) -> None:
    config = site(tmp_path, [simcam()])
    data = tmp_path / "data"

    async def record() -> tuple[float, float]:
        hub = Hub.from_file(config, data_dir=data)
        await hub.start()
        await wait_segments(hub, "cam-a", 3)
        segments = await hub.store.segments("cam-a")
        await hub.stop()
        return segments[0].start, segments[-1].end

    start, end = asyncio.run(record())
    out = tmp_path / "pkg.zip"
    result = run_cli(
        "export",
        "cam-a",
        "-c",
        str(config),
        "--data",
        str(data),
        "--from",
        str(start),
        "--to",
        str(end + 20),
        "--reason",
        "réquisition PV 1",
        "-o",
        str(out),
        "--json",
        env=cli_env,
    )
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["stage"] for e in events if e["event"] == "progress"][-1] == "done"
    manifest = events[-1]["manifest"]
    assert manifest["gaps"][-1]["end"] == end + 20  # the part never recorded is declared
    gaps = run_cli(
        "recordings",
        "gaps",
        "cam-a",
        "-c",
        str(config),
        "--data",
        str(data),
        "--from",
        str(start),
        "--to",
        str(end + 20),
        env=cli_env,
    )
    assert gaps.returncode == 0 and "% recorded" in gaps.stdout
    keys = run_cli("keys", "public", "-c", str(config), "--data", str(data), env=cli_env)
    trusted = tmp_path / "hub.pub"
    trusted.write_text(keys.stdout)
    assert run_cli("verify", str(out), "--key", str(trusted)).returncode == 0


async def test_stall_watchdog_restarts_a_hung_stream(tmp_path: Path, ffmpeg_bin: str) -> None:
    """A camera that hangs (server frozen, socket open): only the watchdog can notice."""
    from test_cameras_rtsp import start_server, stop_server

    proc, port = start_server()
    config = site(
        tmp_path,
        [rtsp_camera("cam-h", port)],
        options={"rtsp_timeout": "60s"},
    )  # the socket timeout would not fire in time
    hub = Hub.from_file(config, data_dir=tmp_path / "data")
    hub.setup()  # the managers exist once the configuration is valid
    hub.cameras.health_interval = 60
    states: list[RecordingStateChanged] = []
    hub.bus.listen(RecordingStateChanged, states.append)
    await hub.start()
    try:
        await wait_segments(hub, "cam-h", 2, timeout=40)
        os.kill(proc.pid, signal.SIGSTOP)
        frozen_at = time.monotonic()
        for _ in range(100):
            if any("stalled" in s.reason for s in states):
                break
            await asyncio.sleep(0.1)
        assert any("stalled" in s.reason for s in states), [s.reason for s in states]
        assert time.monotonic() - frozen_at < 2 * 2.0 + 3.0  # twice the segment time
        os.kill(proc.pid, signal.SIGCONT)
        count = len(await hub.store.segments("cam-h"))
        await wait_segments(hub, "cam-h", count + 1, timeout=40)
    finally:
        await hub.stop()
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)
        stop_server(proc)


async def test_a_cancelled_export_kills_its_ffmpeg(tmp_path: Path, ffmpeg_bin: str) -> None:
    """Hub stopping mid-export: ffmpeg must not go on writing into a package that is
    being thrown away (it used to live on until garbage collection)."""
    from csuhub.recording.cutting import cut_to
    from csuhub.supervisor import ProcessGroup

    group = ProcessGroup()
    source = tmp_path / "never.mp4"
    os.mkfifo(source)  # ffmpeg blocks opening it: a cut that never ends
    listing = tmp_path / "list.ffconcat"
    listing.write_text(f"ffconcat version 1.0\nfile '{source}'\n")
    with (tmp_path / "package.zip").open("wb") as out:
        task = asyncio.create_task(
            cut_to(group, out.fileno(), ffmpeg_bin, listing, 10.0, lambda f: None)
        )
        pid = None
        deadline = time.monotonic() + 10
        while pid is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    with contextlib.suppress(OSError):
                        if str(listing).encode() in (entry / "cmdline").read_bytes():
                            pid = int(entry.name)
        assert pid is not None, "ffmpeg did not start"
        # the hub's process group tracks it (parent-death signal, reaped at stop): it
        # was started bare, outliving a killed hub and the loop of a stopped one
        assert group.pids() == [pid]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not Path(f"/proc/{pid}").exists()


async def test_export_refuses_an_index_row_pointing_outside_the_storage_root(
    tmp_path: Path,
) -> None:
    camera = {**simcam(), "enabled": False}
    hub = Hub.from_file(site(tmp_path, [camera]), data_dir=tmp_path / "data")
    await hub.start()
    try:
        outside = tmp_path / "secret.mp4"
        outside.write_bytes(b"not footage")
        await hub.store.add_segment(
            "cam-a",
            start=1000.0,
            end=1060.0,
            size=11,
            path="../../secret.mp4",
            sha256="0" * 64,
        )
        with pytest.raises(ExportError, match="outside the storage root"):
            await export_evidence(
                hub,
                hub.recording,
                "cam-a",
                1000.0,
                1060.0,
                user="x",
                reason="y",
                output=tmp_path / "p.zip",
            )
        assert not (tmp_path / "p.zip").exists()
    finally:
        await hub.stop()


# -- accurate times, honest reasons (issue 10 §5b) -----------------------------------


async def test_segments_tile_on_the_media_clock_across_a_kill(
    tmp_path: Path, ffmpeg_bin: str
) -> None:
    """Index times come from the media's timestamps: consecutive segments of a run tile
    to the millisecond, the first one after each (re)start included (it was ~2 s late,
    overlapping the next by ~3 s), no segment ends after it was indexed, and the gap a
    kill -9 leaves says the truth."""
    from test_cameras_rtsp import start_server, stop_server

    proc, port = start_server()
    hub = Hub.from_file(site(tmp_path, [rtsp_camera("cam-t", port)]), data_dir=tmp_path / "data")
    hub.setup()  # the managers exist once the configuration is valid
    hub.cameras.health_interval = 60
    indexed: dict[int, float] = {}
    hub.bus.listen(SegmentRecorded, lambda e: indexed.__setitem__(e.segment_id, e.time_fired))
    gaps: list[GapRecorded] = []
    hub.bus.listen(GapRecorded, gaps.append)
    states: list[RecordingStateChanged] = []
    hub.bus.listen(RecordingStateChanged, states.append)
    await hub.start()
    try:
        await wait_segments(hub, "cam-t", 3, timeout=40)
        await asyncio.sleep(1.0)  # mid-segment
        killed_at = time.time()
        os.kill(recorder_pid(hub), signal.SIGKILL)
        count = len(await hub.store.segments("cam-t"))
        await wait_segments(hub, "cam-t", count + 4, timeout=60)
        await hub.bus.drain()
    finally:
        await hub.stop()
        stop_server(proc)
    segments = sorted(await _segments_of(tmp_path / "data", "cam-t"))
    steps = [b[0] - a[1] for a, b in itertools.pairwise(segments)]
    jumps = [index for index, step in enumerate(steps) if abs(step) > 0.005]
    # one discontinuity: the restart after the kill; everything else tiles exactly
    assert len(jumps) == 1, steps
    assert 0.5 < steps[jumps[0]] < 15
    # the segment ffmpeg was writing when killed was kept, starts where the last listed
    # one ended, and ends at the kill (minus at most the unflushed half second)
    cut = segments[jumps[0]]
    assert killed_at - 0.8 < cut[1] <= killed_at + 0.1
    for _start, end, seg_id in segments:
        if seg_id in indexed:  # indexed live: the footage existed then (+ the last frame's 0.1 s)
            assert end <= indexed[seg_id] + 0.15, (seg_id, end, indexed[seg_id])
    restart_gaps = [g for g in gaps if g.start >= killed_at - 1]
    assert restart_gaps and restart_gaps[0].reason == "ffmpeg killed (signal 9, SIGKILL)"
    assert any(s.reason.startswith("ffmpeg killed (signal 9, SIGKILL)") for s in states)


async def _segments_of(data: Path, camera: str) -> list[tuple[float, float, int]]:
    con = sqlite3.connect(data / "csuhub.db")
    try:
        return [
            (row[0], row[1], row[2])
            for row in con.execute(
                "SELECT start, end, id FROM segments WHERE camera_id=? AND status='ok'", (camera,)
            )
        ]
    finally:
        con.close()


def _header_only(segment: Path, out: Path) -> None:
    """What a full disk leaves behind: ftyp and the empty moov, no fragment (0 packets)."""
    data = segment.read_bytes()
    pos = 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        if data[pos + 4 : pos + 8] == b"moof":
            break
        pos += size
    out.write_bytes(data[:pos])


async def test_a_segment_without_video_is_never_ok(tmp_path: Path, ffmpeg_bin: str) -> None:
    """The disk-full run indexed 885-byte, 0-packet files as ok. Found in-process: no
    process is spawned to judge a segment."""
    hub = Hub.from_file(site(tmp_path, [simcam()]), data_dir=tmp_path / "data")
    await hub.start()
    try:
        await wait_segments(hub, "cam-a", 2)
        good = (await hub.store.segments("cam-a"))[0]
        root = hub.recording.storage_root()
        folder = (root / good.path).parent
        empty = folder / "20200101T000000Z.mp4"
        _header_only(root / good.path, empty)
        assert 500 < empty.stat().st_size < 2000
        spawned: list[Any] = []
        original = hub.processes.spawn

        async def spy(args: Any, **kwargs: Any) -> Any:
            spawned.append(args)
            return await original(args, **kwargs)

        hub.processes.spawn = spy  # type: ignore[method-assign]
        result = await hub.recording.index_segment("cam-a", empty, 1577836800.0, 2.0, "x")
        assert result is not None and result[1] == "damaged"
        garbage = folder / "20200101T000010Z.mp4"
        garbage.write_bytes(b"\0" * 4000)
        result = await hub.recording.index_segment("cam-a", garbage, 1577836810.0, 2.0, "x")
        assert result is not None and result[1] == "damaged"
        assert spawned == []
    finally:
        await hub.stop()


async def test_full_disk_is_one_alarm_then_cleared(tmp_path: Path, ffmpeg_bin: str) -> None:
    """A full disk is one disk_full alarm however often ffmpeg retries into it, no
    header-only file is indexed ok, and the alarm clears when segments are written."""
    from csuhub.events import AlarmCleared, AlarmRaised
    from csuhub.recording.mp4info import media_info

    storage = mount_tmpfs(tmp_path / "small", "4m")
    try:
        filler = storage / "filler"
        filler.write_bytes(b"\0" * (4 * 1024 * 1024 - 300 * 1024))  # 300 kB left
        config = site(
            tmp_path,
            [simcam(width=640, height=360, fps=25)],
            storage=str(storage),
            options={"max_backoff": "4s"},
        )
        hub = Hub.from_file(config, data_dir=tmp_path / "data")
        alerts: list[RecordingAlert] = []
        raised: list[AlarmRaised] = []
        cleared: list[AlarmCleared] = []
        hub.bus.listen(RecordingAlert, alerts.append)
        hub.bus.listen(AlarmRaised, raised.append)
        hub.bus.listen(AlarmCleared, cleared.append)
        await hub.start()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                recorder = hub.recording.recorders.get("cam-a")
                if recorder is not None and recorder.restarts >= 3:
                    break
                await asyncio.sleep(0.2)
            assert hub.recording.recorders["cam-a"].restarts >= 3
            await hub.bus.drain()
            assert [a.kind for a in alerts].count("disk_full") == 1
            mine = [(r.kind, r.reminder) for r in raised if r.source == "recording"]
            assert mine == [("disk_full", False)]  # (retention raises storage_pressure)
            root = hub.recording.storage_root()
            for seg in await hub.store.segments("cam-a"):
                if seg.status == "ok":
                    assert media_info(root / seg.path).playable, seg
            # space again: the next segment written clears the alarm
            filler.unlink()
            await hub.bus.wait_for(AlarmCleared, match={"kind": "disk_full"}, timeout=60)
            assert hub.state == "running"
        finally:
            await hub.stop()
        con = sqlite3.connect(tmp_path / "data" / "csuhub.db")
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        unmount(storage)


# -- the event loop stays free (issue 10 §6) -------------------------------------------


async def test_stop_does_not_block_the_loop_and_the_hub_starts_again(
    tmp_path: Path, ffmpeg_bin: str
) -> None:
    """The hashing pool's ``shutdown(wait=True)`` blocked the loop at stop, and a hub
    started again had no pool (RuntimeError: cannot schedule new futures after
    shutdown)."""
    hub = Hub.from_file(site(tmp_path, [simcam()]), data_dir=tmp_path / "data")
    await hub.start()
    await wait_segments(hub, "cam-a", 1)
    indexer = hub.recording._indexer
    assert indexer is not None
    indexer._pool.submit(time.sleep, 1.5)  # a hash in progress when the hub stops
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.05)

    task = asyncio.create_task(ticker())
    try:
        await hub.stop()
    finally:
        task.cancel()
    assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.5
    count = len(await _segments_of(tmp_path / "data", "cam-a"))
    await hub.start()
    try:
        await wait_segments(hub, "cam-a", count + 2)
        segments = await hub.store.segments("cam-a")
        assert all(seg.sha256 and seg.status == "ok" for seg in segments[count:])
    finally:
        await hub.stop()


async def test_a_frame_that_times_out_leaves_no_ffmpeg(
    tmp_path: Path, ffmpeg_bin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from csuhub.web import recordings as web_recordings

    monkeypatch.setattr(web_recordings, "FRAME_TIMEOUT", 3.0)
    camera = {**simcam(), "enabled": False}
    hub = Hub.from_file(site(tmp_path, [camera]), data_dir=tmp_path / "data")
    await hub.start()
    try:
        root = hub.recording.storage_root()
        start = float(int(time.time()) - 600)  # recent: retention leaves it alone
        folder = hour_dir(root, "cam-a", start)
        folder.mkdir(parents=True)
        fifo = folder / time.strftime("%Y%m%dT%H%M%SZ.mp4", time.gmtime(start))
        os.mkfifo(fifo)  # ffmpeg blocks opening it: a decode that never ends
        await hub.store.add_segment(
            "cam-a",
            start=start,
            end=start + 60,
            size=1,
            path=fifo.relative_to(root).as_posix(),
            sha256="0" * 64,
        )
        await hub.store.create_token("viewer", "viewer", hash_secret("csu_v"))
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{hub.web.url}/api/recordings/cam-a/frame.jpg",
                params={"t": str(start + 10), "reason": "test"},
                headers={"Authorization": "Bearer csu_v"},
            ) as resp,
        ):
            assert resp.status == 504, await resp.text()
            assert "in time" in (await resp.json())["error"]
        assert hub.processes.pids() == []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    assert str(fifo).encode() not in (entry / "cmdline").read_bytes()
    finally:
        await hub.stop()


def test_children_die_with_a_killed_hub(tmp_path: Path) -> None:
    """The parent-death signal, set without ``preexec_fn`` (unsafe with threads)."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import asyncio, sys, time\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "from csuhub.supervisor import ProcessGroup\n"
        "async def main():\n"
        "    pool = ThreadPoolExecutor(2)\n"
        "    pool.submit(time.sleep, 60)\n"
        "    proc = await ProcessGroup().spawn(['sleep', '300'])\n"
        "    print(proc.pid, flush=True)\n"
        "    await asyncio.sleep(300)\n"
        "asyncio.run(main())\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    # spawn returns once setpriv is running; it sets the signal, then execs sleep
    deadline = time.monotonic() + 5
    while b"sleep\x00300" not in Path(f"/proc/{child}/cmdline").read_bytes():
        assert time.monotonic() < deadline, "setpriv never ran sleep"
        time.sleep(0.01)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{child}/stat").read_text().split()[2]
        except OSError:
            break
        if state == "Z":
            break
        time.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        raise AssertionError("the child outlived its killed parent")


def test_async_lint_rules_apply_to_the_hub() -> None:
    """ASYNC and RUF006 are selected and not ignored for csuhub/ and plugins/."""
    root = Path(__file__).parent.parent
    # the project's own configuration decides (ASYNC109 is ignored there on purpose)
    result = subprocess.run(
        [str(root / ".venv/bin/ruff"), "check", "--output-format", "concise", "csuhub", "plugins"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    found = [line for line in result.stdout.splitlines() if " ASYNC" in line or "RUF006" in line]
    assert found == []
    import tomllib

    lint = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert {"ASYNC", "RUF"} <= set(lint["select"]) and "RUF006" not in lint["ignore"]
    # no preexec_fn anywhere, the benchmarks included (unsafe while threads run)
    assert "PLW1509" in lint["select"] and "PLW1509" not in lint["ignore"]
    for pattern, ignored in lint.get("per-file-ignores", {}).items():
        if pattern.startswith(("csuhub", "plugins")):
            assert not {"ASYNC", "RUF006", "RUF"} & set(ignored), pattern


# -- a media clock that cannot be fooled (ACCEPT3) ------------------------------------


def _place(clock: Any, received: float, start: float, end: float) -> tuple[float, float]:
    """(wall start, duration) as the recorder indexes it (the clock once gave the start
    only, the duration then being the media's)."""
    placed = clock.place(received, start, end)
    return placed if isinstance(placed, tuple) else (placed, end - start)


def test_a_first_segment_listed_late_puts_nothing_in_the_future() -> None:
    """Against a source whose SDP has no frame rate, ffmpeg analyses ~20 frames and
    lists the first segment late (0.7 s here): the anchor was late, the next two
    segments were indexed 0.7 s in the future, then re-anchoring overlapped them."""
    from csuhub_ffmpeg import MediaClock

    zero = 1_000.0  # wall time of media 0; the list arrives 2 ms after each end
    clock = MediaClock(not_before=zero - 1.5)
    placed = [_place(clock, zero + 2.7, 0.0, 2.0)]  # late: the analysis burst
    for index in range(1, 6):
        placed.append(_place(clock, zero + 2.0 * (index + 1) + 0.002, 2.0 * index, 2.0 * index + 2))
    received = [zero + 2.7] + [zero + 2.0 * (i + 1) + 0.002 for i in range(1, 6)]
    for (start, duration), (next_start, _), got in zip(placed, placed[1:], received, strict=False):
        assert start + duration <= got + 1e-9
        assert abs(start + duration - next_start) < 1e-6  # tiles: no overlap, no hole
    # once corrected, the media's own durations again
    assert [round(d, 6) for _, d in placed[2:]] == [2.0] * 4


def test_camera_timestamps_that_jump_never_overlap_nor_run_ahead() -> None:
    """Seen with an RTSP camera whose RTP timestamps jumped +10 s: one 2 s file indexed
    as 12 s ending 10 s in the future, then segments overlapping it by 10 s; and after a
    jump back, segments indexed on top of each other."""
    from csuhub_ffmpeg import MediaClock

    zero = 1_000.0
    clock = MediaClock(not_before=zero - 1.0)
    media = [(0.0, 2.0), (2.0, 4.0), (4.0, 16.0), (16.0, 18.0), (18.0, 20.0)]  # +10 in the 3rd
    media += [(10.0, 12.0), (12.0, 14.0), (14.0, 16.0), (16.0, 18.0)]  # then back 10 s
    placed = []
    for index, (start, end) in enumerate(media):
        received = zero + 2.0 * (index + 1) + 0.002
        wall_start, duration = _place(clock, received, start, end)
        assert duration >= 0 and wall_start + duration <= received + 1e-9, index
        placed.append((wall_start, wall_start + duration))
    for (_, end), (start, _) in itertools.pairwise(placed):
        assert start >= end - 1e-9
    assert placed[2][1] - placed[2][0] < 2.1  # the file holds 2 s, not 12


@settings(max_examples=300, deadline=None)
@given(
    st.floats(0.0, 3.0),
    st.lists(
        st.tuples(
            st.floats(0.5, 4.0),  # wall seconds of footage in the segment
            st.floats(0.0, 0.3),  # listing latency
            st.sampled_from([0.0, 0.0, 0.0, 10.0, -10.0, 3600.0, -0.7]),  # jump before
            st.sampled_from([0.0, 0.0, 0.0, 10.0, -1.0]),  # jump inside
        ),
        min_size=1,
        max_size=25,
    ),
)
def test_media_clock_placements_never_overlap_nor_end_in_the_future(
    first_delay: float, segments: list[tuple[float, float, float, float]]
) -> None:
    """Whatever the camera's timestamps say (outside input), the index keeps its
    invariants: no segment starts before the previous one ended, none ends after it
    was listed, no negative duration."""
    from csuhub_ffmpeg import MediaClock

    wall = 5_000.0
    clock = MediaClock(not_before=wall - 0.5)
    media = 0.0
    last_received = 0.0
    previous_end: float | None = None
    for index, (seconds, latency, jump, inner) in enumerate(segments):
        media += jump
        start, end = media, media + seconds + inner
        wall += seconds
        received = max(wall + latency + (first_delay if index == 0 else 0.0), last_received)
        last_received = received
        media = end
        if end < start:  # parse_list_line refuses these
            continue
        wall_start, duration = _place(clock, received, start, end)
        assert duration >= 0
        assert wall_start + duration <= received + 1e-6
        if previous_end is not None:
            assert wall_start >= previous_end - 1e-6
        previous_end = wall_start + duration


async def test_a_burst_of_segments_in_one_second_never_overwrites_one(
    tmp_path: Path, ffmpeg_bin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ffmpeg catching up (a stall, a start-up behind the stream analysis) closes
    several segments within a second. With ``-strftime`` names (to the second) it
    truncated the earlier file: the index kept a row whose size and SHA-256 no longer
    matched, and the later segment was never indexed. Here the camera's clip is read
    as fast as ffmpeg can (no ``-re``): a dozen 2 s segments in well under a second."""
    import csuhub_ffmpeg

    from csuhub.protocols import StreamSource

    listed: list[str] = []
    real_parse = csuhub_ffmpeg.parse_list_line

    def spy(line: bytes) -> tuple[str, float, float] | None:
        entry = real_parse(line)
        if entry is not None:
            listed.append(entry[0])
        return entry

    monkeypatch.setattr(csuhub_ffmpeg, "parse_list_line", spy)
    hub = Hub.from_file(site(tmp_path, [simcam()]), data_dir=tmp_path / "data")
    await hub.start()
    try:
        await wait_segments(hub, "cam-a", 1)
        await hub.recording._stop_recorder("cam-a", "test")  # the burst records alone
        before = {seg.path for seg in await hub.store.segments("cam-a")}
        listed.clear()
        clip = hub.cameras.drivers["cam-a"].clip
        assert hub.recording.backend is not None
        recorder = hub.recording.backend.recorder(
            "cam-a",
            StreamSource(url=str(clip), input_options={"stream_loop": "5"}),
            hub.recording,
            2.0,
            False,
        )
        started = time.monotonic()
        state, _ = await recorder._run_once()
        assert state == "ended" and time.monotonic() - started < 10
        rows = [s for s in await hub.store.segments("cam-a") if s.path not in before]
        root = hub.recording.storage_root()
        # 24 s of media in 2 s segments, closed in a burst
        assert len(listed) >= 8
        assert len(rows) == len(listed), (len(rows), listed)
        inodes = set()
        for seg in rows:
            path = root / seg.path
            data = path.read_bytes()
            assert (len(data), hashlib.sha256(data).hexdigest()) == (seg.size, seg.sha256)
            inodes.add(path.stat().st_ino)
        assert len(inodes) == len({seg.path for seg in rows}) == len(rows)
        # the same seconds got -2, -3... names, still read as the segment's start
        for seg in rows:
            filed = layout.segment_start(Path(seg.path).name)
            assert filed is not None and abs(filed - seg.start) < 1
        # nothing left in the staging folder, nothing on disk the index does not know
        staging = root / "cam-a" / layout.STAGING
        assert not any(staging.iterdir())
        on_disk = {p.relative_to(root).as_posix() for p in (root / "cam-a").rglob("*.mp4")}
        assert on_disk == {seg.path for seg in await hub.store.segments("cam-a")}
    finally:
        await hub.stop()


@settings(max_examples=300, deadline=None)
@given(
    start=st.integers(min_value=0, max_value=253402300799),
    rank=st.integers(min_value=1, max_value=99999),
    junk=st.text(max_size=40),
)
def test_segment_names_read_back_and_never_raise(start: int, rank: int, junk: str) -> None:
    """File names are read from disk (reconciliation): any text is a name or None,
    never an exception; a placed name gives back its start and same-second rank."""
    base = time.strftime(layout.NAME_FORMAT, time.gmtime(start))
    name = f"{base}.mp4" if rank == 1 else f"{base}-{rank}.mp4"
    assert layout.segment_order(name) == (float(start), rank)
    assert layout.segment_start(name) == float(start)
    for text in (junk, f"{base}{junk}.mp4", f"{base}-{junk}.mp4"):
        order = layout.segment_order(text)
        assert order is None or layout.segment_start(text) == order[0]
        key = layout.staged_key(text)
        assert key is None or isinstance(key[1], int)
    assert layout.segment_order(f"{base}-1.mp4") is None  # rank 1 has no suffix
    assert layout.segment_order(f"{base}-02.mp4") is None


def test_placing_makes_the_hour_folder_only_when_it_is_missing(tmp_path: Path) -> None:
    """``place`` links first and makes the hour folder only when the link finds it
    missing: a new hour, a folder the sweeper removed. A staged file that vanished
    is a FileNotFoundError, not a retry forever."""
    staging = tmp_path / "cam" / layout.STAGING
    staging.mkdir(parents=True)
    start = 1795000000.0
    folder = hour_dir(tmp_path, "cam", start)
    assert not folder.exists()
    first = staging / f"{layout.new_run_id(start)}-000000.mp4"
    first.write_bytes(b"one")
    assert layout.place(first, folder, start).read_bytes() == b"one"
    folder.joinpath(f"{time.strftime(layout.NAME_FORMAT, time.gmtime(start))}.mp4").unlink()
    folder.rmdir()  # as a sweep leaves it: the next placement makes it again
    second = staging / f"{layout.new_run_id(start)}-000001.mp4"
    second.write_bytes(b"two")
    assert layout.place(second, folder, start + 10).read_bytes() == b"two"
    with pytest.raises(FileNotFoundError):
        layout.place(staging / "gone.mp4", folder, start + 20)
    with pytest.raises(FileNotFoundError):
        layout.place(staging / "gone.mp4", hour_dir(tmp_path, "cam", start + 7200), start + 7200)


async def test_a_staged_segment_is_placed_in_its_hashing_hand_off(
    tmp_path: Path, ffmpeg_bin: str
) -> None:
    """A recorder hands in its file still staged: the manager places it under its
    start, in the thread that hashes it, and indexes the placed file."""
    hub = Hub.from_file(site(tmp_path, [simcam()]), data_dir=tmp_path / "data")
    await hub.start()
    try:
        await wait_segments(hub, "cam-a", 1)
        good = (await hub.store.segments("cam-a"))[0]
        root = hub.recording.storage_root()
        staged = layout.staging_dir(root / "cam-a") / f"{layout.new_run_id()}-999999.mp4"
        staged.write_bytes((root / good.path).read_bytes())
        start = 1577836800.0
        result = await hub.recording.index_segment("cam-a", staged, start, 2.0, "x")
        assert result is not None and result[1] == "ok"
        assert not staged.exists()
        row = await hub.store.segment(result[0])
        assert row is not None
        assert row.path == "cam-a/2020/01/01/00/20200101T000000Z.mp4"
        assert (root / row.path).read_bytes() == (root / good.path).read_bytes()
        # a staged file that vanished is not indexed
        gone = staged.with_name(f"{layout.new_run_id()}-999998.mp4")
        assert await hub.recording.index_segment("cam-a", gone, start + 2, 2.0, "x") is None
        # a file outside the storage root is never indexed, not even beside it under
        # a name the root's is a prefix of
        beside = root.parent / f"{root.name}-beside" / "cam-a" / "x.mp4"
        beside.parent.mkdir(parents=True)
        beside.write_bytes((root / good.path).read_bytes())
        with pytest.raises(ValueError, match="not under the storage root"):
            await hub.recording.index_segment("cam-a", beside, start + 4, 2.0, "x")
        assert len(await hub.store.segments("cam-a", start, start + 10)) == 1
        # the callback form (a recorder reading its list in a protocol): done(None) on
        # the loop once the row is durable, done(error) when it cannot be
        loop = asyncio.get_running_loop()
        answers: list[tuple[str, BaseException | None]] = []
        finished = asyncio.Event()

        def done(label: str, error: BaseException | None) -> None:
            assert asyncio.get_running_loop() is loop
            answers.append((label, error))
            if len(answers) == 2:
                finished.set()

        again = staged.with_name(f"{layout.new_run_id()}-999997.mp4")
        again.write_bytes((root / good.path).read_bytes())
        hub.recording.submit_segment("cam-a", str(again), start + 6, 2.0, lambda e: done("ok", e))
        hub.recording.submit_segment("cam-a", beside, start + 8, 2.0, lambda e: done("out", e))
        await asyncio.wait_for(finished.wait(), 10)
        errors = dict(answers)
        assert errors["ok"] is None
        assert isinstance(errors["out"], ValueError)
        rows = await hub.store.segments("cam-a", start + 6, start + 10)
        assert [row.path for row in rows] == ["cam-a/2020/01/01/00/20200101T000006Z.mp4"]
    finally:
        await hub.stop()


def test_placing_never_replaces_a_segment(tmp_path: Path) -> None:
    """Two files placed at the same second both survive, in order; a file left with
    two names by a crash between link and unlink is not placed twice."""
    staging = tmp_path / "cam" / layout.STAGING
    staging.mkdir(parents=True)
    start = 1795000000.5
    folder = hour_dir(tmp_path, "cam", start)
    placed = []
    for number in range(3):
        staged = staging / f"{layout.new_run_id(start)}-{number:06d}.mp4"
        staged.write_bytes(b"segment %d" % number)
        placed.append(layout.place(staged, folder, start))
        assert not staged.exists()
    base = time.strftime(layout.NAME_FORMAT, time.gmtime(start))
    assert [p.name for p in placed] == [f"{base}.mp4", f"{base}-2.mp4", f"{base}-3.mp4"]
    assert [p.read_bytes() for p in placed] == [b"segment 0", b"segment 1", b"segment 2"]
    leftover = staging / f"{layout.new_run_id()}-000000.mp4"
    leftover.write_bytes(b"x")
    os.link(leftover, folder / "elsewhere.mp4")
    assert layout.already_placed(leftover) and not leftover.exists()
    single = staging / f"{layout.new_run_id()}-000001.mp4"
    single.write_bytes(b"y")
    assert not layout.already_placed(single) and single.exists()
