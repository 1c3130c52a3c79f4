from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from csuhub.events import PluginFailed, TaskCrashed
from csuhub.hookspecs import hookimpl
from csuhub.hub import Hub
from csuhub.plugins import make_plugin_manager
from csuhub.runner import Runner
from csuhub.testing import build_hub, wait_camera_state


def _ep(name: str, value: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name=name, value=value, group="csuhub")


def test_plugin_import_failure_and_duplicates_are_reported_by_name() -> None:
    eps = [
        _ep("simcam", "csuhub_simcam"),
        _ep("ghost", "csuhub_does_not_exist"),
        _ep("simcam", "csuhub_simcam"),  # a second distribution claiming the same name
    ]
    pm = make_plugin_manager(entry_points=lambda: eps)
    states = {key: (str(r.state), r.reason or "") for key, r in pm.records.items()}
    assert states["simcam"][0] == "loaded"
    assert states["ghost"][0] == "failed" and "import failed" in states["ghost"][1]
    duplicates = [v for k, v in states.items() if k.startswith("simcam#")]
    assert duplicates and "duplicate plugin name" in duplicates[0][1]


def test_disabled_plugin_is_not_imported() -> None:
    pm = make_plugin_manager(
        disabled=["ghost"], entry_points=lambda: [_ep("ghost", "csuhub_does_not_exist")]
    )
    assert str(pm.records["ghost"].state) == "disabled"


def test_unknown_hook_fails_only_that_plugin() -> None:
    class Typo:
        @hookimpl
        def register_camera_driver(self, hub: Any) -> list[Any]:  # missing "s"
            return []

    pm = make_plugin_manager(load_entrypoints=False, plugins=[("typo", Typo())])
    assert str(pm.records["typo"].state) == "failed"
    assert "unknown hook" in (pm.records["typo"].reason or "")


async def test_plugin_raising_in_setup_is_disabled_and_hub_runs(hub_factory: Any) -> None:
    class Broken:
        @hookimpl
        def register_camera_drivers(self, hub: Any) -> list[Any]:
            raise RuntimeError("vendor SDK missing")

        @hookimpl
        def register_call_lines(self, hub: Any) -> list[Any]:
            return []

    failures: list[PluginFailed] = []
    async with hub_factory(plugins=[("broken", Broken())]) as hub:
        hub.bus.listen(PluginFailed, failures.append)
        record = hub.pm.records["broken"]
        assert str(record.state) == "failed"
        assert "vendor SDK missing" in (record.reason or "")
        assert hub.pm.get_plugin("broken") is None
        assert hub.state == "running"
        assert "simcam" in hub.registry.camera_drivers
        assert hub.health()["failed_plugins"] == ["broken"]
        assert hub.health()["status"] == "degraded"


def test_bad_spec_type_disables_plugin(tmp_path: Path) -> None:
    class Wrong:
        @hookimpl
        def register_camera_drivers(self, hub: Any) -> list[Any]:
            return ["not a spec"]

    hub = build_hub(tmp_path, plugins=[("wrong", Wrong())], load_entrypoints=False)
    assert "expected CameraDriverSpec" in (hub.pm.records["wrong"].reason or "")


async def test_supervisor_restarts_crashed_task_with_backoff(hub_factory: Any) -> None:
    async with hub_factory() as hub:
        hub.supervisor.initial_backoff = 0.01
        runs: list[float] = []
        crashes: list[TaskCrashed] = []
        hub.bus.listen(TaskCrashed, crashes.append)
        done = asyncio.Event()

        async def flaky() -> None:
            runs.append(time.monotonic())
            if len(runs) < 4:
                raise ConnectionError(f"attempt {len(runs)}")
            done.set()

        hub.supervisor.spawn("flaky", flaky)
        await asyncio.wait_for(done.wait(), 5)
        await hub.bus.drain()
    assert len(runs) == 4
    assert [c.crashes for c in crashes] == [1, 2, 3]
    assert [c.restart_in for c in crashes] == [0.01, 0.02, 0.04]
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    assert gaps[2] >= 0.035  # the backoff doubled


async def test_start_and_stop_are_audited_and_unwound(hub_factory: Any) -> None:
    async with hub_factory() as hub:
        assert hub.state == "running"
        hub.supervisor.spawn("sleeper", lambda: asyncio.sleep(3600))
        assert "sleeper" in hub.supervisor.running()
    assert hub.state == "stopped"
    assert hub.supervisor.running() == []
    # the store was closed; reopen it and read the trail
    from csuhub.store import Store

    store = Store(hub.data_dir / "csuhub.db")
    await store.open()
    actions = [r.action for r in await store.audit_records(target="test-hub")]
    await store.close()
    assert actions[:2] == ["hub.stop", "hub.start"]


def test_managers_exist_only_once_the_configuration_is_valid(tmp_path: Path) -> None:
    hub = Hub({"hub": {"name": "early"}}, source="<test>", data_dir=tmp_path, web=False)
    with pytest.raises(RuntimeError, match=r"hub\.cameras is built by hub\.setup\(\)"):
        hub.cameras  # noqa: B018
    with pytest.raises(RuntimeError, match="setup"):
        hub.store  # noqa: B018
    hub.setup()
    assert hub.retention.cameras is hub.cameras
    assert hub.requisitions.retention is hub.retention


async def test_health_endpoint_reports_hub_plugins_and_cameras(csuhub_hub: Hub) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{csuhub_hub.web.url}/api/health") as resp:
            assert resp.status == 200
            body = await resp.json()
        async with session.get(f"{csuhub_hub.web.url}/api/unknown") as resp:
            assert resp.status in (401, 404)
    assert body["hub"]["name"] == "test-hub"
    assert body["plugins"]["simcam"] == "loaded"
    assert body["status"] == "ok"
    assert isinstance(body["cameras"], dict)
    assert csuhub_hub.web.url.startswith("http://127.0.0.1:")


def _ffmpeg_forever() -> list[str]:
    return [
        shutil.which("ffmpeg") or "ffmpeg",
        "-hide_banner",
        "-loglevel",
        "error",
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x64:rate=5",
        "-f",
        "null",
        "-",
    ]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    with contextlib.suppress(FileNotFoundError):
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return False


async def test_stop_during_start_leaves_no_orphan_ffmpeg(tmp_path: Path, ffmpeg_bin: str) -> None:
    spawned: list[int] = []
    blocked = asyncio.Event()

    class SlowStart:
        @hookimpl
        def hub_lifespan(self, hub: Hub) -> Any:
            @contextlib.asynccontextmanager
            async def span() -> AsyncIterator[None]:
                proc = await hub.processes.spawn(_ffmpeg_forever())
                spawned.append(proc.pid)
                blocked.set()
                await asyncio.sleep(3600)  # start-up hangs here
                yield

            return span()

    hub = build_hub(tmp_path, plugins=[("slow", SlowStart())], load_entrypoints=False)
    runner = Runner(hub)
    running = asyncio.create_task(runner.run(handle_signals=False))
    await asyncio.wait_for(blocked.wait(), 10)
    assert _alive(spawned[0])
    runner.request_stop("SIGTERM")
    reason = await asyncio.wait_for(running, 15)
    assert reason == "SIGTERM"
    assert hub.state == "stopped"
    assert not _alive(spawned[0])


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                stat = (entry / "stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                if int(fields[1]) == pid:
                    out.append(int(entry.name))
    return out


def _wait_for_ffmpeg_child(proc: subprocess.Popen[str], timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in _children(proc.pid):
            with contextlib.suppress(OSError):
                if Path(f"/proc/{child}/comm").read_text().strip() == "ffmpeg":
                    return child
        time.sleep(0.01)
    raise AssertionError("the demo never started ffmpeg")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_demo_killed_while_encoding_leaves_no_orphan(
    tmp_path: Path, cli_env: dict[str, str], sig: signal.Signals, ffmpeg_bin: str
) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "csuhub",
            "demo",
            "--data",
            str(tmp_path / "d"),
            "--port",
            "0",
            "--cameras",
            "6",
        ],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        child = _wait_for_ffmpeg_child(proc)
        os.kill(proc.pid, sig)
        proc.wait(timeout=20)
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), f"ffmpeg {child} outlived the hub"
        if sig == signal.SIGTERM:
            assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_hub_starts_despite_broken_and_duplicate_entry_points(tmp_path: Path) -> None:
    eps = [
        _ep("simcam", "csuhub_simcam"),
        _ep("ghost", "csuhub_does_not_exist"),
        _ep("simcam", "csuhub_simcam"),
    ]
    pm = make_plugin_manager(entry_points=lambda: eps)
    hub = Hub({"hub": {"web": {"port": 0}}}, data_dir=tmp_path, pm=pm)
    await hub.start()
    try:
        assert hub.state == "running"
        health = hub.health()
        assert health["plugins"]["ghost"] == "failed"
        assert "ghost" in health["failed_plugins"]
        assert "simcam" in hub.registry.camera_drivers
    finally:
        await hub.stop()


async def test_healthy_camera_last_seen_is_not_written_on_every_check(tmp_path: Path) -> None:
    """A durable transaction per camera per health check is waste: last_seen is
    written on the first healthy check, then at most every LAST_SEEN_EVERY."""
    config = {
        "recording": {"backend": "none-for-this-test"},
        "cameras": [
            {
                "id": "cam-a",
                "driver": "simcam",
                "authorization": {
                    "reference": "2022-VP-1",
                    "issued": "2022-01-10",
                    "expires": "2099-01-09",
                },
            }
        ],
    }
    hub = build_hub(tmp_path / "data", config, health_interval=0.02)
    checks = 0
    seen_writes: list[float] = []
    await hub.start()
    try:
        driver = hub.cameras.drivers["cam-a"]
        real_check = driver.check_health

        healthy = True

        async def counted() -> bool:
            nonlocal checks
            checks += 1
            return healthy and await real_check()

        driver.check_health = counted  # type: ignore[method-assign]
        real_upsert = hub.store.upsert_camera

        async def upsert(camera_id: str, **fields: Any) -> Any:
            if "last_seen" in fields:
                seen_writes.append(fields["last_seen"])
            return await real_upsert(camera_id, **fields)

        hub.store.upsert_camera = upsert  # type: ignore[method-assign]
        hub.cameras.seen_saved.clear()  # as if no check had run yet
        await asyncio.sleep(0.5)
        assert checks >= 5
        assert len(seen_writes) == 1
        record = await hub.store.get_camera("cam-a")
        assert record is not None and record.last_seen == seen_writes[0]
        # when it stops answering, the stored last_seen becomes the true last contact
        healthy = False
        await wait_camera_state(hub, "cam-a", "offline", timeout=5)
        record = await hub.store.get_camera("cam-a")
        assert record is not None and record.last_seen == hub.cameras.last_seen["cam-a"]
        assert record.last_seen > seen_writes[0]
    finally:
        await hub.stop()
