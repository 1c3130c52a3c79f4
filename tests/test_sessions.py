"""Sessions and lockout on a real store, with the clock in the test's hands:
timeouts, growth of locks per account and per address, and their audit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csuhub.security.accounts import Accounts
from csuhub.security.lockout import LockoutPolicy
from csuhub.security.login import BAD_CREDENTIALS, LoginRefused, Logins
from csuhub.security.permissions import system_principal
from csuhub.security.sessions import (
    Expired,
    SessionPolicy,
    csrf_problem,
    hash_session_id,
    origin_matches,
)
from csuhub.store import Store

PASSWORD = "a password for the shift"
T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    s = Store(tmp_path / "csuhub.db")
    await s.open()
    accounts = Accounts(s)
    await accounts.add(system_principal("cli"), "olga", roles=["operator"], scope=["*"],
                       password=PASSWORD)  # fmt: skip
    await accounts.add(system_principal("cli"), "paul", roles=["auditor"], scope=[],
                       password=PASSWORD)  # fmt: skip
    yield s
    await s.close()


def _logins(store: Store, clock: Clock, **lock: Any) -> Logins:
    logins = Logins(store, SessionPolicy(idle=900, absolute=12 * 3600), LockoutPolicy(**lock))
    logins.clock = clock
    return logins


async def _actions(store: Store) -> list[tuple[str, str | None, str]]:
    return [
        (r.action, r.target, r.details.get("why", ""))
        for r in reversed(await store.audit_records(limit=1000))
        if r.action.startswith(("login", "logout", "session"))
    ]


async def test_login_makes_a_new_session_and_stores_only_its_hash(store: Store) -> None:
    clock = Clock()
    logins = _logins(store, clock)
    first = await logins.login("olga", PASSWORD, source="10.0.0.1", user_agent="t")
    second = await logins.login("olga", PASSWORD, source="10.0.0.1", user_agent="t")
    assert first.opened.cookie != second.opened.cookie
    assert first.opened.record.public_id != second.opened.record.public_id
    assert first.opened.record.csrf != second.opened.record.csrf
    rows = await store.call(
        lambda c: [tuple(r) for r in c.execute("SELECT id, public_id FROM sessions")]
    )
    ids = {r[0] for r in rows}
    assert hash_session_id(first.opened.cookie) in ids and first.opened.cookie not in ids
    found = await logins.sessions.resolve(first.opened.cookie)
    assert found is not None and found.identity.name == "olga"
    assert found.identity.roles == ("operator",)
    await logins.logout(found, "10.0.0.1")
    assert await logins.sessions.resolve(first.opened.cookie) is None
    assert await logins.sessions.resolve(second.opened.cookie) is not None
    assert await _actions(store) == [
        ("login", "olga", ""),
        ("login", "olga", ""),
        ("logout", "olga", ""),
    ]
    rows = await store.call(
        lambda c: [
            tuple(r)
            for r in c.execute(
                "SELECT action, actor, role, via, source, class FROM audit_log"
                " WHERE action IN ('login', 'logout') ORDER BY id"
            )
        ]
    )
    assert rows == [
        ("login", "olga", "operator", first.opened.record.public_id, "10.0.0.1", "access"),
        ("login", "olga", "operator", second.opened.record.public_id, "10.0.0.1", "access"),
        ("logout", "olga", "operator", first.opened.record.public_id, "10.0.0.1", "access"),
    ]


async def test_idle_timeout_and_touching(store: Store) -> None:
    clock = Clock()
    logins = _logins(store, clock)
    cookie = (await logins.login("olga", PASSWORD, source="a", user_agent=None)).opened.cookie
    for _ in range(4):  # active every 10 minutes: never idle for 15
        clock.now += 600
        assert await logins.sessions.resolve(cookie) is not None
    stored = await store.sessions.list(user="olga")
    assert stored[0]["last_seen"] == clock.now  # written (600 s >= touch_every)
    clock.now += 901
    with pytest.raises(Expired) as gone:
        await logins.sessions.resolve(cookie)
    assert gone.value.why == "idle"
    assert await logins.sessions.resolve(cookie) is None  # ended for good
    (ended,) = await store.sessions.list(user="olga", active=False)
    assert ended["end_reason"] == "idle"


async def test_last_seen_is_not_written_on_every_request(store: Store) -> None:
    clock = Clock()
    logins = _logins(store, clock)
    cookie = (await logins.login("olga", PASSWORD, source="a", user_agent=None)).opened.cookie
    for _ in range(10):
        clock.now += 2
        assert await logins.sessions.resolve(cookie) is not None
    (row,) = await store.sessions.list(user="olga")
    assert row["last_seen"] == T0  # 20 s < 30 s: nothing written yet
    clock.now += 12
    await logins.sessions.resolve(cookie)
    (row,) = await store.sessions.list(user="olga")
    assert row["last_seen"] == T0 + 32


async def test_absolute_timeout_ends_even_an_active_session(store: Store) -> None:
    clock = Clock()
    logins = _logins(store, clock)
    cookie = (await logins.login("olga", PASSWORD, source="a", user_agent=None)).opened.cookie
    while clock.now - T0 < 12 * 3600 - 600:
        clock.now += 600
        assert await logins.sessions.resolve(cookie) is not None
    clock.now = T0 + 12 * 3600 + 1
    with pytest.raises(Expired) as gone:
        await logins.sessions.resolve(cookie)
    assert gone.value.why == "absolute"


async def test_sessions_survive_a_restart(store: Store, tmp_path: Path) -> None:
    clock = Clock()
    cookie = (
        await _logins(store, clock).login("olga", PASSWORD, source="a", user_agent=None)
    ).opened.cookie
    await store.close()
    await store.open()
    assert await _logins(store, clock).sessions.resolve(cookie) is not None


async def test_disabling_ends_sessions_at_once(store: Store) -> None:
    clock = Clock()
    logins = _logins(store, clock)
    cookie = (await logins.login("olga", PASSWORD, source="a", user_agent=None)).opened.cookie
    await Accounts(store).disable(system_principal("cli"), "olga")
    assert await logins.sessions.resolve(cookie) is None
    with pytest.raises(LoginRefused, match=BAD_CREDENTIALS):
        await logins.login("olga", PASSWORD, source="a", user_agent=None)


async def test_password_change_ends_the_other_sessions(store: Store) -> None:
    clock = Clock()
    logins = _logins(store, clock)
    here = (await logins.login("olga", PASSWORD, source="a", user_agent=None)).opened
    there = (await logins.login("olga", PASSWORD, source="b", user_agent=None)).opened
    with pytest.raises(LoginRefused):
        await logins.change_password(
            "olga", "not it at all", "the new password 1", source="a", session=here.record
        )
    ended = await logins.change_password(
        "olga", PASSWORD, "the new password 1", source="a", session=here.record
    )
    assert ended == [there.record.public_id]
    assert await logins.sessions.resolve(there.cookie) is None
    assert await logins.sessions.resolve(here.cookie) is not None
    with pytest.raises(LoginRefused):
        await logins.login("olga", PASSWORD, source="a", user_agent=None)
    assert await logins.login("olga", "the new password 1", source="a", user_agent=None)


async def test_lockout_grows_per_account(store: Store) -> None:
    clock = Clock()
    logins = _logins(store, clock, account_threshold=3, first_lock=60, max_lock=240)
    for _ in range(2):
        with pytest.raises(LoginRefused, match=BAD_CREDENTIALS):
            await logins.login("olga", "wrong", source="10.0.0.1", user_agent=None)
    locks = []
    for _ in range(4):  # the 3rd failure locks 60 s, then 120, 240, 240 (the cap)
        with pytest.raises(LoginRefused) as refused:
            await logins.login("olga", "wrong", source="10.0.0.1", user_agent=None)
        assert refused.value.retry_after == 0  # this one was checked, and failed
        with pytest.raises(LoginRefused) as locked:  # even the right password now
            await logins.login("olga", PASSWORD, source="10.0.0.1", user_agent=None)
        locks.append(locked.value.retry_after)
        clock.now += locked.value.retry_after
    assert locks == [60, 120, 240, 240]
    # the lock is the account's: another address is refused too
    with pytest.raises(LoginRefused) as elsewhere:
        await logins.login("olga", "wrong", source="10.0.0.2", user_agent=None)
    assert elsewhere.value.retry_after == 0
    with pytest.raises(LoginRefused) as elsewhere:
        await logins.login("olga", PASSWORD, source="10.0.0.2", user_agent=None)
    assert elsewhere.value.retry_after == 240
    clock.now += 240
    assert await logins.login("olga", PASSWORD, source="10.0.0.2", user_agent=None)
    # success cleared the account's count: the next failure does not lock
    with pytest.raises(LoginRefused) as again:
        await logins.login("olga", "wrong", source="10.0.0.2", user_agent=None)
    assert again.value.retry_after == 0
    assert await logins.login("olga", PASSWORD, source="10.0.0.2", user_agent=None)
    actions = await _actions(store)
    failed = [a for a in actions if a[0] == "login.failed"]
    assert [a[2] for a in failed].count("locked") == 5
    assert [a[2] for a in failed].count("wrong password") == 8
    locked_entries = [a for a in actions if a[0] == "login.locked"]
    assert [a[1] for a in locked_entries] == ["user:olga"] * 5
    records = [r for r in await store.audit_records(limit=1000) if r.action == "login.locked"]
    assert sorted(r.details["seconds"] for r in records) == [60, 120, 240, 240, 240]


async def test_lockout_per_address_across_accounts(store: Store) -> None:
    clock = Clock()
    logins = _logins(store, clock, account_threshold=10, address_threshold=4, first_lock=30)
    names = ["olga", "paul", "nobody", "olga"]
    for name in names:
        with pytest.raises(LoginRefused):
            await logins.login(name, "wrong", source="192.0.2.7", user_agent=None)
    # the address is locked for every name, even an unknown one, and a good password
    for name in ("paul", "zed"):
        with pytest.raises(LoginRefused) as locked:
            await logins.login(name, PASSWORD, source="192.0.2.7", user_agent=None)
        assert locked.value.retry_after == 30
    assert await logins.login("paul", PASSWORD, source="192.0.2.8", user_agent=None)
    clock.now += 30
    assert await logins.login("paul", PASSWORD, source="192.0.2.7", user_agent=None)
    with pytest.raises(LoginRefused) as more:  # the address's count was not cleared
        await logins.login("paul", "wrong", source="192.0.2.7", user_agent=None)
    assert more.value.retry_after == 0
    with pytest.raises(LoginRefused) as locked:
        await logins.login("paul", PASSWORD, source="192.0.2.7", user_agent=None)
    assert locked.value.retry_after == 60  # doubled
    locks = [a for a in await _actions(store) if a[0] == "login.locked"]
    assert [a[1] for a in locks] == ["addr:192.0.2.7", "addr:192.0.2.7"]
    # a name that is no account is not written as typed, but as its keyed hash
    label = await logins.unknown_label("nobody")
    assert label.startswith("unknown:") and label == await logins.unknown_label("nobody")
    actions = await _actions(store)
    assert [a for a in actions if a[1] == label] == [("login.failed", label, "unknown user")]
    assert "nobody" not in repr(actions) and "zed" not in repr(actions)


async def test_a_service_account_cannot_log_in(store: Store) -> None:
    await Accounts(store).add(system_principal("cli"), "cad", roles=["operator"], scope=["*"],
                              service=True)  # fmt: skip
    with pytest.raises(LoginRefused, match=BAD_CREDENTIALS):
        await _logins(store, Clock()).login("cad", "", source="a", user_agent=None)


def test_lock_growth_is_bounded() -> None:
    policy = LockoutPolicy(account_threshold=5, first_lock=60, max_lock=3600)
    assert [policy.lock_for(5, n) for n in range(1, 13)] == [
        0, 0, 0, 0, 60, 120, 240, 480, 960, 1920, 3600, 3600,
    ]  # fmt: skip
    assert policy.lock_for(5, 10**9) == 3600
    with pytest.raises(ValueError):
        LockoutPolicy(first_lock=0)
    with pytest.raises(ValueError):
        SessionPolicy(idle=100, absolute=50)


# -- CSRF and Origin ------------------------------------------------------------------


async def test_csrf_needs_the_session_token_on_unsafe_methods(store: Store) -> None:
    record = (
        await _logins(store, Clock()).login("olga", PASSWORD, source="a", user_agent=None)
    ).opened.record
    host = "hub.example:8480"
    assert csrf_problem("GET", record, None, None, host) is None
    assert csrf_problem("HEAD", record, None, "https://evil.example", host) is None
    for method in ("POST", "PUT", "PATCH", "DELETE", "post"):
        assert "X-CSRF-Token" in str(csrf_problem(method, record, None, None, host))
        assert "X-CSRF-Token" in str(csrf_problem(method, record, "wrong", None, host))
        assert csrf_problem(method, record, record.csrf, None, host) is None
        assert csrf_problem(method, record, record.csrf, "http://hub.example:8480", host) is None
        assert "Origin" in str(
            csrf_problem(method, record, record.csrf, "http://evil.example:8480", host)
        )
    assert "X-CSRF-Token" in str(csrf_problem("POST", record, "\udcff", None, host))


@pytest.mark.parametrize(
    ("origin", "host", "ok"),
    [
        ("https://hub.example", "hub.example", True),
        ("https://HUB.example", "hub.example", True),
        ("https://hub.example:8443", "hub.example:8443", True),
        ("https://hub.example:8443", "hub.example", False),
        ("https://hub.example.evil", "hub.example", False),
        ("null", "hub.example", False),
        ("file://hub.example", "hub.example", False),
        ("https://hub.example/path", "hub.example", False),
        ("https://[::1", "hub.example", False),
        ("https://hub.example", None, False),
    ],
)
def test_origin_must_name_the_host(origin: str, host: str | None, ok: bool) -> None:
    assert origin_matches(origin, host) is ok


@given(st.text(max_size=80), st.one_of(st.none(), st.text(max_size=40)))
def test_origin_matching_never_raises(origin: str, host: str | None) -> None:
    assert origin_matches(origin, host) in (True, False)


async def test_remembered_activity_is_bounded(store: Store) -> None:
    clock = Clock()
    logins = _logins(store, clock)
    for _ in range(3):
        await logins.login("olga", PASSWORD, source="a", user_agent=None)
        clock.now += 1000  # past the idle timeout: the earlier ones are over
    await logins.login("olga", PASSWORD, source="a", user_agent=None)
    assert len(logins.sessions._seen) == 1
