"""One sweep over the index: the plan, the marking and destruction in batches, the report.

The plan is every policy's verdicts (at hold level 0), then the legal cap for
every camera with footage (level 1, so only a requisition outlives it). The
batches are destroyed by :mod:`csuhub.retention.destroy`; a ``retention_hold``
plugin, when one is installed, is asked about each row a batch reaches and
keeps what it vetoes (failing closed). The schedule and the lock are the
:class:`~csuhub.retention.manager.RetentionManager`'s.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from csuhub.events import RetentionSwept
from csuhub.protocols import Expiry
from csuhub.retention.context import SegmentRef, SweepContext
from csuhub.retention.destroy import destroy_batch
from csuhub.store.retention import PRESERVE, Marked, MarkRequest

if TYPE_CHECKING:
    from csuhub.services import HubServices

_LOGGER = logging.getLogger(__name__)

#: Rows per batch: big enough to amortise each transaction's fsync, small enough
#: that a hold request waits well under a second for the store.
BATCH = 5000
#: a camera whose files refuse this many unlinks in one sweep is left for the next
#: one (storage gone read-only must not make each sweep churn the whole backlog)
CAMERA_FAILURE_LIMIT = 20
MAX_REPORTED_FAILURES = 50
LEGAL_CAP = "legal_cap"
Progress = Callable[[str, float], None]
#: kept segments counted per (camera, reason, whether a plugin failed)
KeptLines = dict[tuple[str, str, bool], dict[str, Any]]


@dataclass(slots=True)
class SweepReport:
    sweep_id: int | None
    dry_run: bool
    started: float
    duration: float = 0.0
    segments: int = 0
    bytes: int = 0
    by_policy: dict[str, int] = field(default_factory=dict)
    plan: list[dict[str, Any]] = field(default_factory=list)
    would_destroy: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)  # the first MAX_REPORTED_FAILURES
    failures: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)
    #: expired footage kept by a ``retention_hold`` plugin (vetoed or failed), per
    #: camera and reason; also written to the register (``retention_kept``)
    kept: list[dict[str, Any]] = field(default_factory=list)
    #: in a dry run, the holds the policies would place or release (nothing was
    #: written): each with the footage it keeps from, or frees for, ``would_destroy``
    simulated: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sweep_id": self.sweep_id,
            "dry_run": self.dry_run,
            "started": self.started,
            "duration": round(self.duration, 3),
            "segments": self.segments,
            "bytes": self.bytes,
            "by_policy": self.by_policy,
            "plan": self.plan,
            "would_destroy": self.would_destroy,
            "failed": self.failed,
            "failures": self.failures,
            "alerts": self.alerts,
            "kept": self.kept,
            "simulated": self.simulated,
        }


def _count_kept(kept: KeptLines, ref: SegmentRef, reason: str, failure: bool) -> None:
    """Add one kept segment to its line of the report: per camera, reason and failure."""
    key = (ref.camera_id, reason[:300], failure)
    entry = kept.setdefault(
        key,
        {
            "camera_id": ref.camera_id,
            "reason": key[1],
            "failure": failure,
            "segments": 0,
            "footage_start": ref.start,
            "footage_end": ref.end,
        },
    )
    entry["segments"] += 1
    entry["footage_start"] = min(entry["footage_start"], ref.start)
    entry["footage_end"] = max(entry["footage_end"], ref.end)


async def plan(policies: list[tuple[str, Any]], ctx: SweepContext) -> list[tuple[Expiry, int]]:
    """Every policy's verdicts (at hold level 0), then the legal cap (level 1).

    A policy that fails is an alarm and contributes nothing: the cap still applies.
    """
    planned: list[tuple[Expiry, int]] = []
    for name, policy in policies:
        try:
            verdicts = await policy.plan(ctx)
        except OSError as err:  # storage missing or unreadable: an alarm, not a bug
            _LOGGER.error("retention policy %s failed: %s", name, err)
            ctx.alarm(None, "policy_failed", f"retention policy {name} failed: {err}")
            continue
        except (Exception, asyncio.CancelledError) as err:
            task = asyncio.current_task()
            if isinstance(err, asyncio.CancelledError) and task and task.cancelling():
                raise  # the sweep itself is being cancelled
            # a policy's own CancelledError would end the sweeper's loop for good
            _LOGGER.exception("retention policy %s failed", name)
            message = f"retention policy {name} failed: {type(err).__name__}: {err}"
            ctx.alarm(None, "policy_failed", message)
            continue
        for verdict in verdicts or []:
            if not isinstance(verdict, Expiry):
                _LOGGER.error("retention policy %s returned %r, not an Expiry", name, verdict)
                continue
            if math.isnan(verdict.before):  # min() with NaN depends on argument order
                _LOGGER.error("retention policy %s returned before=NaN; ignored", name)
                continue
            # no policy reaches into the future, whatever it computed, nor under the
            # camera's authorised minimum unless it must (storage critically full)
            before = min(verdict.before, ctx.now)
            minimum = ctx.retention_of(verdict.camera_id).minimum
            if minimum and not verdict.below_minimum:
                before = min(before, ctx.now - minimum)
            expiry = Expiry(
                verdict.camera_id,
                before,
                verdict.policy or name,
                verdict.reason,
                verdict.below_minimum,
            )
            planned.append((expiry, 0))
    for camera_id in sorted(set(ctx.cameras) | ctx.recorded):
        cap = Expiry(camera_id, ctx.now - ctx.cap, LEGAL_CAP, f"{ctx.law}: legal maximum")
        planned.append((cap, PRESERVE))
    return planned


async def check_expiring(hub: HubServices, ctx: SweepContext, window: float) -> None:
    """Tell once, ``window`` ahead, that preserved footage reaches the legal cap."""
    due: list[int] = []
    for hold in await hub.store.retention.holds():
        if hold.level != PRESERVE or hold.alerted_at is not None:
            continue
        expires = hold.start + ctx.cap
        if expires - ctx.now <= window:
            due.append(hold.id)
            ctx.alarm(
                hold.camera_id,
                "expiring",
                f"{hold.kind} {hold.ref} footage of {hold.camera_id} reaches the legal "
                f"maximum ({ctx.law}) and will be destroyed unless a requisition holds it",
                expires_at=expires,
            )
    if due and not ctx.dry_run:
        await hub.store.retention.mark_alerted(due)


class Sweep:
    """One sweep, from the plan to the register; ``run()`` once. ``started`` is the
    monotonic time the sweep began (its context included), for the report's duration."""

    def __init__(
        self, hub: HubServices, ctx: SweepContext, report: SweepReport, started: float
    ) -> None:
        self.hub = hub
        self.ctx = ctx
        self.report = report
        self.started = started
        #: set once a retention_hold plugin overran its budget in this sweep
        self.hold_too_slow: str | None = None

    async def run(
        self, planned: list[tuple[Expiry, int]], origin: str, progress: Progress
    ) -> SweepReport:
        self.report.plan = [
            {"camera_id": e.camera_id, "before": e.before, "policy": e.policy, "max_hold": level}
            for e, level in planned
        ]
        if self.ctx.dry_run:
            await self._would_destroy(planned)
            self.report.duration = time.monotonic() - self.started
        else:
            await self._destroy(planned, origin, progress)
        return self.report

    async def _would_destroy(self, planned: list[tuple[Expiry, int]]) -> None:
        simulation = self.ctx.simulation
        if simulation is None:  # a dry run always simulates: never report without it
            raise RuntimeError("a dry run without its simulated holds")
        for expiry, level in planned:
            if simulation.affects(expiry.camera_id, level):
                entry = await simulation.summary(self.hub, expiry.camera_id, expiry.before, level)
            else:
                entry = await self.hub.store.retention.expired_summary(
                    expiry.camera_id, expiry.before, level
                )
            if entry is not None:
                self.report.would_destroy[f"{expiry.camera_id}:{expiry.policy}"] = {
                    "camera_id": expiry.camera_id,
                    "policy": expiry.policy,
                    **entry,
                }
        self.report.simulated = simulation.report()

    async def _destroy(
        self, planned: list[tuple[Expiry, int]], origin: str, progress: Progress
    ) -> None:
        ctx, report, store = self.ctx, self.report, self.hub.store.retention
        tz = self.hub.config.settings.hub.zone
        sweep_id = await store.begin_sweep(origin)
        report.sweep_id = sweep_id
        # a hold plugin disabled by a failure still vetoes: hold_decision fails closed
        vetoing = bool(self.hub.pm.hook.retention_hold.get_hookimpls()) or bool(
            self.hub.pm.failed_with("retention_hold")
        )
        pending = [MarkRequest(e.camera_id, e.before, level, e.policy) for e, level in planned]
        refused: set[int] = set()  # rows whose file could not be unlinked: not retried now
        vetoed: set[int] = set()  # rows a retention_hold hook kept: asked once per sweep
        failing: dict[str, int] = {}
        kept: KeptLines = {}
        try:
            while pending:
                progress("sweeping", 1 - len(pending) / max(len(planned), 1))
                rows: list[Marked]
                if vetoing:
                    approved, exhausted = await self._approve(pending, refused, vetoed, kept)
                    rows = await store.mark_ids(sweep_id, approved) if approved else []
                else:
                    rows, exhausted = await store.mark(
                        sweep_id, pending, limit=BATCH, exclude=refused
                    )
                del pending[:exhausted]
                if not rows:
                    if not exhausted:  # no progress is possible: never loop on nothing
                        break
                    continue
                done = await destroy_batch(store, ctx.storage_root, tz, sweep_id, rows, ctx.now)
                report.segments += done.segments
                report.bytes += done.bytes
                for policy, n in done.by_policy.items():
                    report.by_policy[policy] = report.by_policy.get(policy, 0) + n
                if done.failures:
                    report.failures += len(done.failures)
                    room = MAX_REPORTED_FAILURES - len(report.failed)
                    report.failed.extend(message for _, message in done.failures[: max(room, 0)])
                    refused.update(seg_id for seg_id, _ in done.failures)
                    camera_of = {row.id: row.camera_id for row in rows}
                    for seg_id, _ in done.failures:
                        camera = camera_of[seg_id]
                        failing[camera] = failing.get(camera, 0) + 1
                    # storage that refuses everything (read-only, permissions) must not
                    # make every sweep mark and give back the whole backlog
                    given_up = {c for c, n in failing.items() if n >= CAMERA_FAILURE_LIMIT}
                    pending = [r for r in pending if r.camera_id not in given_up]
        finally:
            report.kept = list(kept.values())
            # the keeps are registered even when the sweep is cut short: what was not
            # destroyed, and why, is as much part of the record as what was
            await store.record_kept(sweep_id, report.kept)
            await store.end_sweep(sweep_id)
        self._report_kept()
        report.duration = time.monotonic() - self.started
        progress("done", 1.0)
        await self._announce(sweep_id, origin)

    async def _announce(self, sweep_id: int, origin: str) -> None:
        """The audit line, the alarm for files that refused, the event."""
        report = self.report
        if report.segments:
            _LOGGER.info(
                "retention: destroyed %d segment(s), %d bytes (%s)",
                report.segments,
                report.bytes,
                report.by_policy,
            )
            await self.hub.store.audit(
                origin,
                "retention.sweep",
                None,
                sweep_id=sweep_id,
                segments=report.segments,
                bytes=report.bytes,
                by_policy=report.by_policy,
            )
        if report.failed:
            self.ctx.alarm(
                None,
                "sweep_failed",
                f"{report.failures} file(s) could not be destroyed: {report.failed[0]}",
            )
        self.hub.bus.fire(
            RetentionSwept(
                sweep_id=sweep_id,
                segments=report.segments,
                bytes=report.bytes,
                by_policy=dict(report.by_policy),
                duration=report.duration,
            )
        )

    async def _approve(
        self, pending: list[MarkRequest], refused: set[int], vetoed: set[int], kept: KeptLines
    ) -> tuple[list[tuple[MarkRequest, list[int]]], int]:
        """Fill one batch with rows the ``retention_hold`` hook lets go, asking it only
        about the rows this batch reaches (each row once per sweep; ``vetoed`` grows).
        A plugin that fails keeps the row (fail closed); every keep is counted in
        ``kept`` per camera and reason. Returns the approved rows per request and how
        many leading requests have nothing left. Only called when a plugin implements
        the hook."""
        store = self.hub.store.retention
        approved: list[tuple[MarkRequest, list[int]]] = []
        taken: set[int] = set()
        remaining = BATCH
        exhausted = 0
        asked = 0
        for request in pending:
            while remaining > 0:
                limit = remaining
                candidates = await store.candidates(request, limit, refused | vetoed | taken)
                ids: list[int] = []
                for seg_id, start, end, path in candidates:
                    ref = SegmentRef(seg_id, request.camera_id, start, end, path, request.policy)
                    reason, failure = self._hold(ref)
                    if reason:
                        vetoed.add(seg_id)
                        _count_kept(kept, ref, reason, failure)
                    else:
                        ids.append(seg_id)
                    asked += 1
                    if asked % 256 == 0:
                        await asyncio.sleep(0)  # plugins run on the loop: let it breathe
                if ids:
                    approved.append((request, ids))
                    taken.update(ids)
                    remaining -= len(ids)
                if len(candidates) < limit:
                    exhausted += 1
                    break
            if remaining <= 0:
                break
        return approved, exhausted

    def _hold(self, ref: SegmentRef) -> tuple[str | None, bool]:
        """(reason to keep, whether it is a failure). Anything going wrong while asking
        means keep: a hold that cannot be read is a hold."""
        if self.hold_too_slow is not None:
            # a plugin over its budget blocks the loop that long per segment: keep the
            # rest of this sweep's candidates without asking (the next sweep asks again)
            return (
                f"retention_hold failed, kept (fail closed): {self.hold_too_slow}; "
                "not asked again in this sweep"
            ), True
        try:
            decision = self.hub.hold_decision(ref)
        except Exception as err:  # the selector machinery itself: still fail closed
            _LOGGER.exception("retention_hold could not be asked: keeping the segment")
            return f"retention_hold could not be asked, kept (fail closed): {err}", True
        if decision.slow:
            self.hold_too_slow = decision.error
        return decision.keep_reason("retention_hold"), decision.failed

    def _report_kept(self) -> None:
        """Raise what an operator must see: a plugin failing (footage kept that may
        be due for destruction), and footage kept past the legal cap."""
        report, cap_before = self.report, self.ctx.now - self.ctx.cap
        failed = [k for k in report.kept if k["failure"]]
        if failed:
            total = sum(k["segments"] for k in failed)
            self.ctx.alarm(
                None,
                "hold_hook_failed",
                f"{total} expired segment(s) kept because a retention_hold plugin failed: "
                f"{failed[0]['reason']}",
            )
        past_cap = [k for k in report.kept if k["footage_start"] < cap_before]
        if past_cap:
            total = sum(k["segments"] for k in past_cap)
            cameras = sorted({k["camera_id"] for k in past_cap})
            self.ctx.alarm(
                None,
                "kept_past_cap",
                f"{total} segment(s) older than the legal cap kept by a retention_hold "
                f"plugin ({', '.join(cameras[:5])}): only a requisition should do that",
            )
