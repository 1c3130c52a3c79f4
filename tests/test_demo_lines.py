"""The demo's call lines, used as docs/call-lines.md and docs/webhook.md say: a
signed CAD post opens an incident with its nearest camera, and the SIP line
answers on the port the banner prints."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from csuhub.cli import demolines


def _read_until(proc: subprocess.Popen[str], want: set[str], timeout: float = 60) -> list[dict]:
    events: list[dict] = []
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
        described = {e.get("line") for e in events if e.get("event") == "call_line"}
        if want <= described and "cam-grand-place" in online:  # only online cameras link
            return events
    raise AssertionError(f"the demo never described its call lines: {events}")


def test_demo_secret_is_made_once_and_private(tmp_path: Path) -> None:
    first, path = demolines.demo_secret(tmp_path / "d")
    again, _ = demolines.demo_secret(tmp_path / "d")
    assert first == again and len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)  # loosened by hand: tightened again, same secret
    assert demolines.demo_secret(tmp_path / "d")[0] == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    raw = {
        "call_lines": [
            {"id": "cad", "type": "webhook", "options": {"secret": "x" * 20}},
            {"id": "p", "type": "sip", "options": {"listen_port": 5070}},
        ]
    }
    demolines.prepare(raw, tmp_path / "d", 0)
    assert raw["call_lines"][0]["options"]["secret"] == first
    assert raw["call_lines"][1]["options"]["listen_port"] == 0


def test_demo_call_lines_open_an_incident(
    cli_env: dict[str, str], tmp_path: Path, ffmpeg_bin: str
) -> None:
    data = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "csuhub", "demo", "--data", str(data), "--port", "0", "--json"],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        events = _read_until(proc, {"police", "cad"})
        lines = {e["line"]: e for e in events if e.get("event") == "call_line"}
        secret = Path(lines["cad"]["secret_file"]).read_text().strip()
        assert secret not in "".join(json.dumps(e) for e in events)

        body = json.dumps(
            {
                "external_id": "demo-1",
                "caller": "+33 6 12 34 56 78",
                "location": {"lat": 50.63694, "lon": 3.06333},
                "category": "rixe",
            }
        ).encode()
        ts = str(int(time.time()))
        sig = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        request = urllib.request.Request(
            lines["cad"]["url"],
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
            answer = json.loads(resp.read())
        assert answer["cameras"][0]["id"] == "cam-grand-place"
        assert "caller" not in answer

        # the SIP line answers OPTIONS (a PBX's keepalive) on the port it printed
        port = lines["police"]["port"]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(5)
            me = sock.getsockname()[1]
            sock.sendto(
                (
                    f"OPTIONS sip:police@127.0.0.1:{port} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK-demo-1\r\n"
                    "From: <sip:pbx@127.0.0.1>;tag=1\r\nTo: <sip:police@127.0.0.1>\r\n"
                    "Call-ID: demo-options-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                    "Content-Length: 0\r\n\r\n"
                ).encode(),
                ("127.0.0.1", port),
            )
            reply = sock.recv(65535).decode()
        assert reply.startswith("SIP/2.0 200")
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
