"""The sweeper: decides from the index, destroys in journaled batches, registers.

Each batch is three steps, each durable before the next:

1. **mark** the rows (``segments.sweep_id``, one transaction; only rows whose
   hold level allows it and that no hold can claim any more);
2. **unlink** the files, off the event loop;
3. **delete** the rows and add them to the destruction register (one transaction).

A ``kill -9`` anywhere leaves either marked rows (recovery unlinks what is
left and deletes them) or nothing to do. Files are only unlinked for rows that
are marked, so a held segment can never lose its file.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from csuhub.alarms import AlarmBoard
from csuhub.config import ConfigInvalid, ConfigIssue, SiteConfig
from csuhub.config.schema import JURISDICTION_LAW, JURISDICTION_RETENTION_CAP_DAYS
from csuhub.events import RetentionAlert, RetentionSwept
from csuhub.protocols import Expiry
from csuhub.retention.context import DAY, CameraRetention, SegmentRef, SweepContext
from csuhub.store.retention import PRESERVE, Marked, MarkRequest

if TYPE_CHECKING:
    from csuhub.hub import Hub

_LOGGER = logging.getLogger(__name__)

#: Alarms every sweep re-evaluates: raised once while the condition lasts (a reminder
#: hourly), cleared by the first sweep that no longer sees it (``csuhub.alarms``).
#: ``expiring`` is per hold and already told once (``mark_alerted``).
RECURRING_ALARMS = frozenset(
    {
        "storage_pressure",
        "below_minimum",
        "sweep_failed",
        "policy_failed",
        "hold_hook_failed",
        "kept_past_cap",
    }
)

#: Rows per batch: big enough to amortise each transaction's fsync, small enough
#: that a hold request waits well under a second for the store.
BATCH = 5000
#: An unlink is mostly waiting on the file system (about 70 us here), so two
#: threads nearly halve a large sweep's wall time; two, not more, because the
#: recorders share these cores. Small batches (the every-minute sweep) stay serial.
UNLINK_THREADS = 2
PARALLEL_FROM = 256
#: a camera whose files refuse this many unlinks in one sweep is left for the next
#: one (storage gone read-only must not make each sweep churn the whole backlog)
CAMERA_FAILURE_LIMIT = 20
MAX_REPORTED_FAILURES = 50
LEGAL_CAP = "legal_cap"
Progress = Callable[[str, float], None]


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
        }


def _count_kept(
    kept: dict[tuple[str, str, bool], dict[str, Any]], ref: SegmentRef, reason: str, failure: bool
) -> None:
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


def _safe_relative(path: str) -> bool:
    """Index paths are relative to the storage root and never climb out of it."""
    return bool(path) and not path.startswith("/") and ".." not in path.split("/")


def _unlink(base: str, rows: Sequence[Marked]) -> list[tuple[Marked, str | None]]:
    """Unlink each row's file; pairs each row with its failure message, or None."""
    out: list[tuple[Marked, str | None]] = []
    for row in rows:
        if not _safe_relative(row.path):
            out.append((row, f"path outside the storage root: {row.path!r}"))
            continue
        try:
            os.unlink(f"{base}/{row.path}")
        except FileNotFoundError:
            pass  # already gone (a previous, interrupted, sweep): the row goes too
        except OSError as err:
            out.append((row, f"{row.path}: {err.strerror}"))
            continue
        out.append((row, None))
    return out


def destroy_files(
    root: Path, rows: list[Marked], tz: ZoneInfo, now: float
) -> tuple[list[int], list[tuple[int, str]], list[dict[str, Any]]]:
    """Unlink the marked files (thread); returns (done ids, failures, register rows)."""
    done: list[int] = []
    failed: list[tuple[int, str]] = []
    folders: set[str] = set()
    groups: dict[tuple[str, str, str], list[float]] = {}
    days: dict[int, str] = {}
    base = str(root)
    if len(rows) >= PARALLEL_FROM:
        # rows come by camera and time: contiguous chunks work in different folders
        size = -(-len(rows) // UNLINK_THREADS)
        chunks = [rows[i : i + size] for i in range(0, len(rows), size)]
        with ThreadPoolExecutor(len(chunks), thread_name_prefix="csuhub-unlink") as pool:
            results = [pair for part in pool.map(partial(_unlink, base), chunks) for pair in part]
    else:
        results = _unlink(base, rows)
    for row, failure in results:
        if failure is not None:
            failed.append((row.id, failure))
            continue
        done.append(row.id)
        folders.add(row.path.rpartition("/")[0])
        hour = int(row.start // 3600)
        day = days.get(hour)
        if day is None:
            day = days[hour] = datetime.fromtimestamp(hour * 3600, tz).date().isoformat()
        entry = groups.get((row.camera_id, day, row.policy))
        if entry is None:
            groups[(row.camera_id, day, row.policy)] = [
                1,
                row.size,
                row.end - row.start,
                row.start,
                row.end,
            ]
        else:
            entry[0] += 1
            entry[1] += row.size
            entry[2] += row.end - row.start
            entry[3] = min(entry[3], row.start)
            entry[4] = max(entry[4], row.end)
    # empty hour, day, month, year folders go too (never the camera's own folder)
    for folder in sorted(folders, key=len, reverse=True):
        parts = folder.split("/")
        while len(parts) > 1:
            try:
                os.rmdir(f"{base}/{'/'.join(parts)}")
            except OSError:
                break
            parts.pop()
    register = [
        {
            "camera_id": camera_id,
            "day": day,
            "policy": policy,
            "segments": int(v[0]),
            "bytes": int(v[1]),
            "seconds": v[2],
            "start": v[3],
            "end": v[4],
            "at": now,
        }
        for (camera_id, day, policy), v in groups.items()
    ]
    return done, failed, register


class RetentionManager:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.config: dict[str, Any] = {}
        self.policies: list[tuple[str, Any]] = []
        self.last: SweepReport | None = None
        #: set in a sweep once a retention_hold plugin overran its budget
        self._hold_too_slow: str | None = None
        self.alarms = AlarmBoard(hub.bus, "retention")
        self.recovered: dict[str, int] = {}
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        #: Set after each sweep of the hub's loop (tests wait for the start-up one).
        self.swept = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------

    def configure(
        self,
        site: SiteConfig | None = None,
        built: tuple[dict[str, Any], list[tuple[str, Any]]] | None = None,
    ) -> None:
        """Build the configured policies (also used by the CLI, without the loop), or
        take those ``build`` made already (a reload builds before applying anything).

        Raises ``ConfigInvalid`` and keeps the policies it had when one cannot be built.
        """
        self.config, self.policies = built or self.build(site or self.hub.config)

    def build(self, site: SiteConfig) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
        """Every policy ``site`` names, built, or ``ConfigInvalid``: never some of them.

        A hub running with fewer policies than the site names keeps footage longer
        than authorised (or frees no space), so start-up refuses and a reload that
        would break one is refused, keeping the policies that run. A policy no
        plugin provides is an error at validation when the site names it.
        """
        config = dict(site.section("retention") or {})
        policies: list[tuple[str, Any]] = []
        issues: list[ConfigIssue] = []
        for index, entry in enumerate(config.get("policies", [])):
            name = entry["policy"]
            spec = self.hub.registry.retention_policies.get(name)
            if spec is None:
                _LOGGER.warning("retention policy %r is not installed: it does nothing", name)
                continue
            try:
                policy = spec.factory(self.hub, spec.config_schema(entry.get("options", {})))
            except Exception as err:
                # the issue says it, with file:line; the traceback is for the plugin's author
                _LOGGER.debug("retention policy %r cannot be built", name, exc_info=True)
                issues.append(
                    site.issue(
                        f"retention policy {name!r} cannot be built: {type(err).__name__}: {err}",
                        ("retention", "policies", index),
                        "the hub never runs with fewer retention policies than the site names",
                    )
                )
                continue
            policies.append((name, policy))
        if issues:
            raise ConfigInvalid(issues)
        return config, policies

    async def start(self) -> None:
        self.configure()
        await self.recover()

    def start_sweeping(self) -> None:
        self.hub.supervisor.spawn("retention-sweeper", self._loop)

    async def stop(self) -> None:
        await self.hub.supervisor.cancel("retention-sweeper")

    def wake(self) -> None:
        """Sweep now (a released hold, a reload), not at the next tick."""
        self._wake.set()

    async def _loop(self) -> None:
        interval = float(self.config.get("interval", 60.0))
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                _LOGGER.exception("retention sweep failed")
                self._alarm(None, "sweep_failed", f"the retention sweep failed: {err}")
            self.swept.set()
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), interval)
            except TimeoutError:
                pass

    # -- recovery ------------------------------------------------------------------------

    async def recover(self) -> dict[str, int]:
        """Finish any sweep a crash interrupted: its marked rows are destroyed."""
        report = {"sweeps": 0, "segments": 0}
        for sweep_id in await self.hub.store.retention.unfinished_sweeps():
            rows = await self.hub.store.retention.marked(sweep_id)
            destroyed = await self._destroy(sweep_id, rows, time.time())
            await self.hub.store.retention.end_sweep(sweep_id, "recovered")
            report["sweeps"] += 1
            report["segments"] += destroyed[0]
        if report["sweeps"]:
            _LOGGER.warning("retention: finished %(sweeps)d interrupted sweep(s)", report)
            await self.hub.store.audit("hub", "retention.recover", None, **report)
        self.recovered = report
        return report

    # -- one sweep --------------------------------------------------------------------------

    def cap(self) -> tuple[float, str]:
        jurisdiction = self.hub.config.hub.get("jurisdiction", "fr")
        return JURISDICTION_RETENTION_CAP_DAYS[jurisdiction] * DAY, JURISDICTION_LAW[jurisdiction]

    def camera_retention(self) -> dict[str, CameraRetention]:
        default = float(self.config.get("default", 14 * DAY))
        out: dict[str, CameraRetention] = {}
        for camera in self.hub.config.section("cameras", []) or []:
            minimum = (camera.get("authorization") or {}).get("min_retention")
            out[camera["id"]] = CameraRetention(
                camera["id"], float(camera.get("retention", default)), minimum
            )
        for camera_id in self.hub.cameras.entries:
            out.setdefault(camera_id, CameraRetention(camera_id, default))
        return out

    async def context(self, now: float | None = None, dry_run: bool = False) -> SweepContext:
        cap, law = self.cap()
        return SweepContext(
            hub=self.hub,
            now=time.time() if now is None else now,
            cap=cap,
            law=law,
            default_retention=float(self.config.get("default", 14 * DAY)),
            cameras=self.camera_retention(),
            storage_root=self.hub.recording.storage_root(),
            recorded=set(await self.hub.store.recorded_cameras()),
            dry_run=dry_run,
            alarm=self._alarm,
        )

    def _alarm(
        self, camera_id: str | None, kind: str, message: str, expires_at: float | None = None
    ) -> None:
        if self.last is not None:  # the sweep's report lists all it saw
            self.last.alerts.append({"camera_id": camera_id, "kind": kind, "message": message})
        if kind in RECURRING_ALARMS and not self.alarms.raise_alarm(kind, camera_id, message):
            _LOGGER.debug("retention alarm (%s) still active: %s", kind, message)
            return
        _LOGGER.warning("retention alert (%s): %s", kind, message)
        self.hub.bus.fire(
            RetentionAlert(camera_id=camera_id, kind=kind, message=message, expires_at=expires_at)
        )

    async def plan(self, ctx: SweepContext) -> list[tuple[Expiry, int]]:
        """Every policy's verdicts (at hold level 0), then the legal cap (level 1)."""
        plan: list[tuple[Expiry, int]] = []
        for name, policy in self.policies:
            try:
                verdicts = await policy.plan(ctx)
            except OSError as err:  # storage missing or unreadable: an alarm, not a bug
                _LOGGER.error("retention policy %s failed: %s", name, err)
                self._alarm(None, "policy_failed", f"retention policy {name} failed: {err}")
                continue
            except (Exception, asyncio.CancelledError) as err:
                task = asyncio.current_task()
                if isinstance(err, asyncio.CancelledError) and task and task.cancelling():
                    raise  # the sweep itself is being cancelled
                # a policy's own CancelledError would end the sweeper's loop for good
                _LOGGER.exception("retention policy %s failed", name)
                message = f"retention policy {name} failed: {type(err).__name__}: {err}"
                self._alarm(None, "policy_failed", message)
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
                plan.append(
                    (
                        Expiry(
                            verdict.camera_id,
                            before,
                            verdict.policy or name,
                            verdict.reason,
                            verdict.below_minimum,
                        ),
                        0,
                    )
                )
        for camera_id in sorted(set(ctx.cameras) | ctx.recorded):
            plan.append(
                (
                    Expiry(camera_id, ctx.now - ctx.cap, LEGAL_CAP, f"{ctx.law}: legal maximum"),
                    PRESERVE,
                )
            )
        return plan

    async def sweep(
        self,
        *,
        now: float | None = None,
        dry_run: bool = False,
        origin: str = "hub",
        progress: Progress | None = None,
    ) -> SweepReport:
        async with self._lock:
            if not dry_run:
                self.alarms.begin_round()
            report = await self._sweep(now, dry_run, origin, progress or (lambda s, f: None))
            if not dry_run:
                self.alarms.end_round(RECURRING_ALARMS, "the retention sweep no longer sees it")
            return report

    async def _sweep(
        self, now: float | None, dry_run: bool, origin: str, progress: Progress
    ) -> SweepReport:
        started = time.monotonic()
        ctx = await self.context(now, dry_run)
        report = SweepReport(None, dry_run, ctx.now)
        self.last = report
        plan = await self.plan(ctx)
        report.plan = [
            {"camera_id": e.camera_id, "before": e.before, "policy": e.policy, "max_hold": level}
            for e, level in plan
        ]
        await self.check_expiring(ctx)
        if dry_run:
            for expiry, level in plan:
                entry = await self.hub.store.retention.expired_summary(
                    expiry.camera_id, expiry.before, level
                )
                if entry is not None:
                    report.would_destroy[f"{expiry.camera_id}:{expiry.policy}"] = {
                        "camera_id": expiry.camera_id,
                        "policy": expiry.policy,
                        **entry,
                    }
            report.duration = time.monotonic() - started
            return report
        store = self.hub.store.retention
        sweep_id = await store.begin_sweep(origin)
        report.sweep_id = sweep_id
        # a hold plugin disabled by a failure still vetoes: hold_decision fails closed
        vetoing = bool(self.hub.pm.hook.retention_hold.get_hookimpls()) or bool(
            self.hub.pm.failed_with("retention_hold")
        )
        pending = [MarkRequest(e.camera_id, e.before, level, e.policy) for e, level in plan]
        refused: set[int] = set()  # rows whose file could not be unlinked: not retried now
        vetoed: set[int] = set()  # rows a retention_hold hook kept: asked once per sweep
        failing: dict[str, int] = {}
        kept: dict[tuple[str, str, bool], dict[str, Any]] = {}
        self._hold_too_slow = None
        try:
            while pending:
                progress("sweeping", 1 - len(pending) / max(len(plan), 1))
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
                count, size, failures, by_policy = await self._destroy(sweep_id, rows, ctx.now)
                report.segments += count
                report.bytes += size
                for policy, n in by_policy.items():
                    report.by_policy[policy] = report.by_policy.get(policy, 0) + n
                if failures:
                    report.failures += len(failures)
                    room = MAX_REPORTED_FAILURES - len(report.failed)
                    report.failed.extend(message for _, message in failures[: max(room, 0)])
                    refused.update(seg_id for seg_id, _ in failures)
                    camera_of = {row.id: row.camera_id for row in rows}
                    for seg_id, _ in failures:
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
        self._report_kept(report, ctx.now - ctx.cap)
        report.duration = time.monotonic() - started
        progress("done", 1.0)
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
            self._alarm(
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
        return report

    async def _approve(
        self,
        pending: list[MarkRequest],
        refused: set[int],
        vetoed: set[int],
        kept: dict[tuple[str, str, bool], dict[str, Any]],
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
        if self._hold_too_slow is not None:
            # a plugin over its budget blocks the loop that long per segment: keep the
            # rest of this sweep's candidates without asking (the next sweep asks again)
            return (
                f"retention_hold failed, kept (fail closed): {self._hold_too_slow}; "
                "not asked again in this sweep"
            ), True
        try:
            decision = self.hub.hold_decision(ref)
        except Exception as err:  # the selector machinery itself: still fail closed
            _LOGGER.exception("retention_hold could not be asked: keeping the segment")
            return f"retention_hold could not be asked, kept (fail closed): {err}", True
        if decision.slow:
            self._hold_too_slow = decision.error
        return decision.keep_reason("retention_hold"), decision.failed

    def _report_kept(self, report: SweepReport, cap_before: float) -> None:
        """Raise what an operator must see: a plugin failing (footage kept that may
        be due for destruction), and footage kept past the legal cap."""
        failed = [k for k in report.kept if k["failure"]]
        if failed:
            total = sum(k["segments"] for k in failed)
            self._alarm(
                None,
                "hold_hook_failed",
                f"{total} expired segment(s) kept because a retention_hold plugin failed: "
                f"{failed[0]['reason']}",
            )
        past_cap = [k for k in report.kept if k["footage_start"] < cap_before]
        if past_cap:
            total = sum(k["segments"] for k in past_cap)
            cameras = sorted({k["camera_id"] for k in past_cap})
            self._alarm(
                None,
                "kept_past_cap",
                f"{total} segment(s) older than the legal cap kept by a retention_hold "
                f"plugin ({', '.join(cameras[:5])}): only a requisition should do that",
            )

    async def _destroy(
        self, sweep_id: int, rows: list[Marked], now: float
    ) -> tuple[int, int, list[tuple[int, str]], dict[str, int]]:
        """Unlink a marked batch, then delete and register what went in one transaction;
        returns (segments, bytes, failures, segments per policy)."""
        tz = ZoneInfo(self.hub.config.hub.get("timezone", "Europe/Paris"))
        root = self.hub.recording.storage_root()
        done, failed, register = await asyncio.to_thread(destroy_files, root, rows, tz, now)
        if done:
            await self.hub.store.retention.destroyed(sweep_id, done, register)
        if failed:
            await self.hub.store.retention.unmark(sweep_id, [i for i, _ in failed])
        by_policy: dict[str, int] = {}
        for entry in register:
            by_policy[entry["policy"]] = by_policy.get(entry["policy"], 0) + entry["segments"]
        return len(done), sum(r["bytes"] for r in register), failed, by_policy

    # -- alerts before preserved footage expires -------------------------------------------

    async def check_expiring(self, ctx: SweepContext) -> None:
        window = float(self.config.get("alert_before", 86400.0))
        due: list[int] = []
        for hold in await self.hub.store.retention.holds():
            if hold.level != PRESERVE or hold.alerted_at is not None:
                continue
            expires = hold.start + ctx.cap
            if expires - ctx.now <= window:
                due.append(hold.id)
                self._alarm(
                    hold.camera_id,
                    "expiring",
                    f"{hold.kind} {hold.ref} footage of {hold.camera_id} reaches the legal "
                    f"maximum ({ctx.law}) and will be destroyed unless a requisition holds it",
                    expires_at=expires,
                )
        if due and not ctx.dry_run:
            await self.hub.store.retention.mark_alerted(due)

    # -- status ------------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        ctx = await self.context()
        overview = await self.hub.store.retention.overview()
        total, free = ctx.disk() if ctx.storage_root.exists() else (0, 0)
        cameras = []
        for camera_id in sorted(set(overview) | set(ctx.cameras)):
            rules = ctx.retention_of(camera_id)
            data = overview.get(camera_id, {})
            oldest = data.get("oldest")
            cameras.append(
                {
                    "camera_id": camera_id,
                    "retention": rules.retention,
                    "minimum": rules.minimum,
                    "oldest": oldest,
                    "age": None if oldest is None else ctx.now - oldest,
                    **data,
                }
            )
        holds = await self.hub.store.retention.holds()
        sweeps = await self.hub.store.retention.sweeps(5)
        return {
            "now": ctx.now,
            "legal_cap": ctx.cap,
            "law": ctx.law,
            "default_retention": ctx.default_retention,
            "interval": float(self.config.get("interval", 60.0)),
            "policies": [name for name, _ in self.policies],
            "disk": {
                "total": total,
                "free": free,
                "free_percent": (100.0 * free / total) if total else None,
            },
            "cameras": cameras,
            "holds": [h.as_dict() for h in holds],
            "last_sweeps": sweeps,
            "alerts": list(self.last.alerts) if self.last else [],
        }
