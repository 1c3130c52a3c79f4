"""The Hub: one supervision centre's lifecycle, and nothing else.

``setup()`` collects the plugins' specs, validates the configuration against
them, then builds the store and the managers, handing each its collaborators.
``start()`` pushes every step on an ``AsyncExitStack``; ``stop()`` unwinds what
was started, in reverse, also half-way through start-up. Signals are
``csuhub.runner``, the data directory ``csuhub.datadir``, reloading ``csuhub.reload``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from csuhub import __version__
from csuhub.blueprint.loader import BlueprintLoader
from csuhub.bus import EventBus
from csuhub.cameras.discovery import DiscoveryManager
from csuhub.cameras.manager import CameraManager
from csuhub.config import ConfigInvalid, SiteConfig, load_raw, validate_site
from csuhub.config.secrets import Secret
from csuhub.datadir import DataDirLock, resolve_data_dir
from csuhub.events import HubStarted, HubStarting, HubStopping, PluginFailed
from csuhub.incidents.lifespan import HubIncidents, IncidentDesk
from csuhub.lifespans import start_plugins
from csuhub.operations import start_operations, start_records
from csuhub.plugins import CsuhubPluginManager, PluginState, make_plugin_manager
from csuhub.recording.manager import RecordingManager
from csuhub.registry import Registry, disabled_plugins
from csuhub.reload import Reloader, read_secrets
from csuhub.requisitions import Requisitions
from csuhub.retention.manager import RetentionManager
from csuhub.selecting import HubSelectors
from csuhub.services import BuiltBySetup
from csuhub.store import DATABASE, Store
from csuhub.supervisor import ProcessGroup, Supervisor


class Hub(HubSelectors, HubIncidents):
    """One supervision centre's hub."""

    config = BuiltBySetup[SiteConfig]()
    data_dir = BuiltBySetup[Path]()
    store = BuiltBySetup[Store]()
    cameras = BuiltBySetup[CameraManager]()
    discovery = BuiltBySetup[DiscoveryManager]()
    recording = BuiltBySetup[RecordingManager]()
    retention = BuiltBySetup[RetentionManager]()
    requisitions = BuiltBySetup[Requisitions]()

    def __init__(
        self,
        raw_config: Any,
        *,
        source: str = "<config>",
        data_dir: Path | None = None,
        pm: CsuhubPluginManager | None = None,
        web: bool = True,
        files: frozenset[Path] = frozenset(),
        strict: bool = False,
        secrets: dict[str, Secret] | None = None,
    ) -> None:
        self.raw_config = raw_config if raw_config is not None else {}
        self.source = source
        self.files = files
        self.strict = strict
        #: ``secrets.yaml`` beside the site file, read once off the loop (``secret()``)
        self.secrets = secrets
        self._data_dir_override = data_dir
        self.pm = (
            pm if pm is not None else make_plugin_manager(disabled=disabled_plugins(raw_config))
        )
        self.bus = EventBus()
        self.registry = Registry()
        HubSelectors.__init__(self)
        self.supervisor = Supervisor(self.bus)
        self.processes = ProcessGroup()
        self.web_enabled = web
        self.blueprints = BlueprintLoader.for_site(None if source[:1] == "<" else Path(source))
        self.web: Any = None
        self.state = "created"
        self.started_at: float | None = None
        self.reloader = Reloader(self)
        self._stack = AsyncExitStack()

    @property
    def name(self) -> str:
        return str(self.config.hub["name"]) if self.configured else "csuhub"

    @property
    def configured(self) -> bool:
        """``setup()`` has run: the configuration is valid and the managers are built."""
        return "_built_config" in vars(self)

    # -- set-up (sync, no I/O beyond what plugins describe) --------------------

    def setup(self) -> SiteConfig:
        """Collect every plugin's specs, validate the configuration against them, then
        build the store and the managers. Raises ``ConfigInvalid``. Idempotent."""
        if self.configured:
            return self.config
        if self.secrets is None and not _loop_running():  # on the loop, start() reads them
            self.secrets = read_secrets(self.source)
        for plugin, reason in self.registry.collect(self.pm, self):
            self.plugin_failed(plugin, reason, stage="setup")
        config = self.validate(self.raw_config, self.source, self.files)
        self.data_dir = resolve_data_dir(
            self._data_dir_override, config.hub.get("data_dir"), config.source
        )
        self.store = Store(self.data_dir / DATABASE)
        self.cameras = CameraManager(self)
        self.discovery = DiscoveryManager(self)
        self.recording = RecordingManager(self, self.cameras)
        self.retention = RetentionManager(self, self.cameras, self.recording)
        self.requisitions = Requisitions(self, self.retention, self.recording)
        self.incidents = IncidentDesk(self, self.cameras)  # also hub.calls
        self.config = config  # last: a hub whose managers could not be built is not set up
        return config

    def validate(self, raw: Any, source: str, files: frozenset[Path] = frozenset()) -> SiteConfig:
        """Validate a configuration against this hub's plugins; raises ``ConfigInvalid``."""
        sections = [spec for spec, _ in self.registry.config_sections.values()]
        return validate_site(
            raw,
            source,
            sections,
            registry=self.registry,
            loader=self.blueprints,
            strict=self.strict,
            files=files,
        )

    @classmethod
    def from_file(cls, path: Path, **kwargs: Any) -> Hub:
        """A hub for a site file on disk (tags resolved); raises ``ConfigInvalid``/``OSError``."""
        loaded = load_raw(path)
        return cls(
            loaded.raw, source=str(path), files=loaded.files, secrets=loaded.secrets, **kwargs
        )

    def plugin_failed(self, plugin: str, reason: str, *, stage: str = "run") -> None:
        """Disable a plugin and say so everywhere; the hub carries on."""
        self.pm.fail(plugin, reason)
        self.registry.remove_plugin(plugin)
        with contextlib.suppress(RuntimeError):  # no running loop yet: nothing to notify
            asyncio.get_running_loop()
            self.bus.fire(PluginFailed(plugin=plugin, stage=stage, reason=reason))

    # -- lifecycle --------------------------------------------------------------
    async def start(self) -> None:
        """Start everything in order. On failure or cancellation, undo what started."""
        if self.state not in ("created", "stopped"):
            raise RuntimeError(f"cannot start a hub that is {self.state}")
        if self.secrets is None:
            self.secrets = await asyncio.to_thread(read_secrets, self.source)
        self.setup()
        self.state = "starting"
        self.bus.fire(HubStarting(hub_name=self.name))
        stack = self._stack = AsyncExitStack()
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            lock = DataDirLock(self.data_dir)
            lock.acquire()
            stack.callback(lock.release)
            await self.store.open()
            stack.push_async_callback(self.store.close)
            stack.push_async_callback(self.bus.drain)
            self.processes.reopen()  # a hub started again may spawn again
            stack.push_async_callback(self.processes.close)
            stack.push_async_callback(self.supervisor.stop)
            await self.store.audit("hub", "hub.start", self.name, version=__version__)
            await start_records(self, stack)  # audit anchors, logbook; after hub.stop
            stack.push_async_callback(self.store.audit, "hub", "hub.stop", self.name)
            await start_plugins(self, stack)
            await self.cameras.start()
            stack.push_async_callback(self.cameras.stop)
            await self.discovery.start()
            stack.push_async_callback(self.discovery.stop)
            # an interrupted sweep is finished before reconciliation looks at the files
            await self.retention.start()
            await self.recording.start()
            stack.push_async_callback(self.recording.stop)
            self.retention.start_sweeping()
            stack.push_async_callback(self.retention.stop)
            await start_operations(self, stack)  # incidents, call lines, walls, live
            if self.web_enabled:
                from csuhub.web.server import serve  # aiohttp only for a hub that serves

                self.web = await serve(self, stack)
        except BaseException:
            self.state = "stopping"
            await self._unwind()
            raise
        self.state = "running"
        self.started_at = time.time()
        self.bus.fire(HubStarted(hub_name=self.name, web_url=self.web.url if self.web else None))

    async def _unwind(self) -> None:
        stack, self._stack = self._stack, AsyncExitStack()
        try:
            await stack.aclose()
        finally:
            self.state = "stopped"

    async def stop(self, reason: str = "") -> None:
        if self.state in ("stopped", "created"):
            return
        self.state = "stopping"
        self.bus.fire(HubStopping(hub_name=self.name, reason=reason))
        await self._unwind()

    async def reload(self, trigger: str = "api") -> dict[str, Any]:
        """Re-read the site file and apply what changed, if valid (``csuhub.reload``)."""
        return await self.reloader.reload(trigger)

    def secret(self, name: str) -> Secret | None:
        """A value of the site's ``secrets.yaml``: a lookup on the loop, never file I/O
        (read with the site file, or by ``start()`` in a thread); its repr hides it."""
        return (self.secrets or {}).get(name)

    def health(self) -> dict[str, Any]:
        records, tasks = self.pm.records.values(), self.supervisor
        failed = sorted(r.name for r in records if r.state is PluginState.FAILED)
        cameras = dict(Counter(self.cameras.states.values() if self.configured else ()))
        status = self.state if self.state != "running" else "ok"
        if status == "ok" and (failed or cameras.get("offline")):
            status = "degraded"
        return {
            "status": status,
            "hub": {"name": self.name, "state": self.state},
            "plugins": {r.name: str(r.state) for r in records},
            "failed_plugins": failed,
            "cameras": cameras,
            "tasks": {"running": len(tasks.running()), "crashes": sum(tasks.crashes.values())},
        }


def _loop_running() -> bool:
    with contextlib.suppress(RuntimeError):
        return asyncio.get_running_loop() is not None
    return False


__all__ = ["ConfigInvalid", "Hub"]
