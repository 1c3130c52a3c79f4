"""``csuhub walls list|show`` on a real data directory, as a separate process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from walls_helpers import PLUGINS, site

from csuhub.security.permissions import system_principal
from csuhub.testing import make_hub


async def test_list_and_show_what_the_hub_stored(
    tmp_path: Path, cli: Any, cli_env: dict[str, str]
) -> None:
    data = tmp_path / "data"
    async with make_hub(data, site(), plugins=PLUGINS) as hub:
        who = system_principal("sup")
        await hub.walls.set_screen("mur", "s1", who, pinned=True)
        await hub.walls.push("mur", "cam-c", who, screen_id="s1", tile=2)

    def run(*args: str) -> Any:
        result = cli("walls", *args, "--data", str(data), env=cli_env)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    listing = json.loads(run("list", "--json"))
    assert [(w["id"], w["version"]) for w in listing["walls"]] == [("mur", 2), ("poste", 0)]
    shown = json.loads(run("show", "mur", "--json"))
    s1 = shown["screens"][0]
    assert s1["pinned"] and s1["pushed"] == {"2": "cam-c"} and s1["cameras"] == ["cam-a", "cam-b"]
    human = run("show", "mur")
    assert "wall mur" in human and "cam-a, cam-b + pushed 2:cam-c" in human
    missing = cli("walls", "show", "nope", "--data", str(data), env=cli_env)
    assert missing.returncode == 1 and "no wall" in missing.stderr
