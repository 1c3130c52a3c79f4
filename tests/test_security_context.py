"""An audit entry written by name inside a request carries the request's
principal (role, token or session, address); the hub's own entries do not."""

from __future__ import annotations

from typing import Any

import aiohttp

from csuhub.security.context import acting, reset_principal, set_principal
from csuhub.security.permissions import ROLES, CameraScope, Principal
from csuhub.testing import api_token


async def test_entries_written_by_name_take_the_acting_principal(hub_factory: Any) -> None:
    ana = Principal(
        "ana", "user", ("operator",), ROLES["operator"], CameraScope.of(["*"]), "s-1", "10.0.0.7"
    )
    async with hub_factory() as hub:
        token = set_principal(ana)
        try:
            await hub.store.audit("ana", "camera.forget", "cam-1", reason="moved")
            await hub.store.audit("hub", "retention.recover", None)  # not ana's doing
        finally:
            reset_principal(token)
        await hub.store.audit("ana", "camera.forget", "cam-2")  # outside: by name only
        rows = {(r["action"], r["target"]): r for r in await hub.store.audit_trail.entries()}
    mine = rows[("camera.forget", "cam-1")]
    assert (mine["role"], mine["via"], mine["source"]) == ("operator", "s-1", "10.0.0.7")
    assert mine["reason"] == "moved"
    assert rows[("retention.recover", None)]["role"] is None
    assert rows[("camera.forget", "cam-2")]["source"] is None


async def test_a_request_sets_the_principal_for_its_handler(hub_factory: Any) -> None:
    async with hub_factory(web=True) as hub:
        token = await api_token(hub, "admin", name="desk-admin")
        async with aiohttp.ClientSession() as http:
            async with http.get(
                f"{hub.web.url}/api/recordings/cam-x/play.mp4?reason=check",
                headers={"Authorization": f"Bearer {token}"},
            ) as resp:
                assert resp.status == 404  # no footage; still a request by desk-admin
        rows = await hub.store.audit_trail.entries()
        by_request = [r for r in rows if r["actor"] == "desk-admin"]
        assert by_request, rows
        for row in by_request:
            assert row["role"] == "admin" and row["source"] == "127.0.0.1", row


def test_acting_prefers_the_request_principal_over_a_local_admin() -> None:
    ana = Principal("ana", "user", ("requisition_officer",), ROLES["requisition_officer"])
    assert acting("cli").role == "admin" and acting("cli").via == "cli"
    token = set_principal(ana)
    try:
        assert acting("ana") is ana
        assert acting("hub").kind == "hub"  # another name: not ana's
    finally:
        reset_principal(token)
