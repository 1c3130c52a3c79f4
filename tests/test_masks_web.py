"""The mask and lift routes over real HTTP: permissions per route, dual control
(the requester can never approve, a service account never decides), the audit
of each step, scope."""

from __future__ import annotations

import time
from typing import Any

import aiohttp

from csuhub.security.tokens import hash_secret, new_secret
from csuhub.testing import api_token

SITE_MASK = [[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75]]
CONFIG = {
    "cameras": [
        {
            "id": "cam-a",
            "driver": "simcam",
            "enabled": False,
            "privacy_masks": [{"name": "house", "polygon": SITE_MASK}],
            "authorization": {"reference": "A-1", "issued": "2022-01-01", "expires": "2099-01-01"},
        }
    ]
}


async def call(
    http: aiohttp.ClientSession, method: str, url: str, token: str, body: Any = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with http.request(method, url, headers=headers, json=body) as resp:
        return resp.status, await resp.json()


async def person_token(hub: Any, name: str, role: str, scope: tuple[str, ...] = ("*",)) -> str:
    """A bearer token of the person ``name`` (an account of kind person)."""
    await hub.store.users.add(
        name, kind="person", roles=[role], scope=list(scope), password_hash=None, now=time.time()
    )
    secret = new_secret()
    await hub.store.create_token(f"{name}-token", role, hash_secret(secret), user=name)
    return secret


async def mask_audit(hub: Any) -> list[tuple[str, str, str]]:
    return await hub.store.call(
        lambda c: [
            (r["actor"], r["action"], r["outcome"])
            for r in c.execute(
                "SELECT actor, action, outcome FROM audit_log WHERE action LIKE 'mask.%' "
                "ORDER BY id"
            )
        ]
    )


async def test_masks_and_dual_control_over_http(hub_factory: Any) -> None:
    async with hub_factory(CONFIG, web=True) as hub:
        admin = await api_token(hub, "admin", name="admin")
        sup_a = await person_token(hub, "sup-a", "supervisor")
        sup_b = await person_token(hub, "sup-b", "supervisor")
        cad = await api_token(hub, "supervisor", name="cad-link")  # a machine's token
        operator = await api_token(hub, "operator", name="op")
        auditor = await api_token(hub, "auditor", name="aud")
        base = hub.web.url
        masks_url = f"{base}/api/cameras/cam-a/masks"
        async with aiohttp.ClientSession() as http:
            status, got = await call(http, "GET", masks_url, auditor)
            assert status == 200 and got["lift"] is None
            assert got["masks"] == [{"name": "house", "polygon": SITE_MASK, "source": "site"}]
            assert (await call(http, "GET", f"{base}/api/cameras/nope/masks", admin))[0] == 404

            drawn = {"masks": [{"name": "garden", "polygon": [[0, 0], [0.1, 0], [0.1, 0.1]]}]}
            assert (await call(http, "PUT", masks_url, operator, drawn))[0] == 403
            bad = {"masks": [{"polygon": [[0, 0], [2, 0], [0.1, 0.1]]}]}
            status, err = await call(http, "PUT", masks_url, admin, bad)
            assert status == 400 and err["field"] == "masks.0.polygon.1"
            status, got = await call(http, "PUT", masks_url, admin, drawn)
            assert status == 200
            assert [(m["name"], m["source"]) for m in got["masks"]] == [
                ("house", "site"),
                ("garden", "api"),
            ]

            lifts_url = f"{base}/api/cameras/cam-a/mask-lifts"
            assert (await call(http, "POST", lifts_url, auditor, {"reason": "x"}))[0] == 403
            status, err = await call(http, "POST", lifts_url, sup_a, {"duration": 900})
            assert status == 400 and err["field"] == "reason"
            status, lift = await call(http, "POST", lifts_url, sup_a, {"reason": "fire, no 12"})
            assert status == 201 and lift["status"] == "requested"
            approve = f"{base}/api/mask-lifts/{lift['id']}/approve"
            # the requester cannot approve; an operator may not approve at all
            assert (await call(http, "POST", approve, sup_a, {}))[0] == 403
            assert (await call(http, "POST", approve, operator, {}))[0] == 403
            # a service account holding the role is no second person
            status, err = await call(http, "POST", approve, cad, {"reason": "auto"})
            assert status == 403 and "person" in err["error"]
            status, err = await call(http, "POST", approve, sup_b, {"reason": 5})
            assert status == 400 and err["field"] == "reason"
            status, lift = await call(http, "POST", approve, sup_b, {"reason": "seen"})
            assert status == 200 and lift["status"] == "approved" and lift["decided_by"] == "sup-b"
            assert (await call(http, "POST", approve, sup_b, {}))[0] == 409
            status, got = await call(http, "GET", masks_url, operator)
            assert got["lift"]["id"] == lift["id"]
            approved = f"{base}/api/mask-lifts?status=approved"
            status, listed = await call(http, "GET", approved, sup_a)
            assert status == 200 and [x["id"] for x in listed["lifts"]] == [lift["id"]]
            assert (await call(http, "GET", f"{base}/api/mask-lifts?status=x", sup_a))[0] == 400

            end = f"{base}/api/mask-lifts/{lift['id']}/end"
            assert (await call(http, "POST", end, auditor))[0] == 403
            assert (await call(http, "POST", end, operator))[0] == 403  # not theirs
            status, lift = await call(http, "POST", end, sup_a)
            assert status == 200 and lift["status"] == "ended"
            assert (await call(http, "GET", masks_url, operator))[1]["lift"] is None
            assert (await call(http, "POST", f"{base}/api/mask-lifts/999/end", admin))[0] == 404

        audit = await mask_audit(hub)
        # each step once, the refusals too (written by the workflow or the middleware)
        assert audit == [
            ("admin", "mask.edit", "refused"),  # the bad polygon
            ("admin", "mask.edit", "ok"),
            ("sup-a", "mask.lift.request", "refused"),  # no reason
            ("sup-a", "mask.lift.request", "ok"),
            ("sup-a", "mask.lift.approve", "refused"),  # their own
            ("cad-link", "mask.lift.approve", "refused"),  # a machine
            ("sup-b", "mask.lift.approve", "refused"),  # a bad body
            ("sup-b", "mask.lift.approve", "ok"),
            ("sup-b", "mask.lift.approve", "refused"),  # no longer pending
            ("op", "mask.lift.end", "refused"),
            ("sup-a", "mask.lift.end", "ok"),
            ("admin", "mask.lift.end", "refused"),  # no such lift
        ], audit


async def test_the_lift_list_applies_the_scope_before_its_limit(hub_factory: Any) -> None:
    """A district's approver sees their district's pending request even when
    more than a page of newer lifts exist on other districts' cameras (they
    were cut at 200 first, then filtered: the list came back empty)."""
    async with hub_factory(web=True) as hub:
        for camera_id, district in (("north-1", "north"), ("south-1", "south")):
            await hub.store.upsert_camera(
                camera_id,
                name=camera_id,
                driver="onvif",
                state="discovered",
                origin="discovered",
                location={"district": district, "lat": 43.6, "lon": 3.9},
            )
        north = await person_token(hub, "nora", "supervisor", ("district:north",))
        everyone = await person_token(hub, "ed", "supervisor")
        now = time.time()

        def fill(conn: Any) -> None:
            insert = (
                "INSERT INTO mask_lifts(camera_id, reason, requisition_id, status, requested_by,"
                " requested_at, duration_s) VALUES(?, 'r', NULL, 'requested', 'sam', ?, 900)"
            )
            conn.execute(insert, ("north-1", now))
            conn.executemany(insert, [("south-1", now + 1)] * 250)

        await hub.store.masks.db.transaction(fill)
        async with aiohttp.ClientSession() as http:
            url = f"{hub.web.url}/api/mask-lifts?status=requested"
            status, listed = await call(http, "GET", url, north)
            assert status == 200
            assert [x["camera_id"] for x in listed["lifts"]] == ["north-1"]
            status, listed = await call(http, "GET", f"{url}&camera=south-1", north)
            assert (status, listed["lifts"]) == (200, [])
            status, listed = await call(http, "GET", url, everyone)
            assert len(listed["lifts"]) == 200
            assert {x["camera_id"] for x in listed["lifts"]} == {"south-1"}  # the newest
