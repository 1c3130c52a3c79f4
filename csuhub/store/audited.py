"""A change and its audit entry in one transaction: both are written or
neither is (issue 12: "in the same transaction as the action")."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from csuhub.store.audit import append_event

if TYPE_CHECKING:
    from csuhub.security.permissions import Principal

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Entry:
    """The audit entry a change writes: who, what, on what, with which parameters."""

    who: Principal
    action: str
    target: str | None
    params: Mapping[str, Any] = field(default_factory=dict)
    outcome: str = "ok"
    reason: str | None = None
    #: the parameter the change's result is recorded under (the sessions a
    #: password change ended, say), known only inside the transaction
    result_as: str | None = None
    #: the entry this one concludes (an action audited as "started")
    ref: int | None = None


def append(conn: sqlite3.Connection, entry: Entry, result: Any = None) -> int:
    params = dict(entry.params)
    if entry.result_as is not None:
        params[entry.result_as] = result
    return append_event(
        conn,
        entry.who.name,
        entry.action,
        entry.target,
        role=entry.who.role,
        via=entry.who.via,
        source=entry.who.source,
        reason=entry.reason,
        outcome=entry.outcome,
        ref=entry.ref,
        params=params,
    )


def apply(conn: sqlite3.Connection, entry: Entry | None, func: Callable[..., T], *args: Any) -> T:
    """``func(conn, *args)`` then the entry, in the caller's transaction; a
    change that reports ``False`` (nothing changed) writes no entry."""
    result = func(conn, *args)
    if entry is not None and result is not False:
        append(conn, entry, result)
    return result
