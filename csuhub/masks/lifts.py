"""Lifting a privacy mask: two people, a stated reason, a time limit, an audit.

The flow: a user with ``mask.lift.request`` asks, with a reason, for one
camera, optionally for one requisition, for a duration (15 min by default, 1
min to 2 h); a *different* person with ``mask.lift.approve`` approves or
refuses (the store refuses an approval by the requester too, so no caller can
forget). A person is a ``user`` principal: signed in, or through a token of
their own account (the token is their credential, the audit's ``via`` names
it); a service account (a machine's token, ``kind`` ``service``), the CLI and
the hub never decide, whatever their roles, so the second pair of eyes is a
person's;
the lift then runs from its approval for its duration, and ends by itself, or
earlier when the requester or an approver ends it. A request nobody decides
within an hour lapses.

What a lift unmasks: a lift naming a requisition unmasks that requisition's
exports of the camera, and nothing else; a lift naming none unmasks the
camera's snapshots and timeline frames (and, with issue 14, its live view),
never its playback or raw segment files (``csuhub.masks.policy``). It
unmasks them for everyone allowed that use of the camera, not only for its
requester.

Expiry, two ways: every use looks only at lifts whose end is still ahead (a
lift past its time unmasks nothing, whatever its row says), and expires the
overdue ones first; a sweep (:func:`expiry_sweeper`, run with the hub by
``csuhub.security.lifespan``) expires them within ``SWEEP_INTERVAL`` even when
nothing looks. Each expiry is audited once, by the hub (the conditional
update makes a second expiry of the same lift impossible). Every step's audit
entry is written in the step's own transaction; refused attempts (a
requester approving their own request, a decision on a lift no longer
pending) are audited as ``refused``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from csuhub.security.permissions import Principal, system_principal
from csuhub.store.audited import Entry
from csuhub.web.validation import MAX_ID, InputError, check_reason

if TYPE_CHECKING:
    from csuhub.store import Store

_LOGGER = logging.getLogger(__name__)

DEFAULT_DURATION = 15 * 60.0
MIN_DURATION = 60.0
MAX_DURATION = 2 * 3600.0
#: a request nobody approved or refused within this lapses
REQUEST_TTL = 3600.0
SWEEP_INTERVAL = 30.0
#: the only principal kind that may approve or refuse a lift: a person
DECIDER_KIND = "user"


class LiftError(Exception):
    """A lift step refused; ``kind`` says how (``invalid``, ``not_found``,
    ``forbidden``, ``conflict``) for the caller's status code."""

    def __init__(self, message: str, kind: str = "invalid", field: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.field = field


def parse_request(body: Any) -> tuple[str, int | None, float]:
    """(reason, requisition id, duration in seconds) from a request's JSON body
    ``{"reason": ..., "requisition_id": ..., "duration": seconds}``."""
    if not isinstance(body, dict):
        raise LiftError("the body is a JSON object", field="body")
    unknown = set(body) - {"reason", "requisition_id", "duration"}
    if unknown:
        raise LiftError(f"unknown field {sorted(unknown)[0]!r}", field=sorted(unknown)[0])
    raw = body.get("reason")
    if not isinstance(raw, str) or not raw.strip():
        raise LiftError("a lift needs a stated reason", field="reason")
    reason = _reason(raw)
    requisition = body.get("requisition_id")
    if requisition is not None and (
        isinstance(requisition, bool)
        or not isinstance(requisition, int)
        or not 0 < requisition <= MAX_ID
    ):
        raise LiftError("requisition_id is a requisition's id", field="requisition_id")
    duration = body.get("duration", DEFAULT_DURATION)
    if (
        isinstance(duration, bool)
        or not isinstance(duration, int | float)
        or not math.isfinite(duration)
        or not MIN_DURATION <= duration <= MAX_DURATION
    ):
        raise LiftError(
            f"duration is {MIN_DURATION:.0f} to {MAX_DURATION:.0f} seconds", field="duration"
        )
    return reason, requisition, float(duration)


async def request_lift(
    store: Store, who: Principal, camera_id: str, body: Any, *, now: float | None = None
) -> dict[str, Any]:
    """Record a request (the caller has checked the permission and the camera)."""
    reason, requisition_id, duration = parse_request(body)
    if requisition_id is not None:
        found = await store.requisitions.get(requisition_id)
        if found is None:
            raise LiftError(f"no requisition {requisition_id}", field="requisition_id")
        if camera_id not in found.get("cameras", []):
            raise LiftError(
                f"requisition {requisition_id} does not cover {camera_id}", field="requisition_id"
            )
    entry = Entry(
        who,
        "mask.lift.request",
        camera_id,
        {"requisition": requisition_id, "duration": duration},
        reason=reason,
    )
    moment = time.time() if now is None else now
    return await store.masks.create_lift(
        camera_id, reason, requisition_id, who.name, duration, moment, entry
    )


def _reason(raw: str) -> str:
    """A stated reason, as every footage route checks one
    (``csuhub.web.validation.check_reason``), refused as a lift error."""
    try:
        return check_reason(raw)
    except InputError as err:
        raise LiftError(str(err), field="reason") from None


def parse_decision(body: Any) -> str | None:
    """The optional reason of an approval or refusal, from ``{"reason": ...}``
    or an empty body (``None`` for none, or blanks only)."""
    if not isinstance(body, dict):
        raise LiftError('the body is {"reason": "..."} or nothing', field="body")
    reason = body.get("reason")
    if set(body) - {"reason"} or (reason is not None and not isinstance(reason, str)):
        raise LiftError('the body is {"reason": "..."} or nothing', field="reason")
    return _reason(reason) if reason is not None and reason.strip() else None


async def _refusal(
    store: Store,
    who: Principal,
    action: str,
    camera_id: str,
    lift_id: int,
    why: str,
    error: LiftError,
    *,
    reason: str | None = None,
) -> LiftError:
    """Audit a refused step (``why`` on record) and return ``error`` to raise."""
    await store.audit_event(
        who, action, camera_id, reason=reason, outcome="refused", lift=lift_id, why=why
    )
    return error


async def decide(
    store: Store,
    who: Principal,
    lift_id: int,
    approve: bool,
    *,
    reason: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Approve or refuse a pending request: by a person, never its requester
    (either attempt is refused and audited)."""
    action = "mask.lift.approve" if approve else "mask.lift.refuse"
    moment, current = await _current(store, lift_id, now)
    camera_id = current["camera_id"]
    if who.kind != DECIDER_KIND:
        raise await _refusal(
            store,
            who,
            action,
            camera_id,
            lift_id,
            f"a {who.kind} account cannot decide a lift: a person does",
            LiftError("a lift is decided by a person, not a service account", "forbidden"),
            reason=reason,
        )
    if current["requested_by"] == who.name:
        raise await _refusal(
            store,
            who,
            action,
            camera_id,
            lift_id,
            "the requester cannot decide their own request",
            LiftError("a lift is approved by someone other than its requester", "forbidden"),
            reason=reason,
        )
    params = {"requested_by": current["requested_by"], "requisition": current["requisition_id"]}
    entry = Entry(who, action, camera_id, params, reason=reason)
    decided = await store.masks.decide(lift_id, who.name, approve, moment, entry)
    if decided is None:
        again = await store.masks.lift(lift_id)
        status = again["status"] if again else "gone"
        raise await _refusal(
            store,
            who,
            action,
            camera_id,
            lift_id,
            f"the lift is {status}",
            LiftError(f"mask lift {lift_id} is {status}, not pending", "conflict"),
            reason=reason,
        )
    return decided


async def _current(store: Store, lift_id: int, now: float | None) -> tuple[float, dict[str, Any]]:
    """The moment of a decision and the lift as it stands then (overdue lifts
    expired first, so nothing is decided on one already over)."""
    moment = time.time() if now is None else now
    await expire(store, now=moment)
    current = await store.masks.lift(lift_id)
    if current is None:
        raise LiftError(f"no mask lift {lift_id}", "not_found")
    return moment, current


async def end_lift(
    store: Store, who: Principal, lift_id: int, *, now: float | None = None
) -> dict[str, Any]:
    """End a lift early (or withdraw a request): its requester, its approver, or
    anyone who may approve lifts."""
    moment, current = await _current(store, lift_id, now)
    camera_id = current["camera_id"]
    if who.name not in (current["requested_by"], current["decided_by"]) and not who.has(
        "mask.lift.approve"
    ):
        raise await _refusal(
            store,
            who,
            "mask.lift.end",
            camera_id,
            lift_id,
            "neither its requester, its approver, nor an approver",
            LiftError("only the requester or an approver ends a lift", "forbidden"),
        )
    entry = Entry(who, "mask.lift.end", camera_id, {"was": current["status"]})
    ended = await store.masks.end(lift_id, moment, entry)
    if ended is None:
        raise await _refusal(
            store,
            who,
            "mask.lift.end",
            camera_id,
            lift_id,
            f"the lift is {current['status']}",
            LiftError(f"mask lift {lift_id} is {current['status']}: nothing to end", "conflict"),
        )
    return ended


async def expire(store: Store, *, now: float | None = None) -> list[dict[str, Any]]:
    """Expire every lift past its end and every lapsed request, auditing each."""
    moment = time.time() if now is None else now
    return await store.masks.expire_due(moment, REQUEST_TTL, system_principal("hub"))


async def in_force(
    store: Store, camera_id: str, requisition_id: int | None = None, *, now: float | None = None
) -> dict[str, Any] | None:
    """The lift unmasking ``camera_id`` now (for that requisition's exports, or
    with None for its pictures), or None: the camera stays masked."""
    moment = time.time() if now is None else now
    await expire(store, now=moment)
    return await store.masks.in_force(camera_id, moment, requisition_id)


async def expiry_sweeper(store: Store, interval: float = SWEEP_INTERVAL) -> None:
    """Expire lifts every ``interval`` seconds until cancelled; a failed sweep is
    logged and retried (uses check the time themselves meanwhile)."""
    while True:
        try:
            await expire(store)
        except asyncio.CancelledError:
            raise
        except Exception:
            _LOGGER.exception("mask lift expiry sweep failed; retrying")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def expiring(store: Store, interval: float = SWEEP_INTERVAL) -> AsyncIterator[None]:
    """The expiry sweep for as long as the block runs (enter it once the store
    is open: ``Hub.start`` or the web application's lifetime)."""
    task = asyncio.create_task(expiry_sweeper(store, interval), name="mask-lift-expiry")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def public_view(lift: dict[str, Any]) -> dict[str, Any]:
    """A lift as the API shows it."""
    return {
        k: lift.get(k)
        for k in (
            "id",
            "camera_id",
            "reason",
            "requisition_id",
            "status",
            "requested_by",
            "requested_at",
            "duration_s",
            "decided_by",
            "decided_at",
            "expires_at",
            "ended_at",
        )
    }
