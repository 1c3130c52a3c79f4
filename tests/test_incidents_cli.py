"""``csuhub incidents`` on a real data directory, as a separate process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from test_incidents import ORIGIN, StillPlugin, ready, site

from csuhub.testing import make_hub


async def test_open_note_close_list_and_show_from_the_console(
    tmp_path: Path, cli: Any, cli_env: dict[str, str]
) -> None:
    data = tmp_path / "data"
    async with make_hub(
        data, site(), plugins=[("still", StillPlugin())], health_interval=60
    ) as hub:
        await ready(hub)  # the register now says which cameras are online

    def run(*args: str) -> Any:
        result = cli("incidents", *args, "--data", str(data), env=cli_env)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    opened = json.loads(
        run(
            "open", "--category", "fight", "--priority", "high", "--lat", str(ORIGIN[0]),
            "--lon", str(ORIGIN[1]), "--caller", "+33 6 12 34 56 78", "--user", "nina", "--json",
        )
    )  # fmt: skip
    assert [c["id"] for c in opened["cameras"]][:3] == ["cam-a", "cam-b", "cam-c"]
    assert "cam-down" not in [c["id"] for c in opened["cameras"]]
    assert opened["caller"].endswith("78") and "12 34" not in opened["caller"]
    assert opened["opened_by"] == "nina"
    incident = str(opened["id"])
    noted = json.loads(run("note", incident, "suspect left north", "--json"))
    assert noted["notes"][0]["text"] == "suspect left north"
    human = run("show", incident, "--show-callers")
    assert "+33 6 12 34 56 78" in human and "camera cam-a:" in human and "(nearest)" in human
    assert "suspect left north" in human
    closed = json.loads(run("close", incident, "--outcome", "arrest", "--json"))
    assert closed["status"] == "closed" and closed["outcome"] == "arrest"
    table = run("list", "--status", "closed")
    assert table.splitlines()[0].split()[:3] == ["id", "status", "opened"]
    assert table.splitlines()[1].split()[:2] == [incident, "closed"]
    refused = cli(
        "incidents", "close", incident, "--outcome", "x", "--data", str(data), env=cli_env
    )
    assert refused.returncode == 1 and "closed" in refused.stderr
    verified = cli("audit", "verify", "--data", str(data), "--json", env=cli_env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    async with make_hub(
        data, site(), plugins=[("still", StillPlugin())], health_interval=60
    ) as hub:
        assert await hub.store.retention.holds(kind="incident") == []
        entries = [r.action for r in await hub.store.audit_records(limit=20)]
        assert {"incident.open", "incident.camera_link", "incident.note", "incident.close"} <= set(
            entries
        )
