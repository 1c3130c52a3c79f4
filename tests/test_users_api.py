"""Accounts, sessions and tokens over the API (``user.manage``), on a real
hub server: the same rules and audit as the CLI, secrets shown once."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from csuhub.testing import api_token
from csuhub.web.users import parse_fields
from csuhub.web.validation import InputError


async def test_user_admin_over_the_api(hub_factory: Any) -> None:
    async with hub_factory(web=True) as hub:
        admin = await api_token(hub, "admin", name="boss")
        operator = await api_token(hub, "operator", name="desk")
        url = hub.web.url
        headers = {"Authorization": f"Bearer {admin}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.post(
                f"{url}/api/users",
                json={"name": "nina", "roles": ["operator"], "scope": ["district:north"]},
            ) as resp:
                assert resp.status == 201
                made = await resp.json()
                assert len(made["password"]) == 24 and resp.headers["Cache-Control"] == "no-store"
            async with http.post(
                f"{url}/api/users", json={"name": "nina", "roles": ["operator"]}
            ) as resp:
                assert resp.status == 409
            for bad in (
                {"name": "x", "roles": ["root"]},
                {"name": "x", "roles": ["operator"], "scope": ["floor:1"]},
                {"name": "x", "roles": ["operator"], "password": "short"},
                {"name": "x", "roles": "operator"},
                {"roles": ["operator"]},
            ):
                async with http.post(f"{url}/api/users", json=bad) as resp:
                    assert resp.status == 400, bad
            async with http.post(
                f"{url}/api/users/nina/grant", json={"roles": ["supervisor"]}
            ) as resp:
                assert (await resp.json())["roles"] == ["operator", "supervisor"]
            async with http.post(
                f"{url}/api/users/nina/revoke", json={"scope": ["district:north"]}
            ) as resp:
                assert (await resp.json())["scope"] == []
            async with http.post(
                f"{url}/api/users/ghost/grant", json={"roles": ["operator"]}
            ) as resp:
                assert resp.status == 404
            async with http.post(
                f"{url}/api/tokens", json={"name": "nina-cad", "role": "supervisor", "user": "nina"}
            ) as resp:
                assert resp.status == 201
                secret = (await resp.json())["token"]
            async with http.post(
                f"{url}/api/tokens", json={"name": "nina-x", "role": "admin", "user": "nina"}
            ) as resp:
                assert resp.status == 400
            async with http.get(f"{url}/api/tokens") as resp:
                listed = (await resp.json())["tokens"]
                assert {"name": "nina-cad", "user": "nina"}.items() <= next(
                    t for t in listed if t["name"] == "nina-cad"
                ).items()
                assert secret not in str(listed)
            async with http.get(f"{url}/api/users") as resp:
                users = {u["name"]: u for u in (await resp.json())["users"]}
                assert "password_hash" not in str(users) and users["nina"]["kind"] == "person"
            async with http.post(f"{url}/api/users/nina/password", json={}) as resp:
                assert len((await resp.json())["password"]) == 24
            async with http.post(f"{url}/api/users/nina/disable") as resp:
                assert resp.status == 200
            async with http.get(
                f"{url}/api/cameras", headers={"Authorization": f"Bearer {secret}"}
            ) as resp:
                assert resp.status == 401  # the disabled account's token stopped
            async with http.post(f"{url}/api/users/nina/enable") as resp:
                assert resp.status == 200
            async with http.post(f"{url}/api/tokens/nina-cad/revoke") as resp:
                assert resp.status == 200
            async with http.post(f"{url}/api/tokens/nina-cad/revoke") as resp:
                assert resp.status == 404
            async with http.get(f"{url}/api/sessions") as resp:
                assert (await resp.json()) == {"sessions": []}
            async with http.post(f"{url}/api/sessions/s-nope/end") as resp:
                assert resp.status == 404
        async with (
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {operator}"}) as http,
            http.get(f"{url}/api/users") as resp,
        ):
            assert resp.status == 403
        audited = [
            (r.actor, r.action, r.target)
            for r in reversed(await hub.store.audit_records(limit=500))
            if r.action.startswith(("user.", "token.")) and r.details.get("outcome", "ok") == "ok"
        ]
    assert ("boss", "user.add", "nina") in audited
    assert ("boss", "user.grant", "nina") in audited
    assert ("boss", "user.revoke", "nina") in audited
    assert ("boss", "token.create", "nina-cad") in audited
    assert ("boss", "user.passwd", "nina") in audited
    assert ("boss", "user.disable", "nina") in audited
    assert ("boss", "token.revoke", "nina-cad") in audited


@given(
    st.one_of(
        st.dictionaries(
            st.sampled_from(["name", "roles", "scope", "service", "password", "zzz"]),
            st.one_of(
                st.text(max_size=80), st.booleans(), st.integers(), st.none(),
                st.lists(st.one_of(st.text(max_size=80), st.integers()), max_size=70),
            ),
            max_size=5,
        ),
        st.lists(st.integers(), max_size=3),
        st.text(max_size=10),
    )
)  # fmt: skip
def test_the_field_parser_accepts_or_refuses_never_crashes(body: Any) -> None:
    allowed = {"name": str, "roles": list, "scope": list, "service": bool, "password": str}
    try:
        fields = parse_fields(body, allowed)
    except InputError:
        return
    for key, value in fields.items():
        assert isinstance(value, allowed[key])
        if allowed[key] is list:
            assert len(value) <= 64 and all(isinstance(v, str) and v for v in value)


def test_an_unknown_field_is_refused() -> None:
    with pytest.raises(InputError, match="unknown field"):
        parse_fields({"name": "x", "admin": True}, {"name": str})
