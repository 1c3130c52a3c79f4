"""A token made without an account (M6 of the review): its own service account
sees no camera until granted one, but for the legacy ``viewer`` role; the CLI
and the API say so. The test kit's ``api_token`` keeps its promise of every
camera, explicitly. Real store, real CLI process, real hub server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from csuhub.security.tokens import hash_secret, service_scope
from csuhub.testing import api_token


def _cli(data: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "csuhub", *args, "--data", str(data)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_only_the_legacy_viewer_sees_every_camera_by_default() -> None:
    assert service_scope("viewer") == ["*"]
    for role in ("wall", "operator", "supervisor", "requisition_officer", "admin", "auditor"):
        assert service_scope(role) == []


def test_cli_token_without_a_user_sees_no_camera(cli_env: dict[str, str], tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    made = _cli(data, cli_env, "tokens", "create", "kiosk-3", "--role", "wall")
    assert made.returncode == 0, made.stderr
    assert "token:kiosk-3 sees no camera until granted one" in made.stdout
    legacy = _cli(data, cli_env, "tokens", "create", "old-screen", "--role", "viewer", "--json")
    assert json.loads(legacy.stdout)["scope"] == ["*"]
    users = json.loads(_cli(data, cli_env, "users", "list", "--json").stdout)["users"]
    scopes = {u["name"]: u["scope"] for u in users}
    assert scopes == {"token:kiosk-3": [], "token:old-screen": ["*"]}
    granted = _cli(data, cli_env, "users", "grant", "token:kiosk-3", "--scope", "wall:main")
    assert granted.returncode == 0, granted.stderr


async def test_api_token_without_a_user_sees_no_camera(hub_factory: Any) -> None:
    async with hub_factory(web=True) as hub:
        admin = await api_token(hub, "admin", name="boss")
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {admin}"}) as http:
            async with http.post(
                f"{hub.web.url}/api/tokens", json={"name": "kiosk-3", "role": "wall"}
            ) as resp:
                assert resp.status == 201
                made = await resp.json()
            assert (made["user"], made["scope"]) == ("token:kiosk-3", [])
            async with http.post(
                f"{hub.web.url}/api/tokens", json={"name": "legacy", "role": "viewer"}
            ) as resp:
                assert (await resp.json())["scope"] == ["*"]
        found = await hub.store.token_identity(hash_secret(made["token"]))
        assert found is not None and found.scope == ()
        entry = [r for r in await hub.store.audit_records(limit=50) if r.target == "kiosk-3"]
        assert entry[0].details["scope"] == []
        # the kit's token sees every camera, as its documentation promises
        kit = await hub.store.token_identity(hash_secret(admin))
        assert kit is not None and kit.scope == ("*",) and kit.name == "token:boss"
