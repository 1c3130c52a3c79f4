"""Reload without downtime: validate first, keep the old config when invalid,
apply only what changed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import voluptuous as vol
from conftest import run_cli

import csuhub.hub
from csuhub.events import ConfigReloaded, ConfigReloadFailed
from csuhub.hookspecs import hookimpl
from csuhub.hub import Hub
from csuhub.plugins import make_plugin_manager
from csuhub.security.tokens import hash_secret
from csuhub.specs import RetentionPolicySpec
from csuhub.testing import wait_camera_state

AUTH = "authorization: {reference: A-1, issued: 2022-01-10, expires: 2099-01-09}"


def camera(cid: str, pattern: str = "testsrc2") -> str:
    return (
        f"  - id: {cid}\n    driver: simcam\n    {AUTH}\n"
        f"    options: {{pattern: {pattern}, width: 160, height: 96, clip_seconds: 2}}\n"
    )


def write_site(path: Path, *cameras: str, port: int = 0, extra: str = "") -> None:
    path.write_text(
        f"hub:\n  name: Reload test\n  web: {{host: 127.0.0.1, port: {port}}}\n"
        "cameras:\n" + "".join(cameras) + extra
    )


async def wait_online(hub: Hub, camera_id: str) -> None:
    await wait_camera_state(hub, camera_id, "online", timeout=30)


@pytest.fixture
async def running(tmp_path: Path, ffmpeg_bin: str) -> Any:
    site = tmp_path / "site.yaml"
    write_site(site, camera("cam-1"), camera("cam-2", "smptebars"))
    hub = Hub.from_file(site, data_dir=tmp_path / "data")
    await hub.start()
    await wait_online(hub, "cam-1")
    await wait_online(hub, "cam-2")
    yield hub, site
    await hub.stop()


async def test_adding_a_camera_leaves_the_others_alone(running: Any) -> None:
    hub, site = running
    drivers_before = dict(hub.cameras.drivers)
    events: list[ConfigReloaded] = []
    hub.bus.listen(ConfigReloaded, events.append)
    write_site(site, camera("cam-1"), camera("cam-2", "smptebars"), camera("cam-3", "mandelbrot"))
    report = await hub.reload("test")
    assert report["ok"] is True
    assert report["diff"]["cameras"] == {"added": ["cam-3"], "removed": [], "changed": []}
    await wait_online(hub, "cam-3")
    assert hub.cameras.drivers["cam-1"] is drivers_before["cam-1"]
    assert hub.cameras.drivers["cam-2"] is drivers_before["cam-2"]
    await hub.bus.drain()
    assert events[0].cameras["added"] == ["cam-3"] and events[0].trigger == "test"
    status = json.loads((hub.data_dir / "reload.json").read_text())
    assert status["ok"] is True and status["generation"] == 1


async def test_changed_and_removed_cameras(running: Any) -> None:
    hub, site = running
    kept = hub.cameras.drivers["cam-1"]
    write_site(site, camera("cam-1"))  # cam-2 removed
    report = await hub.reload("test")
    assert report["diff"]["cameras"]["removed"] == ["cam-2"]
    assert hub.cameras.states["cam-2"] == "removed" and "cam-2" not in hub.cameras.drivers
    assert "camera-health:cam-2" not in hub.supervisor.running()
    write_site(site, camera("cam-1", "rgbtestsrc"))  # cam-1 changed
    report = await hub.reload("test")
    assert report["diff"]["cameras"]["changed"] == ["cam-1"]
    await wait_online(hub, "cam-1")
    assert hub.cameras.drivers["cam-1"] is not kept


async def test_broken_file_keeps_the_running_config(running: Any) -> None:
    hub, site = running
    before = hub.config
    drivers = dict(hub.cameras.drivers)
    failures: list[ConfigReloadFailed] = []
    hub.bus.listen(ConfigReloadFailed, failures.append)
    site.write_text("hub: [broken\n")
    report = await hub.reload("test")
    assert report["ok"] is False
    assert report["errors"][0].startswith(f"{site}:1:6:")
    site.write_text("cameras:\n  - {id: cam-1, driver: simcam}\n  - {id: cam-1, driver: simcam}\n")
    report = await hub.reload("test")
    assert report["ok"] is False and "duplicate camera id" in report["errors"][0]
    assert hub.config is before
    assert hub.cameras.drivers == drivers
    assert hub.state == "running"
    await hub.bus.drain()
    assert len(failures) == 2
    records = await hub.store.audit_records(target=str(site))
    assert [r.action for r in records[:2]] == ["config.reload_refused"] * 2


async def test_hub_section_changes_need_a_restart(running: Any) -> None:
    hub, site = running
    port = hub.web.port
    write_site(site, camera("cam-1"), camera("cam-2", "smptebars"), port=port + 1)
    report = await hub.reload("test")
    assert report["ok"] is True and report["diff"]["restart_required"] == ["hub"]
    assert hub.config.hub["web"]["port"] == 0  # the running listener keeps its settings


async def test_reload_api_needs_admin(running: Any) -> None:
    hub, site = running
    await hub.store.create_token("admin-1", "admin", hash_secret("csu_admin"))
    await hub.store.create_token("op-1", "operator", hash_secret("csu_op"))
    url = f"{hub.web.url}/api/config/reload"
    async with aiohttp.ClientSession() as session:
        async with session.post(url) as resp:
            assert resp.status == 401
        async with session.post(url, headers={"Authorization": "Bearer csu_op"}) as resp:
            assert resp.status == 403
        write_site(site, camera("cam-1"), camera("cam-2", "smptebars"), camera("cam-9"))
        async with session.post(url, headers={"Authorization": "Bearer csu_admin"}) as resp:
            assert resp.status == 200
            body = await resp.json()
            assert body["diff"]["cameras"]["added"] == ["cam-9"]
            assert body["trigger"] == "api:admin-1"
        site.write_text("cameras: {oops\n")
        async with session.post(url, headers={"Authorization": "Bearer csu_admin"}) as resp:
            assert resp.status == 422
            assert (await resp.json())["ok"] is False
    # the entries holding the diff and the refusal name the request's principal
    for action, key in (("config.reload", '"diff"'), ("config.reload_refused", '"errors"')):
        entries = await hub.store.audit_trail.entries(action=action)
        (done,) = [e for e in entries if key in e["details"]]
        assert done["actor"] == "admin-1" and done["role"] == "admin", entries
        assert done["source"] == "127.0.0.1" and done["via"]


async def test_one_hub_per_data_directory(running: Any, tmp_path: Path) -> None:
    hub, site = running
    other = Hub.from_file(site, data_dir=hub.data_dir, web=False)
    with pytest.raises(OSError, match=f"another hub \\(pid {os.getpid()}\\) is running"):
        await other.start()
    assert other.state == "stopped"


def _wait_line(proc: subprocess.Popen[str], needle: str, timeout: float = 30) -> list[dict]:
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        event = json.loads(line)
        seen.append(event)
        if needle in line:
            return seen
    raise AssertionError(f"never saw {needle!r}: {seen}")


def test_cli_reload_and_sighup(tmp_path: Path, cli_env: dict[str, str], ffmpeg_bin: str) -> None:
    site = tmp_path / "site.yaml"
    data = tmp_path / "data"
    write_site(site, camera("cam-1"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "csuhub", "run", "-c", str(site), "--data", str(data), "--json"],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_line(proc, '"hub_started"')
        write_site(site, camera("cam-1"), camera("cam-2", "smptebars"))
        result = run_cli("reload", "-c", str(site), "--data", str(data), env=cli_env)
        assert result.returncode == 0, result.stderr
        assert "cameras +1 -0 ~0" in result.stdout
        _wait_line(proc, '"config_reloaded"')
        # an invalid file is refused by the CLI before the hub is even signalled
        site.write_text("cameras:\n  - {id: cam-1}\n")
        result = run_cli("reload", "-c", str(site), "--data", str(data), env=cli_env)
        assert result.returncode == 1
        assert f"{site}:2:5: cameras[0].driver: required key 'driver' is missing" in result.stderr
        assert "the running hub keeps its configuration" in result.stderr
        # and a raw SIGHUP with the broken file is refused by the hub itself
        os.kill(proc.pid, signal.SIGHUP)
        events = _wait_line(proc, '"config_reload_failed"')
        assert "required key 'driver' is missing" in events[-1]["errors"][0]
        assert proc.poll() is None  # still running on the old configuration
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert proc.returncode == 0


def test_cli_reload_without_a_running_hub(tmp_path: Path, cli_env: dict[str, str]) -> None:
    site = tmp_path / "site.yaml"
    write_site(site, camera("cam-1"))
    result = run_cli("reload", "-c", str(site), "--data", str(tmp_path / "d"), env=cli_env)
    assert result.returncode == 1 and "no hub is running" in result.stderr


def test_blueprint_change_is_seen_by_reload(tmp_path: Path) -> None:
    """A reload re-reads blueprints that changed on disk (cache keyed by mtime)."""
    (tmp_path / "blueprints" / "retention").mkdir(parents=True)
    blueprint = tmp_path / "blueprints" / "retention" / "local.yaml"
    blueprint.write_text("blueprint: {name: local, domain: retention}\ndefault: 7d\n")
    site = tmp_path / "site.yaml"
    site.write_text("retention:\n  use_blueprint: {path: retention/local.yaml}\n")

    async def scenario() -> None:
        hub = Hub.from_file(site, data_dir=tmp_path / "data", web=False)
        await hub.start()
        try:
            assert hub.config.data["retention"]["default"] == 7 * 86400
            blueprint.write_text("blueprint: {name: local, domain: retention}\ndefault: 10d\n")
            os.utime(blueprint, ns=(1, 1))
            report = await hub.reload("test")
            assert report["ok"] and report["diff"]["sections"] == ["retention"]
            assert hub.config.data["retention"]["default"] == 10 * 86400
        finally:
            await hub.stop()

    asyncio.run(scenario())


class ArchivePolicy:
    """A vendor retention policy whose factory fails when told to (real plugin)."""

    @hookimpl
    def register_retention_policies(self, hub: Any) -> list[RetentionPolicySpec]:
        def factory(hub: Any, options: dict[str, Any]) -> Any:
            if options["explode"]:
                raise RuntimeError("archive unreachable")
            return ArchivePolicy()

        return [
            RetentionPolicySpec(
                name="archive",
                factory=factory,
                config_schema=vol.Schema({vol.Optional("explode", default=False): bool}),
            )
        ]

    async def plan(self, sweep: Any) -> list[Any]:
        return []


RETENTION = "retention:\n  default: 14d\n  policies:\n    - policy: max_age\n"


async def test_reload_keeps_the_policies_when_new_ones_cannot_be_built(tmp_path: Path) -> None:
    """Issue 10, 3c: a typo in a policy's options (caught by validation) or a
    policy whose factory fails must leave the running policies in place; the
    hub never sweeps with "policies: none"."""
    site = tmp_path / "site.yaml"
    site.write_text(RETENTION + "    - policy: archive\n")
    pm = make_plugin_manager(plugins=[("archive", ArchivePolicy())])
    hub = Hub.from_file(site, data_dir=tmp_path / "data", pm=pm, web=False)
    await hub.start()
    try:
        before = list(hub.retention.policies)
        assert [name for name, _ in before] == ["max_age", "archive"]

        site.write_text(
            RETENTION.replace("default: 14d", "default: 7d") + "      options:\n"
            "        max_aeg: 3d\n    - policy: archive\n"
        )
        report = await hub.reload("test")
        assert report["ok"] is False
        assert report["errors"][0].startswith(
            f"{site}:6:9: retention.policies[0].options.max_aeg: retention policy 'max_age': "
            "unknown key 'max_aeg'"
        )
        assert hub.retention.policies == before
        assert hub.config.data["retention"]["default"] == 14 * 86400

        site.write_text(
            RETENTION.replace("default: 14d", "default: 7d")
            + "    - policy: archive\n      options: {explode: true}\n"
        )
        report = await hub.reload("test")
        assert report["ok"] is False
        assert report["errors"] == [
            f"{site}:5:7: retention.policies[1]: retention policy 'archive' cannot be built: "
            "RuntimeError: archive unreachable (the hub never runs with fewer retention "
            "policies than the site names)"
        ]
        assert hub.retention.policies == before
        assert hub.config.data["retention"]["default"] == 14 * 86400

        site.write_text(RETENTION.replace("default: 14d", "default: 7d"))
        report = await hub.reload("test")
        assert report["ok"] is True
        assert [name for name, _ in hub.retention.policies] == ["max_age"]
        assert hub.retention.config["default"] == 7 * 86400
    finally:
        await hub.stop()


async def test_secret_is_read_once_not_on_each_call(tmp_path: Path) -> None:
    """Issue 10, 6: hub.secret() parsed secrets.yaml on the event loop at each
    call; it is now read with the site file (or in a thread) and looked up."""
    site = tmp_path / "site.yaml"
    site.write_text("hub: {name: Secrets}\n")
    (tmp_path / "secrets.yaml").write_text("cam_pw: first\n")
    hub = Hub.from_file(site, data_dir=tmp_path / "data", web=False)
    await hub.start()
    try:
        (tmp_path / "secrets.yaml").write_text("cam_pw: second\n")

        def no_file_io(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("hub.secret() read a file")

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("builtins.open", no_file_io)
            patch.setattr(Path, "open", no_file_io)
            patch.setattr(Path, "read_bytes", no_file_io)
            value = hub.secret("cam_pw")
            assert hub.secret("nope") is None
        assert value == "first"  # the value loaded at start, until a reload
        assert "first" not in repr(value) and "cam_pw" in repr(value)
        report = await hub.reload("test")
        assert report["ok"] is True
        assert hub.secret("cam_pw") == "second"
    finally:
        await hub.stop()


async def test_secrets_of_a_hub_built_from_data_are_read_off_the_loop(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("hub: {name: Secrets}\n")
    (tmp_path / "secrets.yaml").write_text("token: abc\n")
    hub = Hub({"hub": {"name": "Secrets"}}, source=str(site), data_dir=tmp_path / "d", web=False)
    loop = asyncio.get_running_loop()
    calls: list[bool] = []
    original = csuhub.hub.read_secrets

    def spy(source: str) -> Any:
        calls.append(_on_loop_thread(loop))
        return original(source)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(csuhub.hub, "read_secrets", spy)
        await hub.start()
    try:
        assert calls == [False]  # read once, in a worker thread
        assert hub.secret("token") == "abc"
    finally:
        await hub.stop()


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
