"""The kiosk's doors, over real HTTP to a real hub (no browser needed): the
token exchange and who it lets in, the redirect it refuses, the page's
headers and scope, the keep-alive and its renewal, the static modules."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yarl
from hypothesis import given
from hypothesis import strategies as st

from csuhub.security.accounts import Accounts
from csuhub.security.permissions import system_principal
from csuhub.security.tokens import hash_secret, new_secret
from csuhub.testing import api_token, make_hub
from csuhub.web.kiosk import CSP, assets_version, check_next, parse_login
from csuhub.web.login import LOGINS_KEY
from csuhub.web.validation import InputError

SITE = {
    "hub": {"sessions": {"idle": "1h", "absolute": "1h"}},
    "walls": [
        {"id": "main", "screens": [{"id": "quad", "layout": "grid", "cameras": []}]},
        {"id": "other", "screens": [{"id": "s1", "layout": "grid", "cameras": []}]},
    ],
}


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Any]:
    async with make_hub(tmp_path / "hub", SITE, web=True, sweeping=False) as running:
        yield running


async def token_for(hub: Any, account: str, roles: list[str], scope: list[str], role: str) -> str:
    await Accounts(hub.store).add(
        system_principal("cli"), account, roles=roles, scope=scope, service=True
    )
    secret = new_secret()
    await hub.store.create_token(f"t-{account}", role, hash_secret(secret), account)
    return secret


def browser() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def login(http: aiohttp.ClientSession, hub: Any, token: str, nxt: str) -> Any:
    async with http.get(
        f"{hub.web.url}/wall/login",
        params={"token": token, "next": nxt},
        allow_redirects=False,
    ) as resp:
        await resp.read()
        return resp


async def test_a_wall_token_is_exchanged_once_for_a_cookie(hub: Any) -> None:
    token = await token_for(hub, "kiosk-main", ["wall"], ["wall:main"], "wall")
    async with browser() as http:
        resp = await login(http, hub, token, "/wall/main/quad?lang=en")
        assert resp.status == 303 and resp.headers["Location"] == "/wall/main/quad?lang=en"
        cookie = resp.cookies["csuhub_session"]
        assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
        assert token not in cookie.value
        async with http.get(f"{hub.web.url}/wall/main/quad?lang=en") as page:
            html = await page.text()
            assert page.status == 200 and page.content_type == "text/html"
            assert page.headers["Content-Security-Policy"] == CSP
            assert "script-src 'self'" in CSP and "connect-src 'self'" in CSP
            assert page.headers["Cache-Control"] == "no-store"
        assert "<script>" not in html and "onload" not in html  # nothing inline
        assert f'src="/static/kiosk/{assets_version()}/kiosk.js"' in html
        assert 'data-lang="en"' in html and token not in html
        assert re.search(r'data-csrf="[^"]{20,}"', html)
        # its own wall only
        async with http.get(f"{hub.web.url}/wall/other/s1") as page:
            assert page.status == 404
        async with http.get(f"{hub.web.url}/api/walls/main") as resp:
            assert resp.status == 200
    [entry] = [r for r in await hub.store.audit_records() if r.action == "login"]
    assert entry.actor == "kiosk-main" and entry.details["token"] == "t-kiosk-main"
    assert entry.details["kiosk"] is True


async def test_the_form_posts_the_token_instead(hub: Any) -> None:
    token = await token_for(hub, "kiosk-main", ["wall"], ["wall:main"], "wall")
    base = hub.web.url
    async with browser() as http:
        async with http.get(f"{base}/wall/login?next=/wall/main/quad") as form:
            html = await form.text()
            assert form.status == 200 and form.headers["Content-Security-Policy"] == CSP
        assert 'action="/wall/login"' in html and 'value="/wall/main/quad"' in html
        form_data = {"token": token, "next": "/wall/main/quad"}
        async with http.post(
            f"{base}/wall/login", data=form_data, headers={"Origin": "https://evil.example"}
        ) as resp:
            assert resp.status == 403  # a foreign page cannot log a screen in
        async with http.post(f"{base}/wall/login", json=form_data) as resp:
            assert resp.status == 415
        async with http.post(f"{base}/wall/login", data=form_data, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/wall/main/quad"
        # without next: the one wall the scope names, its first screen
        async with http.post(
            f"{base}/wall/login", data={"token": token}, allow_redirects=False
        ) as r:
            assert r.status == 303 and r.headers["Location"] == "/wall/main/quad"


async def test_who_may_open_a_kiosk(hub: Any) -> None:
    auditor_name = "committee"
    auditor = await api_token(hub, "auditor", name=auditor_name)  # no wall.view
    broad = await token_for(hub, "wide", ["wall", "operator"], ["*"], "wall")
    operator = await token_for(hub, "olga", ["operator"], ["*"], "operator")
    async with browser() as http:
        for token, status in (("not-a-token", 401), (auditor, 403), (broad, 403)):
            resp = await login(http, hub, token, "/wall/main/quad")
            assert resp.status == status, token
            assert not resp.cookies
        # an operator's token: the session holds no more than the token did
        resp = await login(http, hub, operator, "/wall/main/quad")
        assert resp.status == 303
    refused = await hub.store.audit_trail.entries(action="login.failed")
    assert {r["outcome"] for r in refused} == {"refused"}
    assert sorted(r["actor"] for r in refused) == sorted([f"token:{auditor_name}", "wide"])
    assert all(r["via"].startswith("token:") for r in refused)
    # a role without wall.view cannot see a kiosk page with its token either
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {auditor}"}
        async with http.get(f"{hub.web.url}/wall/main/quad", headers=headers) as resp:
            assert resp.status == 403
        async with http.get(f"{hub.web.url}/wall/main/quad") as resp:
            assert resp.status == 401


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/wall/main/quad",
        "//evil.example/wall/main/quad",
        "/wall/main/../../api/users",
        "/\\evil.example/wall/main/quad",
        "/wall/main/quad/extra",
        "/api/walls/main",
        "/wall/main/quad?lang=de",
        "/wall/main/quad#x",
    ],
)
async def test_next_is_a_kiosk_page_of_this_hub(hub: Any, target: str) -> None:
    token = await token_for(hub, "kiosk-main", ["wall"], ["wall:main"], "wall")
    async with browser() as http:
        resp = await login(http, hub, token, target)
        assert resp.status == 400 and "Location" not in resp.headers


@given(st.text(max_size=80))
def test_check_next_only_passes_kiosk_paths(value: str) -> None:
    found = check_next(value)
    if found is not None:
        assert found == value and found.startswith("/wall/")
        assert not any(bad in found for bad in ("//", "\\", "..", "#", "@", ":"))


@given(st.from_regex(r"/wall/[a-z0-9][a-z0-9_-]{0,10}/[a-z0-9][a-z0-9_-]{0,10}", fullmatch=True))
def test_check_next_passes_every_kiosk_page(value: str) -> None:
    assert check_next(value) == value


@given(
    st.dictionaries(
        st.sampled_from(["token", "next", "lang", "x"]),
        st.lists(st.text(max_size=300), max_size=3),
        max_size=4,
    )
)
def test_parse_login_takes_one_token_and_a_safe_next(fields: dict[str, list[str]]) -> None:
    try:
        secret, target = parse_login(fields)
    except InputError:
        return
    assert set(fields) <= {"token", "next"} and all(len(v) == 1 for v in fields.values())
    assert secret == fields["token"][0].strip() and 0 < len(secret) <= 256
    assert secret.isascii() and secret.isprintable()
    assert target == check_next(fields.get("next", [None])[0])
    assert "next" not in fields or target is not None


async def test_the_keep_alive_renews_past_half_the_timeout(hub: Any) -> None:
    token = await token_for(hub, "kiosk-main", ["wall"], ["wall:main"], "wall")
    base = hub.web.url
    logins = hub.web.app[LOGINS_KEY]
    async with browser() as http:
        await login(http, hub, token, "/wall/main/quad")
        async with http.get(f"{base}/wall/main/quad") as page:
            csrf = re.search(r'data-csrf="([^"]+)"', await page.text()).group(1)  # type: ignore[union-attr]
            assert 'data-ping="60"' in await page.text()
        async with http.post(f"{base}/wall/session") as resp:
            assert resp.status == 403  # no CSRF token
        async with http.post(f"{base}/wall/session", headers={"X-CSRF-Token": csrf}) as resp:
            said = await resp.json()
            assert resp.status == 200 and said == {"csrf_token": csrf, "renewed": False, "ping": 60}
        old = http.cookie_jar.filter_cookies(yarl.URL(base))["csuhub_session"].value
        logins.clock = lambda: time.time() + 1900  # past half of the 1 h absolute timeout
        async with http.post(f"{base}/wall/session", headers={"X-CSRF-Token": csrf}) as resp:
            said = await resp.json()
            assert resp.status == 200 and said["renewed"] and said["csrf_token"] != csrf
        new = http.cookie_jar.filter_cookies(yarl.URL(base))["csuhub_session"].value
        assert new != old
        async with aiohttp.ClientSession() as stale:
            async with stale.get(
                f"{base}/api/walls/main", headers={"Cookie": f"csuhub_session={old}"}
            ) as resp:
                assert resp.status == 401  # the old session ended
        # the screen's token revoked: no more renewals
        assert await hub.store.revoke_token("t-kiosk-main")
        logins.clock = lambda: time.time() + 3900  # half past the new one
        headers = {"X-CSRF-Token": said["csrf_token"]}
        async with http.post(f"{base}/wall/session", headers=headers) as resp:
            assert resp.status == 403
    renewed = await hub.store.audit_trail.entries(action="session.renewed")
    assert [r["outcome"] for r in renewed] == ["ok", "refused"]
    assert renewed[0]["actor"] == "kiosk-main"
    assert json.loads(renewed[0]["details"])["previous"] != renewed[0]["via"]  # the new session
    # a bearer token needs no keep-alive
    operator = await api_token(hub, "operator")
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {operator}"}
        async with http.post(f"{base}/wall/session", headers=headers) as resp:
            assert resp.status == 400


async def test_static_modules_are_versioned_and_confined(hub: Any) -> None:
    base = f"{hub.web.url}/static/kiosk"
    version = assets_version()
    async with aiohttp.ClientSession() as http:
        for name in ("kiosk.js", "player.js", "kiosk.css"):
            async with http.get(f"{base}/{version}/{name}") as resp:
                assert resp.status == 200, name
                assert "immutable" in resp.headers["Cache-Control"]
                assert resp.headers["X-Content-Type-Options"] == "nosniff"
                assert resp.content_type in ("text/javascript", "text/css")
        for path in (
            "0000000000000000/kiosk.js",
            f"{version}/nothing.js",
            f"{version}/..%2Fkiosk.py",
            f"{version}/..%2Ftemplates%2Fkiosk.html",
            f"{version}/%2E%2E%2F%2E%2E%2Fkiosk.py",
            f"{version}/KIOSK.JS",
        ):
            async with http.get(f"{base}/{path}") as resp:
                assert resp.status == 404, path


async def test_a_link_from_another_site_only_fills_the_form(hub: Any) -> None:
    """Login CSRF: a link on another page must not swap the browser's session
    for one of its choosing; the exchange by GET needs an address typed here."""
    token = await token_for(hub, "kiosk-main", ["wall"], ["wall:main"], "wall")
    url = f"{hub.web.url}/wall/login"
    query = {"token": token, "next": "/wall/main/quad"}

    async def get(http: aiohttp.ClientSession, headers: dict[str, str]) -> tuple[int, str, Any]:
        async with http.get(url, params=query, headers=headers, allow_redirects=False) as resp:
            return resp.status, await resp.text(), resp

    async with browser() as http:
        for site in ("cross-site", "same-site"):
            status, html, resp = await get(http, {"Sec-Fetch-Site": site})
            assert status == 200 and not resp.cookies, site
            assert resp.headers["Content-Security-Policy"] == CSP
            assert 'action="/wall/login"' in html and f'value="{token}"' in html
            assert 'value="/wall/main/quad"' in html and "<p hidden>" not in html
        # typed into the address bar (or no Fetch metadata, no session yet): logged in
        status, _, resp = await get(http, {"Sec-Fetch-Site": "none"})
        assert status == 303 and "csuhub_session" in resp.cookies
        # now holding a session: without Fetch metadata, or from this hub's own
        # pages, the form again; typed, the exchange
        for headers in ({}, {"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "cross-site"}):
            status, html, resp = await get(http, headers)
            assert status == 200 and f'value="{token}"' in html and not resp.cookies, headers
        status, _, resp = await get(http, {"Sec-Fetch-Site": "none"})
        assert status == 303
    async with browser() as http:
        status, _, resp = await get(http, {"Sec-Fetch-Site": "same-origin"})
        assert status == 303  # no session yet, from the hub's own page
        # a malformed token is refused before any form is shown
        async with http.get(
            url, params={"token": "x" * 300}, headers={"Sec-Fetch-Site": "cross-site"}
        ) as resp:
            assert resp.status == 400
    # the form without a token hides the confirmation line
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as resp:
            assert "<p hidden>" in await resp.text()
    assert len([r for r in await hub.store.audit_records() if r.action == "login"]) == 3
