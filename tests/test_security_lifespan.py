"""The security model's background work runs with the hub, web server or not:
mask lifts end on time, and the audit chain's head is anchored at stop."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from csuhub.audit.anchors import anchor_dir
from csuhub.masks import lifts
from csuhub.security.permissions import ROLES, CameraScope, Principal
from csuhub.testing import make_hub


def _person(name: str, role: str) -> Principal:
    return Principal(name, "user", (role,), ROLES[role], CameraScope.of(["*"]))


async def test_a_hub_without_web_expires_lifts_and_anchors_its_audit(tmp_path: Path) -> None:
    data = tmp_path / "hub"
    past = time.time() - 7200
    async with make_hub(data, web=False) as hub:
        asked = await lifts.request_lift(
            hub.store,
            _person("ana", "operator"),
            "cam-1",
            {"reason": "a door left open", "duration": 900},
            now=past,
        )
        approved = await lifts.decide(
            hub.store, _person("bob", "supervisor"), asked["id"], True, now=past + 1
        )
        assert approved["status"] == "approved"  # in the past: due, not yet swept
    anchors = sorted(anchor_dir(data).iterdir())
    assert anchors, "the stop wrote no anchor"
    async with make_hub(data, web=False) as hub:
        deadline = time.monotonic() + 10
        while (await hub.store.masks.lift(asked["id"]))["status"] != "expired":
            assert time.monotonic() < deadline, "the hub's sweep did not expire the lift"
            await asyncio.sleep(0.05)
        actions = [r.action for r in await hub.store.audit_records(limit=50)]
        assert "mask.lift.expire" in actions
    assert len(list(anchor_dir(data).iterdir())) > len(anchors)
