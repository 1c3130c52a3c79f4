"""Who a credential belongs to, as the store finds it: the account behind a
session or a token, before the middleware makes it a request's ``Principal``.

A token's roles are its own role, kept only while its account still holds
that role: taking a role from an account takes it from the account's tokens
at once, and a disabled account's tokens and sessions are not found at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from csuhub.security.permissions import CameraScope, Principal, permissions_of


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: int
    #: the account's name (a token made without --user belongs to ``token:<name>``)
    name: str
    kind: str  # "person" or "service"
    roles: tuple[str, ...]
    scope: tuple[str, ...]
    #: the token's name, when the credential is a token
    token: str | None = None

    def principal(
        self, *, via: str | None, source: str | None, wall_cameras: Iterable[str] = ()
    ) -> Principal:
        """The request's principal: a person is ``user``, a service account ``service``."""
        return Principal(
            name=self.name,
            kind="user" if self.kind == "person" else "service",
            roles=self.roles,
            permissions=permissions_of(self.roles),
            scope=CameraScope.of(self.scope, wall_cameras),
            via=via,
            source=source,
        )


def token_roles(token_role: str, account_roles: Iterable[str]) -> tuple[str, ...]:
    """A token acts with its role only while its account holds it."""
    return (token_role,) if token_role in set(account_roles) else ()
