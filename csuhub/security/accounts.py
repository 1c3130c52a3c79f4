"""Managing accounts: the rules the CLI and the API both apply, and their audit.

Roles are checked against :data:`~csuhub.security.permissions.ROLES` and scope
selectors with :func:`~csuhub.security.permissions.check_scope_selector` before
anything is stored; every change is audited with the roles and scope it left.

A name is one account however it is typed: names are stored and looked up
NFC-normalised and case-folded (``Olga`` is ``olga``), and a name mixing
letters of several scripts (a Cyrillic o, U+043E, inside a Latin ``olga``) is
refused at creation, so the audit cannot show two accounts a reader takes for
one. A name in one script other than Latin is accepted.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from csuhub.security.passwords import HashGate, generate_password
from csuhub.security.permissions import ROLES, Principal, check_scope_selector
from csuhub.store.audited import Entry

if TYPE_CHECKING:
    from csuhub.store import Store
    from csuhub.store.users import UserRow


class AccountError(ValueError):
    """A request the rules refuse (unknown role, bad selector, unknown user)."""


def check_roles(roles: Iterable[str]) -> list[str]:
    found = list(dict.fromkeys(roles))
    for role in found:
        if role not in ROLES:
            raise AccountError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    return found


def check_scope(selectors: Iterable[str]) -> list[str]:
    try:
        return [check_scope_selector(s) for s in dict.fromkeys(selectors)]
    except ValueError as err:
        raise AccountError(str(err)) from None


def normalize_name(name: str) -> str:
    """The form a name is stored and looked up in: NFC, case-folded."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def _scripts(name: str) -> set[str]:
    """The scripts of a name's letters (the first word of each letter's Unicode
    name: LATIN, CYRILLIC, GREEK...)."""
    return {unicodedata.name(c, "?").split(" ")[0] for c in name if c.isalpha()}


def check_name(name: str) -> str:
    """Names appear in the audit and in cookies' owners: printable, bounded, one
    script, not ``token:`` (the prefix of tokens' own service accounts); the
    normalised name (:func:`normalize_name`) is returned."""
    if not name or len(name) > 64 or not name.isprintable() or name != name.strip():
        raise AccountError("a user name is 1-64 printable characters, no outer spaces")
    name = normalize_name(name)
    if len(name) > 64 or not name.isprintable():
        raise AccountError("a user name is 1-64 printable characters, no outer spaces")
    if len(_scripts(name)) > 1:
        raise AccountError("a user name uses the letters of one script (no look-alike mixes)")
    if name.startswith("token:"):
        raise AccountError("names starting with 'token:' belong to tokens' own accounts")
    return name


async def record(
    store: Store,
    who: Principal,
    action: str,
    target: str | None,
    *,
    reason: str | None = None,
    outcome: str = "ok",
    **params: Any,
) -> int:
    """One audit entry, with who, from where and how it ended."""
    return await store.audit_event(who, action, target, reason=reason, outcome=outcome, **params)


@dataclass(frozen=True, slots=True)
class Added:
    user: UserRow
    #: the password the hub generated, shown once (None when one was given)
    generated: str | None


class Accounts:
    """Hashing runs through ``gate`` (the web app shares its login gate, so an
    administrator's requests and logins together stay within its bound)."""

    def __init__(
        self, store: Store, clock: Callable[[], float] = time.time, gate: HashGate | None = None
    ) -> None:
        self.store = store
        self.clock = clock
        self.gate = gate or HashGate()

    async def get(self, name: str) -> UserRow:
        user = await self.store.users.get(normalize_name(name))
        if user is None:
            raise AccountError(f"no user named {name!r}")
        return user

    async def add(
        self,
        who: Principal,
        name: str,
        *,
        roles: Iterable[str],
        scope: Iterable[str],
        service: bool = False,
        password: str | None = None,
    ) -> Added:
        """A person gets ``password`` or a generated one; a service account none
        (it holds tokens only). The name is stored normalised (:func:`check_name`)."""
        name = check_name(name)
        role_list, scope_list = check_roles(roles), check_scope(scope)
        if not role_list:
            raise AccountError("an account needs at least one role")
        generated = None
        password_hash = None
        if not service:
            if password is None:
                password = generated = generate_password()
            try:
                password_hash = await self.gate.hash(password)
            except ValueError as err:
                raise AccountError(str(err)) from None
        kind = "service" if service else "person"
        await self.store.users.add(
            name,
            kind=kind,
            roles=role_list,
            scope=scope_list,
            password_hash=password_hash,
            now=self.clock(),
            audit=Entry(
                who, "user.add", name, {"kind": kind, "roles": role_list, "scope": scope_list}
            ),
        )
        return Added(await self.get(name), generated)

    async def set_password(self, who: Principal, name: str, password: str | None) -> str | None:
        """Set (or generate: returned) a person's password and end their sessions."""
        user = await self.get(name)
        name = user.name
        if user.kind != "person":
            raise AccountError(f"{name} is a service account: it holds tokens, not a password")
        generated = None
        if password is None:
            password = generated = generate_password()
        try:
            password_hash = await self.gate.hash(password)
        except ValueError as err:
            raise AccountError(str(err)) from None
        await self.store.users.set_password(
            name,
            password_hash,
            self.clock(),
            audit=Entry(who, "user.passwd", name, result_as="sessions_ended"),
        )
        return generated

    async def disable(self, who: Principal, name: str) -> None:
        name = (await self.get(name)).name
        entry = Entry(who, "user.disable", name)
        if not await self.store.users.disable(name, self.clock(), entry):
            raise AccountError(f"user {name!r} is already disabled")

    async def enable(self, who: Principal, name: str) -> None:
        name = (await self.get(name)).name
        if not await self.store.users.enable(name, self.clock(), Entry(who, "user.enable", name)):
            raise AccountError(f"user {name!r} is not disabled")

    async def change(
        self,
        who: Principal,
        name: str,
        *,
        grant: bool,
        roles: Iterable[str] = (),
        scope: Iterable[str] = (),
    ) -> UserRow:
        """Grant or revoke roles and scope selectors; the result is audited whole."""
        user = await self.get(name)
        name = user.name
        role_list, scope_list = check_roles(roles), check_scope(scope)
        if grant:
            new_roles = list(dict.fromkeys([*user.roles, *role_list]))
            new_scope = list(dict.fromkeys([*user.scope, *scope_list]))
        else:
            new_roles = [r for r in user.roles if r not in role_list]
            new_scope = [s for s in user.scope if s not in scope_list]
        entry = Entry(
            who,
            "user.grant" if grant else "user.revoke",
            name,
            {
                "roles": new_roles,
                "scope": new_scope,
                "changed_roles": role_list,
                "changed_scope": scope_list,
            },
        )
        await self.store.users.set_grants(name, new_roles, new_scope, self.clock(), entry)
        return await self.get(name)
