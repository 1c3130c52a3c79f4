"""Browser login over real HTTP: the hub's own app on a real aiohttp server
(plain and TLS with a self-signed certificate), real SQLite, a real client.

Cookie flags, fixation, logout, CSRF on the login routes and on the API,
timeouts on the test's clock, lockout answers, and the audit of each."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from csuhub.security.accounts import Accounts
from csuhub.security.permissions import permissions_of, system_principal
from csuhub.security.tokens import hash_secret, new_secret
from csuhub.web.app import make_app
from csuhub.web.login import LOGINS_KEY, parse_login, parse_password_change
from csuhub.web.validation import InputError

PASSWORD = "the operator's long password"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Site:
    """One hub's app on a real server, and what the tests need of it."""

    def __init__(self, hub: Any, server: TestServer) -> None:
        self.hub = hub
        self.server = server
        self.app = server.app
        self.url = str(server.make_url("")).rstrip("/")
        self.clock = Clock(1_800_000_000.0)
        assert self.app is not None
        self.app[LOGINS_KEY].clock = self.clock

    def session(self, **kwargs: Any) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), **kwargs)

    async def login(self, http: aiohttp.ClientSession, user: str = "olga") -> dict[str, Any]:
        async with http.post(
            f"{self.url}/api/auth/login", json={"user": user, "password": PASSWORD}
        ) as resp:
            assert resp.status == 200, await resp.text()
            return dict(await resp.json())

    async def audit(self, *prefixes: str) -> list[Any]:
        records = reversed(await self.hub.store.audit_records(limit=1000))
        return [r for r in records if r.action.startswith(prefixes)]


async def _serve(hub_factory: Any, ssl_context: ssl.SSLContext | None = None) -> Any:
    hub_cm = hub_factory()
    hub = await hub_cm.__aenter__()
    accounts = Accounts(hub.store)
    cli = system_principal("cli")
    await accounts.add(cli, "olga", roles=["operator"], scope=["*"], password=PASSWORD)
    await accounts.add(cli, "adam", roles=["admin"], scope=["*"], password=PASSWORD)
    server = TestServer(make_app(hub), host="127.0.0.1")
    await server.start_server(ssl=ssl_context)
    return hub_cm, server, Site(hub, server)


@pytest.fixture
async def site(hub_factory: Any) -> AsyncIterator[Site]:
    hub_cm, server, made = await _serve(hub_factory)
    try:
        yield made
    finally:
        await server.close()
        await hub_cm.__aexit__(None, None, None)


def _set_cookies(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    jar: SimpleCookie = SimpleCookie()
    for header in resp.headers.getall("Set-Cookie", []):
        jar.load(header)
    return {name: morsel for name, morsel in jar.items()}


# -- the body parsers -----------------------------------------------------------------


@given(
    st.one_of(
        st.dictionaries(
            st.sampled_from(["user", "password", "current", "new", "x"]),
            st.one_of(st.text(max_size=70), st.integers(), st.none(), st.lists(st.text())),
            max_size=4,
        ),
        st.lists(st.text(max_size=5), max_size=3),
        st.text(max_size=20),
        st.none(),
        st.integers(),
    )
)
def test_the_login_body_parsers_accept_or_refuse_never_crash(body: Any) -> None:
    for parse in (parse_login, parse_password_change):
        try:
            parsed = parse(body)
        except InputError:
            continue
        *who, first, second = parsed  # password change: (user or None, current, new)
        assert who in ([], [None]) or (isinstance(who[0], str) and who[0].isprintable())
        assert isinstance(first, str) and isinstance(second, str) and first and second
        assert set(body) <= {"user", "password", "current", "new"}


@given(st.text(min_size=1, max_size=64), st.text(min_size=1, max_size=1024))
def test_a_printable_name_and_any_password_parse(name: str, password: str) -> None:
    body = {"user": name, "password": password}
    if name.isprintable():
        assert parse_login(body) == (name, password)
    else:
        with pytest.raises(InputError):
            parse_login(body)


def test_the_login_parser_refuses_what_it_should() -> None:
    for bad in (
        {"user": "a"},
        {"user": "a", "password": ""},
        {"user": "a" * 65, "password": "x"},
        {"user": "a", "password": "x" * 1025},
        {"user": "a", "password": "x", "remember": True},
        {"user": "a\n", "password": "x"},
        ["a", "x"],
    ):
        with pytest.raises(InputError):
            parse_login(bad)


# -- login, cookies, fixation, logout ------------------------------------------------


async def test_login_sets_a_new_hardened_cookie_and_is_audited(site: Site) -> None:
    async with site.session() as http:
        # a cookie planted before login (fixation) is not adopted
        http.cookie_jar.update_cookies({"csuhub_session": "attacker-chosen-value"})
        async with http.post(
            f"{site.url}/api/auth/login", json={"user": "olga", "password": PASSWORD}
        ) as resp:
            assert resp.status == 200
            assert resp.headers["Cache-Control"] == "no-store"
            me = await resp.json()
            cookies = _set_cookies(resp)
        cookie = cookies["csuhub_session"]
        assert cookie.value != "attacker-chosen-value" and len(cookie.value) >= 43
        assert cookie["httponly"] is True and cookie["samesite"] == "Strict"
        assert cookie["path"] == "/" and not cookie["secure"] and not cookie["domain"]
        assert not cookie["expires"] and not cookie["max-age"]
        assert me["user"] == "olga" and me["roles"] == ["operator"]
        assert me["permissions"] == sorted(permissions_of(["operator"]))
        assert me["scope"] == ["*"] and len(me["csrf_token"]) >= 43
        async with http.get(f"{site.url}/api/auth/me") as resp:
            assert resp.status == 200
            assert (await resp.json())["session"] == me["session"]
            assert me["authenticated"] is True
        again = await site.login(http)
        assert again["session"] != me["session"] and again["csrf_token"] != me["csrf_token"]
    (login, _) = await site.audit("login")
    assert (login.actor, login.target) == ("olga", "olga")
    assert await site.hub.store.sessions.list(user="olga")


async def test_logout_ends_the_session_for_good(site: Site) -> None:
    async with site.session() as http:
        me = await site.login(http)
        old_cookie = http.cookie_jar.filter_cookies(URL(site.url))["csuhub_session"].value
        async with http.post(
            f"{site.url}/api/auth/logout", headers={"X-CSRF-Token": me["csrf_token"]}
        ) as resp:
            assert resp.status == 200
            assert _set_cookies(resp)["csuhub_session"].value == ""
        async with http.get(f"{site.url}/api/auth/me") as resp:
            assert (await resp.json()) == {"authenticated": False}
    async with site.session() as replay:  # the old cookie, kept by an attacker
        replay.cookie_jar.update_cookies({"csuhub_session": old_cookie})
        async with replay.get(f"{site.url}/api/auth/me") as resp:
            assert (await resp.json()) == {"authenticated": False}
        async with replay.get(f"{site.url}/api/cameras") as resp:
            assert resp.status == 401
    assert [r.action for r in await site.audit("login", "logout")] == ["login", "logout"]


async def test_wrong_password_and_unknown_user_read_the_same(site: Site) -> None:
    async with site.session() as http:
        answers = []
        for body in ({"user": "olga", "password": "nope"}, {"user": "nobody", "password": "x"}):
            async with http.post(f"{site.url}/api/auth/login", json=body) as resp:
                answers.append((resp.status, await resp.json(), _set_cookies(resp)))
    assert answers[0][:2] == answers[1][:2] == (401, {"error": "wrong user name or password"})
    assert answers[0][2] == answers[1][2] == {}
    failed = await site.audit("login.failed")
    unknown = await site.app[LOGINS_KEY].unknown_label("nobody")
    assert [(r.actor, r.target, r.details["why"]) for r in failed] == [
        ("olga", "olga", "wrong password"),
        (unknown, unknown, "unknown user"),  # an unknown name is not kept as typed
    ]


async def test_lockout_answers_429_with_retry_after(site: Site) -> None:
    async with site.session() as http:
        for _ in range(5):
            async with http.post(
                f"{site.url}/api/auth/login", json={"user": "olga", "password": "nope"}
            ) as resp:
                assert resp.status == 401
        async with http.post(
            f"{site.url}/api/auth/login", json={"user": "olga", "password": PASSWORD}
        ) as resp:
            assert resp.status == 429
            assert resp.headers["Retry-After"] == "60"
            assert (await resp.json())["retry_after"] == 60
        site.clock.now += 60
        await site.login(http)
    assert [r.target for r in await site.audit("login.locked")] == ["user:olga"]


# -- timeouts ----------------------------------------------------------------------


async def test_idle_and_absolute_timeouts_over_http(site: Site) -> None:
    async with site.session() as http:
        await site.login(http)
        site.clock.now += 14 * 60
        async with http.get(f"{site.url}/api/auth/me") as resp:
            assert resp.status == 200
        site.clock.now += 15 * 60 + 1
        async with http.get(f"{site.url}/api/auth/me") as resp:
            assert resp.status == 401
            assert "idle timeout" in (await resp.json())["error"]
        async with http.get(f"{site.url}/api/auth/me") as resp:
            assert (await resp.json()) == {"authenticated": False}
        await site.login(http)
        for _ in range(60):  # 14 minutes apart, never idle: 12 h is 51.4 of them
            site.clock.now += 14 * 60
            async with http.get(f"{site.url}/api/auth/me") as resp:
                if resp.status != 200:
                    assert "absolute timeout" in (await resp.json())["error"]
                    break
        else:
            raise AssertionError("the session outlived its shift")
    expired = await site.audit("session.expired")
    assert [r.details["why"] for r in expired] == ["idle", "absolute"]


# -- CSRF ------------------------------------------------------------------------------


async def test_csrf_is_required_on_unsafe_cookie_requests(site: Site) -> None:
    async with site.session() as http:
        me = await site.login(http, "adam")
        url = f"{site.url}/api/auth/logout"
        for headers in (
            {},
            {"X-CSRF-Token": "wrong"},
            {"X-CSRF-Token": me["csrf_token"], "Origin": "http://evil.example"},
        ):
            async with http.post(url, headers=headers) as resp:
                assert resp.status == 403, headers
        async with http.get(f"{site.url}/api/auth/me") as resp:
            assert (await resp.json())["authenticated"] is True  # the session is still there
        async with http.post(
            url, headers={"X-CSRF-Token": me["csrf_token"], "Origin": site.url}
        ) as resp:
            assert resp.status == 200
    refused = await site.audit("access.refused")
    assert len(refused) == 3 and all(r.details["why"].startswith("csrf") for r in refused)


async def test_password_change_over_http(site: Site) -> None:
    async with site.session() as http, site.session() as other:
        me = await site.login(http)
        await site.login(other)
        body = {"current": PASSWORD, "new": "a brand new passphrase"}
        async with http.post(f"{site.url}/api/auth/password", json=body) as resp:
            assert resp.status == 403  # no CSRF token
        async with http.post(
            f"{site.url}/api/auth/password",
            json={**body, "user": "adam"},
            headers={"X-CSRF-Token": me["csrf_token"]},
        ) as resp:
            assert resp.status == 400  # not this session's
        headers = {"X-CSRF-Token": me["csrf_token"]}
        short = {"current": PASSWORD, "new": "short"}
        async with http.post(f"{site.url}/api/auth/password", json=short, headers=headers) as r:
            assert r.status == 400 and "12" in (await r.json())["error"]
        async with http.post(f"{site.url}/api/auth/password", json=body, headers=headers) as r:
            assert r.status == 200 and (await r.json()) == {"sessions_ended": 1}
        async with other.get(f"{site.url}/api/auth/me") as resp:
            assert (await resp.json()) == {"authenticated": False}
        async with http.get(f"{site.url}/api/auth/me") as resp:
            assert (await resp.json())["user"] == "olga"
    # without a session: the name and the current password prove it, like a login
    async with site.session() as http:
        body = {"user": "olga", "current": "wrong one", "new": "yet another passphrase"}
        async with http.post(f"{site.url}/api/auth/password", json=body) as resp:
            assert resp.status == 401
        body["current"] = "a brand new passphrase"
        async with http.post(f"{site.url}/api/auth/password", json=body) as resp:
            assert resp.status == 200 and (await resp.json()) == {"sessions_ended": 1}
        del body["user"]
        async with http.post(f"{site.url}/api/auth/password", json=body) as resp:
            assert resp.status == 400
    outcomes = [(r.actor, r.details.get("why")) for r in await site.audit("user.passwd")]
    assert outcomes == [
        ("olga", "a password needs at least 12 characters"),
        ("olga", None),
        ("olga", "current"),
        ("olga", None),
    ]


# -- TLS ---------------------------------------------------------------------------------


def _self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "hub.crt", tmp_path / "hub.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


async def test_over_tls_the_cookie_is_secure_and_host_prefixed(
    hub_factory: Any, tmp_path: Path
) -> None:
    server_ctx, client_ctx = _self_signed(tmp_path)
    hub_cm, server, made = await _serve(hub_factory, server_ctx)
    try:
        assert made.url.startswith("https://")
        connector = aiohttp.TCPConnector(ssl=client_ctx)
        async with made.session(connector=connector) as http:
            async with http.post(
                f"{made.url}/api/auth/login", json={"user": "olga", "password": PASSWORD}
            ) as resp:
                assert resp.status == 200
                cookies = _set_cookies(resp)
            cookie = cookies["__Host-csuhub_session"]
            assert cookie["secure"] is True and cookie["httponly"] is True
            assert cookie["samesite"] == "Strict" and cookie["path"] == "/"
            assert not cookie["domain"]
            async with http.get(f"{made.url}/api/auth/me") as resp:
                assert resp.status == 200
    finally:
        await server.close()
        await hub_cm.__aexit__(None, None, None)


# -- bearer tokens are exempt from CSRF ----------------------------------------------


async def test_a_bearer_token_needs_no_csrf_token(site: Site) -> None:
    secret = new_secret()
    await site.hub.store.create_token("ops", "admin", hash_secret(secret))
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{site.url}/api/config/reload", headers={"Authorization": f"Bearer {secret}"}
        ) as resp,
    ):
        assert resp.status in (200, 422)


# -- the session cookie on the rest of the API -----------------------------------------


async def test_the_cookie_authenticates_the_api_with_the_user_s_rights(site: Site) -> None:
    async with site.session() as http:
        await site.login(http, "olga")  # an operator
        async with http.get(f"{site.url}/api/cameras") as resp:
            assert resp.status == 200
        async with http.get(f"{site.url}/api/discovery") as resp:
            assert resp.status == 403  # camera.adopt: not an operator's
    refused = await site.audit("access.refused")
    assert [(r.actor, r.target) for r in refused] == [("olga", "/api/discovery")]


async def test_csrf_on_a_core_route_and_bearer_exemption(site: Site) -> None:
    async with site.session() as http:
        me = await site.login(http, "adam")
        url = f"{site.url}/api/config/reload"
        async with http.post(url) as resp:
            assert resp.status == 403 and "X-CSRF-Token" in (await resp.json())["error"]
        async with http.post(url, headers={"X-CSRF-Token": "forged"}) as resp:
            assert resp.status == 403
        async with http.post(
            url, headers={"X-CSRF-Token": me["csrf_token"], "Origin": "https://evil.example"}
        ) as resp:
            assert resp.status == 403
        async with http.post(url, headers={"X-CSRF-Token": me["csrf_token"]}) as resp:
            assert resp.status in (200, 422)
    refused = [r for r in await site.audit("access.refused") if r.target == "/api/config/reload"]
    assert len(refused) == 3 and all(r.actor == "adam" for r in refused)


async def test_disabling_a_user_stops_sessions_and_tokens_at_once(site: Site) -> None:
    secret = new_secret()
    await site.hub.store.create_token("olga-cad", "operator", hash_secret(secret), "olga")
    bearer = {"Authorization": f"Bearer {secret}"}
    async with site.session() as http, aiohttp.ClientSession() as machine:
        await site.login(http, "olga")
        async with machine.get(f"{site.url}/api/cameras", headers=bearer) as resp:
            assert resp.status == 200
        await Accounts(site.hub.store).disable(system_principal("cli"), "olga")
        async with http.get(f"{site.url}/api/cameras") as resp:
            assert resp.status == 401
        async with machine.get(f"{site.url}/api/cameras", headers=bearer) as resp:
            assert resp.status == 401


async def test_a_token_principal_carries_its_user_s_scope(site: Site) -> None:
    accounts = Accounts(site.hub.store)
    cli = system_principal("cli")
    await accounts.add(cli, "kiosk", roles=["wall"], scope=["camera:cam-9"], service=True)
    secret = new_secret()
    await site.hub.store.create_token("screen-1", "wall", hash_secret(secret), "kiosk")
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {secret}"}) as http,
        http.get(f"{site.url}/api/cameras/cam-x/snapshot.jpg") as resp,
    ):
        assert resp.status == 404  # out of the kiosk's scope: as if it did not exist
    refused = await site.audit("access.refused")
    assert refused and refused[-1].actor == "kiosk"


def test_a_wall_scope_names_the_cameras_of_its_wall(tmp_path: Path) -> None:
    from csuhub.hub import Hub
    from csuhub.security.identity import Identity
    from csuhub.web.login import wall_cameras

    auth = {"reference": "A-1", "issued": "2022-01-10", "expires": "2099-01-09"}
    site = {
        "cameras": [
            {"id": c, "driver": "simcam", "authorization": auth} for c in ("c1", "c2", "c3")
        ],
        "walls": [
            {"id": "main", "screens": [{"id": "s1", "layout": "grid", "cameras": ["c1", "c2"]}]},
            {"id": "side", "screens": [{"id": "s1", "layout": "grid", "cameras": ["c3"]}]},
        ],
    }
    hub = Hub(site, source="<test>", data_dir=tmp_path, web=False)
    hub.setup()
    assert wall_cameras(hub, ("wall:main",)) == {"c1", "c2"}
    assert wall_cameras(hub, ("wall:main", "wall:side")) == {"c1", "c2", "c3"}
    assert wall_cameras(hub, ("wall:none", "district:x")) == frozenset()
    kiosk = Identity(1, "kiosk", "service", ("wall",), ("wall:main",), "screen")
    scope = kiosk.principal(via=None, source=None, wall_cameras=wall_cameras(hub, kiosk.scope))
    assert scope.scope.allows("c1") and not scope.scope.allows("c3")


async def test_the_site_file_sets_lockout_and_session_timeouts(hub_factory: Any) -> None:
    config = {
        "hub": {
            "sessions": {"idle": "2m", "absolute": "1h", "secure_cookie": "always"},
            "lockout": {"account_after": 2, "first_lock": "5m", "max_lock": "10m"},
        }
    }
    async with hub_factory(config) as hub:
        await Accounts(hub.store).add(
            system_principal("cli"), "olga", roles=["operator"], scope=["*"], password=PASSWORD
        )
        server = TestServer(make_app(hub), host="127.0.0.1")
        await server.start_server()
        try:
            made = Site(hub, server)
            logins = made.app[LOGINS_KEY]
            assert logins.sessions.policy.idle == 120 and logins.sessions.policy.absolute == 3600
            async with made.session() as http:
                for _ in range(2):
                    async with http.post(
                        f"{made.url}/api/auth/login", json={"user": "olga", "password": "no"}
                    ) as resp:
                        assert resp.status == 401
                async with http.post(
                    f"{made.url}/api/auth/login", json={"user": "olga", "password": PASSWORD}
                ) as resp:
                    assert resp.status == 429 and resp.headers["Retry-After"] == "300"
                made.clock.now += 300
                async with http.post(
                    f"{made.url}/api/auth/login", json={"user": "olga", "password": PASSWORD}
                ) as resp:
                    assert resp.status == 200
                    # plain HTTP, yet Secure: the site says a TLS proxy is in front
                    assert "Secure" in resp.headers["Set-Cookie"]
        finally:
            await server.close()


def test_a_session_timeout_out_of_order_is_a_config_error() -> None:
    from csuhub.config import ConfigInvalid, validate_site

    with pytest.raises(ConfigInvalid, match="idle must not be longer than absolute"):
        validate_site({"hub": {"sessions": {"idle": "2h", "absolute": "1h"}}}, "site.yaml")
    with pytest.raises(ConfigInvalid, match="first_lock must not be longer than max_lock"):
        validate_site({"hub": {"lockout": {"first_lock": "2h", "max_lock": "1h"}}}, "site.yaml")
