"""Reading the audit trail is on record (review of issue 12, L7): who searched
it, who downloaded which period, and who was refused, each entry of class
``admin`` naming the reader's token."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp

from csuhub.testing import api_token, make_hub

T0 = 1_764_000_000


async def test_searching_and_downloading_the_trail_are_audited(tmp_path: Path) -> None:
    async with make_hub(tmp_path / "data", web=True) as hub:
        token = await api_token(hub, "auditor", name="committee")
        assert hub.web is not None
        base = hub.web.url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.get(f"{base}/api/audit?actor=olga&limit=5&from={T0}") as response:
                assert response.status == 200
            async with http.get(f"{base}/api/audit/export?from={T0}&to={T0 + 60}") as response:
                assert response.status == 200
                await response.read()
            async with http.get(f"{base}/api/audit?limit=0") as response:
                assert response.status == 400
            async with http.get(f"{base}/api/ethics/summary") as response:
                assert response.status == 200
        entries = [
            e for e in await hub.store.audit_trail.entries() if e["action"].startswith("audit.")
        ]
        assert [(e["action"], e["outcome"], e["actor"], e["class"]) for e in entries] == [
            ("audit.search", "ok", "committee", "admin"),
            ("audit.export", "started", "committee", "admin"),
            ("audit.export", "ok", "committee", "admin"),
            ("audit.search", "refused", "committee", "admin"),
        ]
        search, begun, done, refused = entries
        assert json.loads(search["details"]) == {
            "start": T0,
            "end": None,
            "filters": {"action": None, "actor": "olga", "target": None},
            "limit": 5,
        }
        assert json.loads(begun["details"]) == {"start": T0, "end": T0 + 60}
        assert done["ref"] == begun["id"] and json.loads(done["details"]) == {"rows": 0}
        assert "limit" in json.loads(refused["details"])["error"]
        assert all(e["role"] == "auditor" and e["via"] for e in entries)
