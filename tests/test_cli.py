from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from conftest import run_cli

import csuhub


def test_version(cli_env: dict[str, str]) -> None:
    result = run_cli("--version", env=cli_env)
    assert result.returncode == 0
    assert result.stdout.strip() == f"csuhub {csuhub.__version__}"


def test_unknown_option_is_a_usage_error(cli_env: dict[str, str]) -> None:
    result = run_cli("plugins", "--bogus", env=cli_env)
    assert result.returncode == 2
    assert "usage:" in result.stderr and "unrecognized arguments: --bogus" in result.stderr


def test_missing_config_is_one_line_exit_2(cli_env: dict[str, str], tmp_path: Path) -> None:
    for args in (["run", "-c", str(tmp_path / "nope.yaml")], ["check", str(tmp_path / "no.yaml")]):
        result = run_cli(*args, env=cli_env)
        assert result.returncode == 2
        assert (
            result.stderr.strip()
            == f"csuhub: error: {tmp_path}/{Path(args[-1]).name}: no such file"
        )
        assert "Traceback" not in result.stderr


def test_check_valid_and_invalid(cli_env: dict[str, str], tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(
        "hub: {name: Lille}\ncameras:\n  - id: cam-1\n    driver: simcam\n"
        "    authorization: {reference: 2024/059, issued: 2024-01-10, expires: 2099-01-09}\n"
    )
    result = run_cli("check", str(good), env=cli_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{good}: valid (1 camera(s))"
    assert result.stderr == ""

    bad = tmp_path / "bad.yaml"
    bad.write_text("hub:\n  nmae: Lille\nretension: 14d\n")
    result = run_cli("check", str(bad), env=cli_env)
    assert result.returncode == 1
    assert f"{bad}:2:3: hub.nmae: unknown key 'nmae' (did you mean 'name'?)" in result.stderr
    assert f"{bad}:3:1: retension: unknown key 'retension'" in result.stderr
    assert "2 error(s)" in result.stderr

    result = run_cli("check", str(bad), "--json", env=cli_env)
    body = json.loads(result.stdout)
    assert result.returncode == 1 and body["valid"] is False
    assert body["errors"][0]["line"] == 2 and body["errors"][0]["path"] == "hub.nmae"


def test_check_yaml_syntax_error(cli_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("hub: [\n")
    result = run_cli("check", str(bad), env=cli_env)
    assert result.returncode == 1
    assert result.stderr.startswith(f"{bad}:2:1:")
    assert "Traceback" not in result.stderr


def test_run_refuses_invalid_config(cli_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras:\n  - {id: cam-1}\n")
    result = run_cli("run", "-c", str(bad), env=cli_env)
    assert result.returncode == 1
    assert f"{bad}:2:5: cameras[0].driver: required key 'driver' is missing" in result.stderr


def test_plugins_json_lists_bundled_and_example(cli_env: dict[str, str], tmp_path: Path) -> None:
    result = run_cli("plugins", "--json", env=cli_env)
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)["plugins"]}
    assert plugins["simcam"]["state"] == "loaded"
    assert plugins["simcam"]["distribution"] == "csuhub"
    assert "register_camera_drivers" in plugins["simcam"]["hooks"]
    assert "camera_driver:simcam" in plugins["simcam"]["provides"]
    assert plugins["example-vendor"]["state"] == "loaded"

    site = tmp_path / "site.yaml"
    site.write_text("plugins:\n  disabled: [example-vendor]\n")
    result = run_cli("plugins", "-c", str(site), env=cli_env)
    assert "- example-vendor 0.1.0 [disabled]" in result.stdout


def test_tokens_lifecycle(cli_env: dict[str, str], tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    result = run_cli(
        "tokens", "create", "alice", "--role", "operator", "--data", data, "--json", env=cli_env
    )
    assert result.returncode == 0, result.stderr
    token = json.loads(result.stdout)["token"]
    assert token.startswith("csu_") and len(token) > 30
    again = run_cli("tokens", "create", "alice", "--role", "admin", "--data", data, env=cli_env)
    assert again.returncode == 1 and "already exists" in again.stderr
    listing = run_cli("tokens", "list", "--data", data, env=cli_env)
    assert "alice\toperator\tactive" in listing.stdout and token not in listing.stdout
    assert run_cli("tokens", "revoke", "alice", "--data", data, env=cli_env).returncode == 0
    assert run_cli("tokens", "revoke", "alice", "--data", data, env=cli_env).returncode == 1


def _read_until(proc: subprocess.Popen[str], predicate, timeout: float = 30) -> list[str]:  # type: ignore[no-untyped-def]
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if predicate(lines):
            return lines
    raise AssertionError("expected output never came:\n" + "".join(lines))


def test_demo_runs_serves_health_and_stops_on_sigterm(
    cli_env: dict[str, str], tmp_path: Path, ffmpeg_bin: str
) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "csuhub",
            "demo",
            "--data",
            str(tmp_path / "demo"),
            "--port",
            "0",
            "--json",
        ],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def all_online(lines: list[str]) -> bool:
            events = [json.loads(line) for line in lines]
            online = {
                e["camera_id"]
                for e in events
                if e.get("event") == "camera_state_changed" and e["new_state"] == "online"
            }
            return len(online) == 4

        lines = _read_until(proc, all_online, timeout=60)
        events = [json.loads(line) for line in lines]
        started = next(e for e in events if e.get("event") == "hub_started")
        url = started["web_url"]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}/api/health", timeout=5) as resp:
            health = json.loads(resp.read())
        assert health["status"] == "ok"
        assert health["cameras"]["online"] == 4
        assert health["plugins"]["simcam"] == "loaded"
        # every other endpoint needs a token
        try:
            urllib.request.urlopen(f"{url}/plugins/example-vendor/cameras", timeout=5)
        except urllib.error.HTTPError as err:
            assert err.code == 401
        else:
            raise AssertionError("unauthenticated request was served")
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert '"event": "hub_stopped"' in out
        assert "Traceback" not in err
        assert (tmp_path / "demo" / "csuhub.db").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
