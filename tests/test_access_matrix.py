"""The access-control matrix: every route x every role (and anonymous).

Routes and their permissions are read from the running app's declarations, so
a route added tomorrow is in the matrix without anyone editing this file, and a
route without a declaration fails here.
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest

from csuhub.security.permissions import PERMISSIONS, ROLES, SHIPPED_ROLES
from csuhub.testing import api_token
from csuhub.web.declare import iter_routes

#: a value for each path parameter the routes use; unknown ones get "1"
SAMPLES = {"camera_id": "cam-x", "req_id": "1", "segment_id": "1", "name": "receipt.html"}


def _fill(path: str) -> str:
    return re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: SAMPLES.get(m.group(1), "1"), path).replace(
        "/{tail}", "/no-such-route"
    )


def test_roles_are_sets_that_a_ladder_cannot_express() -> None:
    assert set(SHIPPED_ROLES) <= set(ROLES)
    for role, granted in ROLES.items():
        assert granted <= set(PERMISSIONS), role
    # the auditor sees no video at all; the requisition officer exports but does
    # not edit the wall; the supervisor edits the wall but does not export for a
    # requisition: no order of roles makes each a subset of the next
    video = {"live.view", "playback.view", "export.create"}
    assert not ROLES["auditor"] & video
    assert "export.create" in ROLES["requisition_officer"]
    assert "wall.edit" not in ROLES["requisition_officer"]
    assert "wall.edit" in ROLES["supervisor"]
    assert "requisition.manage" not in ROLES["supervisor"]
    assert ROLES["wall"] == {"camera.read", "live.view", "wall.view"}
    assert ROLES["admin"] == set(PERMISSIONS)


async def test_every_route_by_every_role(hub_factory: Any) -> None:
    async with hub_factory(web=True) as hub:
        tokens = {role: await api_token(hub, role, name=f"matrix-{role}") for role in ROLES}
        routes = iter_routes(hub.web.app)
        undeclared = [f"{r.method} {r.path}" for r in routes if r.declaration is None]
        assert not undeclared, f"routes without a permission declaration: {undeclared}"
        checked = 0
        async with aiohttp.ClientSession() as http:
            for route in routes:
                access = route.declaration.access  # type: ignore[union-attr]
                method = "GET" if route.method == "*" else route.method
                url = hub.web.url + _fill(route.path)
                for role in (None, *ROLES):
                    headers = {} if role is None else {"Authorization": f"Bearer {tokens[role]}"}
                    body = {} if method == "POST" else None
                    async with http.request(
                        method, url, headers=headers, json=body, allow_redirects=False
                    ) as resp:
                        status = resp.status
                        location = resp.headers.get("Location", "")
                    where = f"{method} {route.path} as {role or 'anonymous'}: {status}"
                    if access.public:
                        assert status not in (401, 403), where
                    elif role is None and method == "GET" and route.path.startswith("/panel/"):
                        # a person's page: no session sends to the login, and back after it
                        assert status == 303 and location.startswith("/panel/login?next="), where
                    elif role is None:
                        assert status == 401, where
                    elif access.permission in ROLES[role]:
                        assert status not in (401, 403), where
                    else:
                        assert status == 403, where
                    assert status < 500, where
                    checked += 1
        # the core routes and the bundled example plugin's, for 8 principals each
        assert checked >= 25 * (len(ROLES) + 1)


async def test_refusals_are_audited(hub_factory: Any) -> None:
    async with hub_factory(web=True) as hub:
        token = await api_token(hub, "auditor", name="committee")
        async with aiohttp.ClientSession() as http:
            async with http.get(
                f"{hub.web.url}/api/recordings/cam-x/play.mp4",
                headers={"Authorization": f"Bearer {token}"},
            ) as resp:
                assert resp.status == 403
                assert "playback.view" in (await resp.json())["error"]
        entries = [r for r in await hub.store.audit_records() if r.action == "access.refused"]
        assert entries and entries[0].actor == "committee"
        assert entries[0].target == "/api/recordings/cam-x/play.mp4"


@pytest.mark.parametrize("role", ["auditor"])
async def test_the_auditor_reaches_no_video_route(hub_factory: Any, role: str) -> None:
    """Belt and braces over the matrix: every route that serves images or
    footage needs a video permission, which the auditor lacks."""
    async with hub_factory(web=True) as hub:
        for route in iter_routes(hub.web.app):
            if re.search(r"\.(mp4|jpg)$|/play|/frame|/snapshot", route.path):
                assert route.declaration is not None
                assert route.declaration.access.permission in {
                    "live.view",
                    "playback.view",
                    "export.create",
                }, route.path
                assert route.declaration.access.permission not in ROLES[role]


def test_district_and_group_scopes_ignore_case_camera_ids_do_not() -> None:
    from csuhub.security.permissions import CameraScope

    scope = CameraScope.of(["district:centre", "group:Parcs", "camera:Cam-1"])
    assert scope.allows("x", "Centre") and scope.allows("x", "CENTRE")
    assert scope.allows("x", None, ["parcs"])
    assert scope.allows("Cam-1") and not scope.allows("cam-1")
    assert not scope.allows("x", "Vauban", ["gares"])
    assert not CameraScope().allows("x", "Centre")  # empty: nothing
