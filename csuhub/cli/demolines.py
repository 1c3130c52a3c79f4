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
from urllib.parse import urlencode

from csuhub.security.accounts import Accounts
from csuhub.security.permissions import system_principal
from csuhub.security.tokens import hash_secret, new_secret
from csuhub.store.audited import Entry

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
    """Give the demo's webhook lines their secret, its SIP lines an ephemeral
    port when the web server takes one, and its wall screens the cameras the
    demo has (``--cameras N`` renames them)."""
    cameras = [c["id"] for c in raw.get("cameras") or []]
    for wall in raw.get("walls") or []:
        for screen in wall.get("screens") or []:
            kept = [c for c in screen.get("cameras") or [] if c in cameras]
            screen["cameras"] = kept or cameras[:4]
    for line in raw.get("call_lines") or []:
        options = line.setdefault("options", {})
        if line.get("type") == "webhook":
            options["secret"] = demo_secret(data_dir)[0]
        elif line.get("type") == "sip" and port == 0:
            options["listen_port"] = 0


#: the demo kiosk's service account (role ``wall``, scope its wall)
KIOSK_ACCOUNT = "demo-kiosk"


async def kiosk_token(store: Any, wall_id: str) -> str:
    """A fresh ``wall`` token for the demo's kiosk, its predecessors revoked: the
    console shows the kiosk's address with it at each start (a token is shown
    once and kept hashed, so the demo cannot show an old one again)."""
    hub = system_principal("hub")
    if await store.users.get(KIOSK_ACCOUNT) is None:
        await Accounts(store).add(
            hub, KIOSK_ACCOUNT, roles=["wall"], scope=[f"wall:{wall_id}"], service=True
        )
    for token in await store.list_tokens():
        if token["user"] == KIOSK_ACCOUNT and not token["revoked_at"]:
            await store.tokens.revoke(token["name"], Entry(hub, "token.revoke", token["name"]))
    name = f"{KIOSK_ACCOUNT}-{secrets.token_hex(4)}"
    secret = new_secret()
    entry = Entry(hub, "token.create", name, {"role": "wall", "user": KIOSK_ACCOUNT})
    await store.tokens.create(name, "wall", hash_secret(secret), KIOSK_ACCOUNT, entry)
    return secret


def describe(hub: Any, kiosk: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The panel's address (event ``panel``), one console line per running call
    line (event ``call_line``) with how to try it, and the kiosk pages of the
    first wall when ``kiosk`` (a wall token) is given (event ``kiosk``)."""
    out: list[tuple[str, dict[str, Any]]] = []
    web_url = hub.web.url if getattr(hub, "web", None) is not None else None
    walls = hub.config.settings.walls
    if web_url is not None:
        panel = f"{web_url}/panel/"
        text = (
            f"panel: open {panel} (log in as the admin printed on the first start; "
            f"public page {web_url}/transparence)"
        )
        out.append((text, {"event": "panel", "url": panel}))
    if kiosk is not None and web_url is not None and walls:
        wall = walls[0]
        for screen in wall.screens:
            page = f"/wall/{wall.id}/{screen.id}"
            url = f"{web_url}/wall/login?{urlencode({'token': kiosk, 'next': page})}"
            text = f"kiosk {wall.id}/{screen.id} ({screen.layout}): open {url}"
            out.append((text, {"event": "kiosk", "wall": wall.id, "screen": screen.id, "url": url}))
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
