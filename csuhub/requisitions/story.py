"""One requisition step's audited story: the workflow, not its caller, writes it.

Each step (create, export, deliver, close) ends in exactly one entry: ``ok``
(written in the transaction that makes the change), ``refused`` (every
refusal, input or state, with why) or ``failed`` (anything unexpected before
the step was recorded). An export also starts with a ``started`` entry, which
its ending names (``ref``). Callers (the API, the CLI) therefore write no entry
of their own for a step: two stories of one step would count it twice in the
ethics figures and leave a ``started`` entry no ending concludes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from csuhub.requisitions.model import RequisitionError
from csuhub.security.permissions import Principal
from csuhub.store.audited import Entry


@dataclass
class Story:
    store: Any  # the hub's store: ``audit_event``
    who: Principal
    action: str
    target: str | None
    reason: str | None = None
    #: the step's ``started`` entry, which its ending concludes
    ref: int | None = None
    #: set once an entry has ended the step
    ended: bool = False

    async def start(self, **params: Any) -> int:
        """The ``started`` entry of a step that takes time (an export)."""
        self.ref = await self.store.audit_event(
            self.who, self.action, self.target, reason=self.reason, outcome="started", **params
        )
        return self.ref

    def entry(self, params: Mapping[str, Any]) -> Entry:
        """The ``ok`` entry, for the transaction that makes the change; call
        :meth:`done` once that transaction has committed."""
        return Entry(self.who, self.action, self.target, params, reason=self.reason, ref=self.ref)

    def done(self) -> None:
        self.ended = True

    async def refuse(
        self, message: str, error: type[RequisitionError] = RequisitionError, **params: Any
    ) -> RequisitionError:
        """Audit the refusal; returns the error to raise."""
        await self.store.audit_event(
            self.who,
            self.action,
            self.target,
            reason=self.reason,
            outcome="refused",
            ref=self.ref,
            why=message[:300],
            **params,
        )
        self.ended = True
        return error(message)

    @asynccontextmanager
    async def told(self) -> AsyncIterator[Story]:
        """Around the step: what escapes it before its entry is written is ``failed``."""
        try:
            yield self
        except BaseException as err:
            if not self.ended:
                self.ended = True
                await self.store.audit_event(
                    self.who,
                    self.action,
                    self.target,
                    reason=self.reason,
                    outcome="failed",
                    ref=self.ref,
                    error=(str(err) or type(err).__name__)[:300],
                )
            raise
