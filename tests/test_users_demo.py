"""``csuhub demo`` makes a first admin on its first start and prints its
password once: not on later starts, and never in a log."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from csuhub.security.passwords import verify_password


def _log_in(url: str, password: str) -> None:
    request = urllib.request.Request(
        f"{url}/api/auth/login",
        data=json.dumps({"user": "admin", "password": password}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        me = json.loads(resp.read())
        assert "HttpOnly" in resp.headers["Set-Cookie"]
    assert me["user"] == "admin" and "user.manage" in me["permissions"]


def _demo_until_started(data: Path, env: dict[str, str]) -> tuple[list[dict[str, object]], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "csuhub", "--log-level", "debug", "demo", "--data", str(data),
         "--port", "0", "--cameras", "0", "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    events: list[dict[str, object]] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            events.append(json.loads(line))
            if events[-1].get("event") == "hub_started":
                break
        logins = [e for e in events if e.get("event") == "first_admin"]
        if logins:  # the printed login opens the panel's API
            _log_in(str(events[-1]["web_url"]), str(logins[0]["password"]))
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    events += [json.loads(line) for line in out.splitlines() if line.strip()]
    assert any(e.get("event") == "hub_started" for e in events), err
    return events, err


def test_the_demo_prints_a_first_admin_once(cli_env: dict[str, str], tmp_path: Path) -> None:
    data = tmp_path / "demo"
    events, log = _demo_until_started(data, cli_env)
    (first,) = [e for e in events if e.get("event") == "first_admin"]
    password = str(first["password"])
    assert first["user"] == "admin" and len(password) == 24
    assert password not in log  # stderr carries the log, at debug level here
    with sqlite3.connect(data / "csuhub.db") as conn:
        name, kind, roles, scope, stored = conn.execute(
            "SELECT name, kind, roles, scope, password_hash FROM users WHERE kind='person'"
        ).fetchone()
        (audited,) = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action='user.add' AND target='admin'"
        ).fetchone()
        kiosk = conn.execute(
            "SELECT kind, roles, scope, password_hash FROM users WHERE name='demo-kiosk'"
        ).fetchone()
    # the demo's kiosk is a service account seeing its wall only, with no password
    assert kiosk == ("service", '["wall"]', '["wall:mur"]', None)
    assert (name, kind) == ("admin", "person")
    assert (json.loads(roles), json.loads(scope)) == (["admin"], ["*"])
    assert verify_password(stored, password).ok and audited == 1
    again, log = _demo_until_started(data, cli_env)
    assert not [e for e in again if e.get("event") == "first_admin"]
    assert password not in json.dumps(again) and password not in log
