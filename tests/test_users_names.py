"""User names are one account however they are typed (L5 of the review):
stored and looked up NFC-normalised and case-folded, and a name mixing the
letters of several scripts is refused, on a real store and real argon2."""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csuhub.security.accounts import AccountError, Accounts, check_name, normalize_name
from csuhub.security.login import LoginRefused, Logins
from csuhub.security.permissions import system_principal
from csuhub.store import Store, StoreError

CLI = system_principal("cli")
PASSWORD = "the operator's long password"


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    s = Store(tmp_path / "csuhub.db")
    await s.open()
    yield s
    await s.close()


async def test_names_differing_in_case_or_form_are_one_account(store: Store) -> None:
    accounts = Accounts(store)
    added = await accounts.add(CLI, "Olga", roles=["operator"], scope=["*"], password=PASSWORD)
    assert added.user.name == "olga"
    for same in ("olga", "OLGA", "oLgA"):
        with pytest.raises(StoreError, match="already exists"):
            await accounts.add(CLI, same, roles=["operator"], scope=["*"])
    composed, decomposed = "Ren\u00e9", "Rene\u0301"
    await accounts.add(CLI, composed, roles=["auditor"], scope=[], service=True)
    with pytest.raises(StoreError, match="already exists"):
        await accounts.add(CLI, decomposed, roles=["auditor"], scope=[], service=True)
    assert (await accounts.get(decomposed.upper())).name == "ren\u00e9"
    await accounts.change(CLI, "OLGA", grant=True, roles=["supervisor"])
    assert (await accounts.get("olga")).roles == ("operator", "supervisor")


async def test_look_alike_mixed_script_names_are_refused(store: Store) -> None:
    accounts = Accounts(store)
    with pytest.raises(AccountError, match="one script"):
        await accounts.add(CLI, "\u043elga", roles=["operator"], scope=["*"])  # Cyrillic o
    made = await accounts.add(CLI, "\u041e\u043b\u044c\u0433\u0430", roles=["operator"],
                              scope=["*"], service=True)  # fmt: skip
    assert made.user.name == "\u043e\u043b\u044c\u0433\u0430"  # one script: fine
    assert check_name("ana-2") == "ana-2"  # digits and marks are no script


async def test_login_and_lockout_use_the_normalised_name(store: Store) -> None:
    await Accounts(store).add(CLI, "olga", roles=["operator"], scope=["*"], password=PASSWORD)
    logins = Logins(store)
    done = await logins.login("OLGA", PASSWORD, source="192.0.2.1", user_agent=None)
    assert done.user.name == "olga"
    for typed in ("Olga", "OLGA", "olga", "oLGA", "OlGa"):  # one account's five failures
        with pytest.raises(LoginRefused):
            await logins.login(typed, "wrong", source="192.0.2.1", user_agent=None)
    with pytest.raises(LoginRefused) as locked:
        await logins.login("olga", PASSWORD, source="192.0.2.2", user_agent=None)
    assert locked.value.retry_after > 0
    targets = {r.target for r in await store.audit_records(limit=100) if r.action == "login.failed"}
    assert targets == {"olga"}


@given(st.text(max_size=70))
def test_an_accepted_name_is_its_own_normal_form(raw: str) -> None:
    try:
        name = check_name(raw)
    except AccountError:
        return
    assert name == normalize_name(name) == normalize_name(raw)
    assert unicodedata.is_normalized("NFC", name) and name == name.casefold()
    assert 0 < len(name) <= 64 and name.isprintable()


async def test_unknown_names_are_hashed_under_one_kept_key(store: Store) -> None:
    import asyncio

    first = Logins(store)
    labels = await asyncio.gather(*(first.unknown_label("nobody") for _ in range(5)))
    assert len(set(labels)) == 1 and labels[0].startswith("unknown:")
    assert await Logins(store).unknown_label("nobody") == labels[0]  # the key is kept
    assert await first.unknown_label("somebody") != labels[0]


def test_the_cli_shows_and_finds_the_stored_name(cli_env: dict[str, str], tmp_path: Path) -> None:
    import subprocess
    import sys

    data = tmp_path / "data"
    data.mkdir()

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "csuhub", *args, "--data", str(data)],
            capture_output=True, text=True, env=cli_env, timeout=60,
        )  # fmt: skip

    added = cli("users", "add", "Nina", "--role", "operator", "--scope", "*")
    assert added.returncode == 0 and "person nina added" in added.stdout, added.stderr
    assert cli("users", "add", "NINA", "--role", "operator").returncode == 1
    assert cli("users", "grant", "NiNa", "--role", "supervisor").returncode == 0
    token = cli("tokens", "create", "nina-cad", "--user", "NINA", "--role", "supervisor")
    assert token.returncode == 0 and "of nina" in token.stdout, token.stderr
