"""The retention manager: builds the configured policies, runs a sweep every
``retention.interval`` (and when woken), finishes a sweep a crash interrupted,
and raises the alarms sweeps see.

What one sweep does is :mod:`csuhub.retention.sweep`; how a batch is destroyed
without losing a held file or a register line is :mod:`csuhub.retention.destroy`;
the status report is :mod:`csuhub.retention.status`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from csuhub.alarms import AlarmBoard
from csuhub.config import ConfigInvalid, ConfigIssue, SiteConfig
from csuhub.config.settings import RetentionSettings
from csuhub.events import RetentionAlert
from csuhub.retention.context import CameraRetention, SweepContext
from csuhub.retention.destroy import destroy_batch
from csuhub.retention.status import retention_status
from csuhub.retention.sweep import Progress, Sweep, SweepReport, check_expiring, plan

if TYPE_CHECKING:
    from csuhub.cameras.manager import CameraManager
    from csuhub.recording.manager import RecordingManager
    from csuhub.services import HubServices

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


class RetentionManager:
    def __init__(
        self, hub: HubServices, cameras: CameraManager, recording: RecordingManager
    ) -> None:
        self.hub = hub
        #: the cameras the hub knows (configured or adopted) have a retention too
        self.cameras = cameras
        #: where the footage is (``storage_root()``)
        self.recording = recording
        self.config: dict[str, Any] = {}
        self.policies: list[tuple[str, Any]] = []
        self.last: SweepReport | None = None
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

    @property
    def settings(self) -> RetentionSettings:
        """The running retention section, typed (the hub's until ``configure()``)."""
        return (
            RetentionSettings.of(self.config) if self.config else self.hub.config.settings.retention
        )

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
        for index, entry in enumerate(site.settings.retention.policies):
            name = entry.policy
            spec = self.hub.registry.retention_policies.get(name)
            if spec is None:
                _LOGGER.warning("retention policy %r is not installed: it does nothing", name)
                continue
            try:
                policy = spec.factory(self.hub, spec.config_schema(entry.options))
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
        interval = self.settings.interval
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
        store = self.hub.store.retention
        root = self.recording.storage_root()
        tz = self.hub.config.settings.hub.zone
        for sweep_id in await store.unfinished_sweeps():
            rows = await store.marked(sweep_id)
            destroyed = await destroy_batch(store, root, tz, sweep_id, rows, time.time())
            await store.end_sweep(sweep_id, "recovered")
            report["sweeps"] += 1
            report["segments"] += destroyed.segments
        if report["sweeps"]:
            _LOGGER.warning("retention: finished %(sweeps)d interrupted sweep(s)", report)
            await self.hub.store.audit("hub", "retention.recover", None, **report)
        self.recovered = report
        return report

    # -- what a sweep sees ------------------------------------------------------------------

    def cap(self) -> tuple[float, str]:
        hub = self.hub.config.settings.hub
        return hub.retention_cap, hub.law

    def camera_retention(self) -> dict[str, CameraRetention]:
        default = self.settings.default
        out: dict[str, CameraRetention] = {}
        for camera in self.hub.config.section("cameras", []) or []:
            minimum = (camera.get("authorization") or {}).get("min_retention")
            out[camera["id"]] = CameraRetention(
                camera["id"], float(camera.get("retention", default)), minimum
            )
        for camera_id in self.cameras.entries:
            out.setdefault(camera_id, CameraRetention(camera_id, default))
        return out

    async def context(self, now: float | None = None, dry_run: bool = False) -> SweepContext:
        cap, law = self.cap()
        return SweepContext(
            hub=self.hub,
            now=time.time() if now is None else now,
            cap=cap,
            law=law,
            default_retention=self.settings.default,
            cameras=self.camera_retention(),
            storage_root=self.recording.storage_root(),
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

    # -- one sweep --------------------------------------------------------------------------

    async def sweep(
        self,
        *,
        now: float | None = None,
        dry_run: bool = False,
        origin: str = "hub",
        progress: Progress | None = None,
    ) -> SweepReport:
        """One sweep at ``now`` (the wall clock by default), never two at once;
        ``dry_run`` reports what would go and changes nothing."""
        async with self._lock:
            if not dry_run:
                self.alarms.begin_round()
            started = time.monotonic()
            ctx = await self.context(now, dry_run)
            report = self.last = SweepReport(None, dry_run, ctx.now)
            planned = await plan(self.policies, ctx)
            await check_expiring(self.hub, ctx, self.settings.alert_before)
            report = await Sweep(self.hub, ctx, report, started).run(
                planned, origin, progress or (lambda stage, fraction: None)
            )
            if not dry_run:
                self.alarms.end_round(RECURRING_ALARMS, "the retention sweep no longer sees it")
            return report

    async def status(self) -> dict[str, Any]:
        return await retention_status(
            await self.context(),
            self.settings.interval,
            [name for name, _ in self.policies],
            self.last,
        )
