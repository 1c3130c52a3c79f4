"""The demo's two call lines: a SIP monitoring leg and a CAD webhook.

Why a module: the demo must be usable by hand (a ``sipp`` or ``curl`` command
that opens an incident), so it needs a webhook secret nobody else knows and
the SIP port it really bound. The secret is generated once per data folder,
kept in a file only its owner can read, and never printed: the console names
the file. With ``--port 0`` (tests, several demos on one machine) the SIP line
takes an ephemeral port too, and the banner says which.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path
from typing import Any

#: the file under the data folder holding the demo webhook line's secret
SECRET_FILE = "demo-webhook.secret"  # noqa: S105 - a file name, not a secret


def demo_secret(data_dir: Path) -> tuple[str, Path]:
    """The demo webhook secret of ``data_dir`` (made on first use, mode 0600)."""
    path = data_dir / SECRET_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        pass
    else:
        with os.fdopen(fd, encoding="ascii", errors="replace") as f:
            # a secret others could read is no secret: tighten it (we own the folder)
            if stat.S_IMODE(os.fstat(f.fileno()).st_mode) & 0o077:
                os.fchmod(f.fileno(), 0o600)
            text = f.read().strip()
        if len(text) >= 32 and text.isascii() and text.isprintable():
            return text, path
    data_dir.mkdir(parents=True, exist_ok=True)
    text = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(text + "\n")
    return text, path


def prepare(raw: dict[str, Any], data_dir: Path, port: int | None) -> None:
    """Give the demo's webhook lines their secret, and its SIP lines an
    ephemeral port when the web server takes one."""
    for line in raw.get("call_lines") or []:
        options = line.setdefault("options", {})
        if line.get("type") == "webhook":
            options["secret"] = demo_secret(data_dir)[0]
        elif line.get("type") == "sip" and port == 0:
            options["listen_port"] = 0


def describe(hub: Any) -> list[tuple[str, dict[str, Any]]]:
    """One console line per running call line, with how to try it."""
    out: list[tuple[str, dict[str, Any]]] = []
    web_url = hub.web.url if getattr(hub, "web", None) is not None else None
    for line_id, line in sorted(hub.call_lines.items()):
        port = getattr(line, "port", None)
        if port is not None:
            host = line.options["listen_host"]
            text = (
                f"call line {line_id} (SIP): {host}:{port}, udp and tcp "
                "(a sipp command that calls it: docs/call-lines.md)"
            )
            out.append((text, {"line": line_id, "type": "sip", "host": host, "port": port}))
        elif web_url is not None:
            url = f"{web_url}/api/call-lines/{line_id}/calls"
            path = hub.data_dir / SECRET_FILE
            text = f"call line {line_id} (webhook): POST {url}, secret in {path} (docs/webhook.md)"
            out.append(
                (text, {"line": line_id, "type": "webhook", "url": url, "secret_file": str(path)})
            )
    return out
