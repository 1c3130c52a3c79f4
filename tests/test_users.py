"""Accounts: argon2id hashes, roles and scopes checked, every change audited;
``csuhub users`` and ``csuhub tokens`` end to end on a real data directory."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from hypothesis import given
from hypothesis import strategies as st

from csuhub.security import passwords
from csuhub.security.accounts import AccountError, Accounts
from csuhub.security.permissions import permissions_of, system_principal
from csuhub.security.tokens import hash_secret
from csuhub.store import Store, StoreError
from tests.conftest import run_cli

CLI = system_principal("cli")


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    s = Store(tmp_path / "csuhub.db")
    await s.open()
    yield s
    await s.close()


def test_hashes_are_argon2id_with_the_stated_parameters() -> None:
    stored = passwords.hash_password("correct horse battery")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert passwords.verify_password(stored, "correct horse battery") == passwords.Check(True)
    assert not passwords.verify_password(stored, "correct horse batterY").ok
    assert not passwords.verify_password(None, "anything at all").ok
    assert not passwords.verify_password("not a hash", "anything at all").ok


def test_a_hash_with_old_parameters_verifies_and_asks_for_a_rehash() -> None:
    old = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1).hash("old password 1")
    check = passwords.verify_password(old, "old password 1")
    assert check.ok and check.needs_rehash


@pytest.mark.parametrize("bad", ["short", "x" * 1025, "tab\there and more"])
def test_weak_passwords_are_refused(bad: str) -> None:
    with pytest.raises(passwords.WeakPassword):
        passwords.hash_password(bad)


def test_generated_passwords_are_long_and_distinct() -> None:
    made = {passwords.generate_password() for _ in range(50)}
    assert len(made) == 50 and all(len(p) == 24 for p in made)


async def test_add_checks_roles_scope_and_name(store: Store) -> None:
    accounts = Accounts(store)
    with pytest.raises(AccountError, match="unknown role"):
        await accounts.add(CLI, "ann", roles=["root"], scope=["*"])
    with pytest.raises(AccountError, match="camera scope"):
        await accounts.add(CLI, "ann", roles=["operator"], scope=["street:north"])
    with pytest.raises(AccountError, match="token:"):
        await accounts.add(CLI, "token:x", roles=["operator"], scope=[])
    with pytest.raises(AccountError, match="at least one role"):
        await accounts.add(CLI, "ann", roles=[], scope=[])
    added = await accounts.add(CLI, "ann", roles=["operator"], scope=["district:north"])
    assert added.generated is not None and added.user.kind == "person"
    assert passwords.verify_password(added.user.password_hash, added.generated).ok
    with pytest.raises(StoreError, match="already exists"):
        await accounts.add(CLI, "ann", roles=["operator"], scope=[])
    service = await accounts.add(CLI, "cad", roles=["operator"], scope=["*"], service=True)
    assert service.generated is None and service.user.password_hash is None
    with pytest.raises(AccountError, match="service account"):
        await accounts.set_password(CLI, "cad", None)


async def test_grant_revoke_and_disable_are_audited(store: Store) -> None:
    accounts = Accounts(store)
    await accounts.add(CLI, "bea", roles=["operator"], scope=[], password="a long password 1")
    user = await accounts.change(CLI, "bea", grant=True, roles=["supervisor"], scope=["group:x"])
    assert user.roles == ("operator", "supervisor") and user.scope == ("group:x",)
    user = await accounts.change(CLI, "bea", grant=False, roles=["operator"])
    assert user.roles == ("supervisor",)
    await accounts.disable(CLI, "bea")
    with pytest.raises(AccountError, match="already disabled"):
        await accounts.disable(CLI, "bea")
    actions = [r.action for r in reversed(await store.audit_records(target="bea"))]
    assert actions == ["user.add", "user.grant", "user.revoke", "user.disable"]
    grant = (await store.audit_records(target="bea"))[2]
    assert grant.details["roles"] == ["operator", "supervisor"]
    assert grant.details["scope"] == ["group:x"]


async def test_a_token_acts_with_its_role_while_its_user_holds_it(store: Store) -> None:
    accounts = Accounts(store)
    await accounts.add(CLI, "kiosk", roles=["wall", "operator"], scope=["wall:main"], service=True)
    await store.create_token("screen", "wall", hash_secret("csu_s"), "kiosk")
    found = await store.token_identity(hash_secret("csu_s"))
    assert found is not None
    assert (found.name, found.kind, found.roles, found.scope, found.token) == (
        "kiosk",
        "service",
        ("wall",),
        ("wall:main",),
        "screen",
    )
    principal = found.principal(via="token:screen", source="10.0.0.9")
    assert principal.permissions == permissions_of(["wall"]) and principal.kind == "service"
    with pytest.raises(StoreError, match="does not hold role"):
        await store.create_token("other", "admin", hash_secret("csu_o"), "kiosk")
    with pytest.raises(StoreError, match="no user"):
        await store.create_token("other", "wall", hash_secret("csu_o"), "nobody")
    # taking the role from the account takes it from the token
    await accounts.change(CLI, "kiosk", grant=False, roles=["wall"])
    found = await store.token_identity(hash_secret("csu_s"))
    assert found is not None and found.roles == ()
    assert await store.token_by_hash(hash_secret("csu_s")) is None
    await accounts.change(CLI, "kiosk", grant=True, roles=["wall"])
    assert await store.token_by_hash(hash_secret("csu_s")) == ("screen", "wall")
    # disabling the account stops its tokens at once
    await accounts.disable(CLI, "kiosk")
    assert await store.token_identity(hash_secret("csu_s")) is None
    assert await store.token_by_hash(hash_secret("csu_s")) is None


async def test_a_token_without_user_gets_its_own_service_account(store: Store) -> None:
    await store.create_token("legacy", "viewer", hash_secret("csu_l"))
    found = await store.token_identity(hash_secret("csu_l"))
    assert found is not None
    assert (found.name, found.kind, found.roles, found.scope) == (
        "token:legacy",
        "service",
        ("viewer",),
        ("*",),
    )
    assert await store.token_by_hash(hash_secret("csu_l")) == ("legacy", "viewer")
    assert await store.revoke_token("legacy")
    assert await store.token_identity(hash_secret("csu_l")) is None


# -- the CLI ---------------------------------------------------------------------


def _cli(data: Path, env: dict[str, str], *args: str, stdin: str | None = None) -> Any:
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "csuhub", *args, "--data", str(data)],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=60,
    )


def _audit(data: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(data / "csuhub.db") as conn:
        return [
            (str(r[0]), str(r[1]), str(r[2]))
            for r in conn.execute("SELECT actor, action, target FROM audit_log ORDER BY id")
        ]


def test_users_cli_lifecycle(cli_env: dict[str, str], tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    made = _cli(
        data, cli_env, "users", "add", "chloe", "--role", "operator", "--scope", "district:north",
        "--role", "requisition_officer", "--json",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    doc = json.loads(made.stdout)
    assert doc["roles"] == ["operator", "requisition_officer"]
    assert doc["scope"] == ["district:north"] and len(doc["password"]) == 24
    with sqlite3.connect(data / "csuhub.db") as conn:
        stored = conn.execute("SELECT password_hash FROM users WHERE name='chloe'").fetchone()[0]
    assert passwords.verify_password(stored, doc["password"]).ok
    assert doc["password"] not in stored

    given = _cli(
        data, cli_env, "users", "add", "dan", "--role", "auditor", "--password-stdin",
        stdin="dan's own passphrase\n",
    )  # fmt: skip
    assert given.returncode == 0, given.stderr
    assert "shown only once" not in given.stdout and "passphrase" not in given.stdout
    assert "sees no camera" in given.stdout

    bad = _cli(data, cli_env, "users", "add", "eve", "--role", "admin", "--scope", "floor:2")
    assert bad.returncode == 1 and "camera scope" in bad.stderr
    unknown = _cli(data, cli_env, "users", "add", "eve", "--role", "root")
    assert unknown.returncode == 2  # argparse: not one of the roles

    assert _cli(data, cli_env, "users", "grant", "dan", "--scope", "*").returncode == 0
    revoked = _cli(data, cli_env, "users", "revoke", "chloe", "--role", "operator", "--json")
    assert json.loads(revoked.stdout)["roles"] == ["requisition_officer"]
    nothing = _cli(data, cli_env, "users", "grant", "chloe")
    assert nothing.returncode == 2 and "--role or --scope" in nothing.stderr

    passwd = _cli(data, cli_env, "users", "passwd", "chloe", "--json")
    assert passwd.returncode == 0 and len(json.loads(passwd.stdout)["password"]) == 24
    short = _cli(data, cli_env, "users", "passwd", "chloe", "--password-stdin", stdin="short\n")
    assert short.returncode == 1 and "at least 12" in short.stderr

    assert _cli(data, cli_env, "users", "disable", "dan").returncode == 0
    listing = _cli(data, cli_env, "users", "list")
    assert listing.stdout.splitlines() == [
        "NAME   KIND    ROLES                SCOPE           STATE",
        "chloe  person  requisition_officer  district:north  active",
        "dan    person  auditor              *               disabled",
    ]
    as_json = json.loads(_cli(data, cli_env, "users", "list", "--json").stdout)
    assert "password_hash" not in json.dumps(as_json)
    assert _audit(data) == [
        ("cli", "user.add", "chloe"),
        ("cli", "user.add", "dan"),
        ("cli", "user.grant", "dan"),
        ("cli", "user.revoke", "chloe"),
        ("cli", "user.passwd", "chloe"),
        ("cli", "user.disable", "dan"),
    ]


def test_users_list_needs_hub_data(cli_env: dict[str, str], tmp_path: Path) -> None:
    result = run_cli("users", "list", "--data", str(tmp_path / "none"), env=cli_env)
    assert result.returncode == 2 and "no hub data" in result.stderr


def test_tokens_cli_with_a_user(cli_env: dict[str, str], tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    _cli(data, cli_env, "users", "add", "cad", "--service", "--role", "operator", "--scope", "*")
    made = _cli(data, cli_env, "tokens", "create", "cad-1", "--user", "cad", "--role", "operator")
    assert made.returncode == 0, made.stderr
    assert "of cad" in made.stdout
    wrong = _cli(data, cli_env, "tokens", "create", "cad-2", "--user", "cad", "--role", "admin")
    assert wrong.returncode == 1 and "does not hold role" in wrong.stderr
    _cli(data, cli_env, "tokens", "create", "mqtt", "--role", "viewer")
    listing = _cli(data, cli_env, "tokens", "list")
    assert listing.stdout.splitlines() == [
        "NAME   ROLE      USER        STATE",
        "cad-1  operator  cad         active",
        "mqtt   viewer    token:mqtt  active",
    ]
    assert _cli(data, cli_env, "tokens", "revoke", "cad-1").returncode == 0
    assert _audit(data)[-3:] == [
        ("cli", "token.create", "cad-1"),
        ("cli", "token.create", "mqtt"),
        ("cli", "token.revoke", "cad-1"),
    ]


async def test_a_change_and_its_audit_entry_commit_together(store: Store) -> None:
    from csuhub.store.audited import Entry

    broken = Entry(CLI, "user.add", "ghost", outcome="not an outcome")
    with pytest.raises(ValueError, match="outcome"):
        await store.users.add(
            "ghost", kind="person", roles=["operator"], scope=[], password_hash=None, now=1.0,
            audit=broken,
        )  # fmt: skip
    assert await store.users.get("ghost") is None  # the entry failed: so did the account
    await Accounts(store).add(CLI, "real", roles=["operator"], scope=[], password="long enough pw")
    with pytest.raises(ValueError):
        await store.users.disable("real", 2.0, Entry(CLI, "user.disable", "real", outcome="?"))
    user = await store.users.get("real")
    assert user is not None and user.active
    with pytest.raises(ValueError):
        await store.tokens.create(  # type: ignore[call-arg]
            "t", "operator", hash_secret("csu_t"), "real", Entry(CLI, "x", "t", outcome="?")
        )
    assert await store.list_tokens() == []


#: any code point, lone surrogates often (drawn one by one: hypothesis's text()
#: over a one_of alphabet drops them)
ANY_TEXT = st.lists(
    st.one_of(
        st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
        st.characters(exclude_categories=()),
    ),
    max_size=80,
).map("".join)


@given(ANY_TEXT)
def test_account_names_and_scopes_are_accepted_or_refused_never_crash(raw: str) -> None:
    from csuhub.security.accounts import check_name, check_roles, check_scope
    from csuhub.security.sessions import hash_session_id

    for check in (check_name, lambda v: check_scope([v]), lambda v: check_roles([v])):
        try:
            check(raw)
        except AccountError:
            pass
    try:
        accepted = check_name(raw)
    except AccountError:
        pass
    else:
        assert accepted.isprintable() and 0 < len(accepted) <= 64
        assert not accepted.startswith("token:")
        accepted.encode("utf-8")  # no lone surrogate
    assert len(hash_session_id(raw)) == 64  # any cookie value hashes, lone surrogates too
