"""The principal the current task acts for.

The web middleware sets it for the handler's task (and the tasks it starts,
which copy the context). Code below the web layer that audits by name, such as
a manager's ``store.audit(actor, ...)``, then gets the role, session or token and
source address in the entry too, without threading the principal through every
signature. The name must match: an entry is never attributed to the request's
principal when the code audited someone else (the hub's own work).
"""

from __future__ import annotations

from contextvars import ContextVar

from csuhub.security.permissions import PERMISSIONS, CameraScope, Principal

_CURRENT: ContextVar[Principal | None] = ContextVar("csuhub_principal", default=None)


def current_principal() -> Principal | None:
    return _CURRENT.get()


def principal_for(actor: str) -> Principal | None:
    """The current principal if it is ``actor``; None otherwise."""
    found = _CURRENT.get()
    return found if found is not None and found.name == actor else None


def set_principal(principal: Principal | None) -> object:
    """Set it for this task; returns the token ``reset_principal`` takes."""
    return _CURRENT.set(principal)


def reset_principal(token: object) -> None:
    _CURRENT.reset(token)  # type: ignore[arg-type]


def acting(actor: str | Principal) -> Principal:
    """The principal an action is audited under. The web layer passes the
    request's principal (or its name, found in the context); the CLI and the hub
    pass a name, for the machine's own administrator acting locally (``--user``
    names the person at the console)."""
    if isinstance(actor, Principal):
        return actor
    found = principal_for(actor)
    if found is not None:
        return found
    return Principal(
        name=actor,
        kind="hub" if actor == "hub" else "cli",
        roles=("admin",),
        permissions=frozenset(PERMISSIONS),
        scope=CameraScope.of(["*"]),
        via="hub" if actor == "hub" else "cli",
    )
