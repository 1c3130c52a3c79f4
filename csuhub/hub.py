"""The Hub: owns the bus, the store, the registries and the order of things.

Start-up is a sequence of steps pushed on an ``AsyncExitStack``; stopping
unwinds exactly what was started, in reverse, including when stopping is asked
for half-way through start-up (SIGTERM while ffmpeg is being launched leaves
no orphan). Plugins are consulted through pluggy at set-up time only; at run
time everything is an event on the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

from csuhub import __version__
from csuhub.blueprint.loader import BlueprintLoader
from csuhub.bus import EventBus
from csuhub.cameras.discovery import DiscoveryManager
from csuhub.cameras.registry import CameraRegistry
from csuhub.config import ConfigInvalid, SiteConfig, load_raw, load_secrets, validate_site
from csuhub.config.diff import diff_config
from csuhub.config.yaml_loader import Secret, YamlError
from csuhub.events import (
    ConfigReloaded,
    ConfigReloadFailed,
    HubStarted,
    HubStarting,
    HubStopping,
    PluginFailed,
)
from csuhub.plugins import CsuhubPluginManager, PluginCallError, PluginState, make_plugin_manager
from csuhub.protocols import DiscoveredCamera
from csuhub.recording.manager import RecordingManager
from csuhub.registry import DuplicateSpecError, Registry
from csuhub.retention.context import SegmentRef
from csuhub.retention.requisitions import Requisitions
from csuhub.retention.sweeper import RetentionManager
from csuhub.selectors import Selection, select
from csuhub.specs import ConfigSectionSpec
from csuhub.store import DATABASE, Store
from csuhub.supervisor import ProcessGroup, Supervisor

_LOGGER = logging.getLogger(__name__)

T = TypeVar("T")


class HubKey(Generic[T]):
    """A typed key for ``hub.data``: plugins share objects without untyped dicts."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"HubKey({self.name!r})"


class HubData:
    def __init__(self) -> None:
        self._data: dict[HubKey[Any], Any] = {}

    def __getitem__(self, key: HubKey[T]) -> T:
        return cast(T, self._data[key])

    def __setitem__(self, key: HubKey[T], value: T) -> None:
        self._data[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def get(self, key: HubKey[T], default: T | None = None) -> T | None:
        return cast(T | None, self._data.get(key, default))


def default_data_dir(name: str = "") -> Path:
    """``$XDG_DATA_HOME/csuhub`` (``~/.local/share/csuhub``), per the XDG spec."""
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "csuhub" / name if name else base / "csuhub"


class Hub:
    """One supervision centre's hub."""

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
        self._secrets = secrets
        self._data_dir_override = data_dir
        self.pm = (
            pm if pm is not None else make_plugin_manager(disabled=_peek_disabled(self.raw_config))
        )
        self.bus = EventBus()
        self.registry = Registry()
        #: (selector, plugin) pairs already logged at error level (one traceback each)
        self._selector_failures: set[tuple[str, str]] = set()
        self.data = HubData()
        self.supervisor = Supervisor(self.bus)
        self.processes = ProcessGroup()
        self.cameras = CameraRegistry(self)
        self.discovery = DiscoveryManager(self)
        self.recording = RecordingManager(self)
        self.retention = RetentionManager(self)
        self.requisitions = Requisitions(self)
        self.web_enabled = web
        self.blueprints = BlueprintLoader.for_site(
            Path(source) if not source.startswith("<") else None
        )
        self.web: Any = None
        self.store: Store = cast(Store, None)  # set by setup(), once data_dir is known
        self.state = "created"
        self.started_at: float | None = None
        self._config: SiteConfig | None = None
        self._data_dir: Path | None = None
        self._stack = AsyncExitStack()
        self._stop_requested: asyncio.Event | None = None
        self._reload_lock = asyncio.Lock()
        self._reload_generation = 0
        self._lock_handle: Any = None
        self._reload_tasks: set[asyncio.Task[Any]] = set()

    # -- set-up (sync, no I/O beyond what plugins describe) --------------------

    @property
    def config(self) -> SiteConfig:
        if self._config is None:
            raise RuntimeError("hub.setup() has not run: the configuration is not validated yet")
        return self._config

    @property
    def data_dir(self) -> Path:
        if self._data_dir is None:
            raise RuntimeError("hub.setup() has not run")
        return self._data_dir

    @property
    def name(self) -> str:
        return str(self._config.hub["name"]) if self._config else "csuhub"

    def setup(self) -> SiteConfig:
        """Collect every plugin's specs, then validate the configuration against them.

        Raises ``ConfigInvalid`` with every problem found. Idempotent.
        """
        if self._config is not None:
            return self._config
        if self._secrets is None and not _loop_running():
            self._secrets = self._read_secrets()  # on the loop, start() reads them in a thread
        self._collect_specs()
        self._config = self.validate(self.raw_config, self.source, self.files)
        self._data_dir = self._resolve_data_dir()
        self.store = Store(self._data_dir / DATABASE)
        return self._config

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

    def _resolve_data_dir(self) -> Path:
        if self._data_dir_override is not None:
            return self._data_dir_override.expanduser().resolve()
        configured = self.config.hub.get("data_dir")
        if configured:
            path = Path(configured).expanduser()
            if not path.is_absolute() and self.config.source is not None:
                path = self.config.source.parent / path
            return path.resolve()
        return default_data_dir()

    def _collect_specs(self) -> None:
        """Call each factory hook per plugin; a plugin that raises is disabled whole."""
        staged: dict[str, list[tuple[str, Any]]] = {}
        failed: dict[str, str] = {}
        hooks = [*Registry.FACTORY_HOOKS, "register_config_schemas", "register_web_routes"]
        for hook in hooks:
            results = self.pm.call_each(hook, hub=self)
            while True:
                try:
                    plugin, result = next(results)
                except StopIteration:
                    break
                except PluginCallError as err:
                    failed.setdefault(err.plugin, str(err))
                    continue
                if result is None:
                    continue
                staged.setdefault(plugin, []).append((hook, result))
        for plugin, reason in failed.items():
            self.plugin_failed(plugin, reason, stage="setup")
            staged.pop(plugin, None)
        for plugin, items in staged.items():
            try:
                self._register_results(plugin, items)
            except (DuplicateSpecError, TypeError, ValueError) as err:
                self.plugin_failed(plugin, str(err), stage="setup")

    def _register_results(self, plugin: str, items: list[tuple[str, Any]]) -> None:
        added: list[tuple[str, str]] = []
        try:
            for hook, result in items:
                if hook == "register_web_routes":
                    self.registry.web_routes[plugin] = list(result)
                    continue
                if hook == "register_config_schemas":
                    for spec in result:
                        self._add_section(spec, plugin)
                        added.append(("section", spec.section))
                    continue
                target = getattr(self.registry, Registry.FACTORY_HOOKS[hook])
                for spec in result:
                    target.add(spec, plugin)
        except Exception:
            self.registry.remove_plugin(plugin)
            raise

    def _add_section(self, spec: ConfigSectionSpec, plugin: str) -> None:
        from csuhub.config.schema import CORE_SECTIONS

        if not isinstance(spec, ConfigSectionSpec):
            raise TypeError(f"register_config_schemas must return ConfigSectionSpec, got {spec!r}")
        if spec.section in CORE_SECTIONS:
            raise ValueError(f"config section {spec.section!r} is owned by core")
        if spec.section in self.registry.config_sections:
            owner = self.registry.config_sections[spec.section][1]
            raise DuplicateSpecError(
                f"config section {spec.section!r} from plugin {plugin!r} is already "
                f"claimed by plugin {owner!r}"
            )
        self.registry.config_sections[spec.section] = (spec, plugin)

    def plugin_failed(self, plugin: str, reason: str, *, stage: str = "run") -> None:
        """Disable a plugin and say so everywhere; the hub carries on."""
        self.pm.fail(plugin, reason)
        self.registry.remove_plugin(plugin)
        with contextlib.suppress(RuntimeError):  # no running loop yet: nothing to notify
            asyncio.get_running_loop()
            self.bus.fire(PluginFailed(plugin=plugin, stage=stage, reason=reason))

    # -- selectors (firstresult hooks, called at run time) ----------------------

    def _select(self, hook: str, **kwargs: Any) -> Selection:
        """Ask a selector; its spec says whether a failing plugin is passed over or
        decides (``csuhub.selectors``)."""
        return select(self.pm, hook, kwargs, self._selector_failures)

    def driver_for(self, camera: DiscoveredCamera) -> str | None:
        return cast(
            str | None, self._select("driver_for_discovery", hub=self, camera=camera).answer
        )

    def hold_decision(self, segment: SegmentRef) -> Selection:
        """Ask ``retention_hold`` about one segment. ``failed`` means a plugin could not
        answer and the segment is kept (fail closed), ``error`` saying why."""
        if not isinstance(segment, SegmentRef):
            raise TypeError(f"retention_hold takes a SegmentRef, not {type(segment).__name__}")
        lost = self.pm.failed_with("retention_hold")
        if lost:  # a hold plugin disabled by a failure: its holds are unknown, not absent
            name, reason = lost[0].name, lost[0].reason
            error = f"plugin {name} implements retention_hold but was disabled: {reason}"
            return Selection(None, name, failed=True, error=error[:300])
        return self._select("retention_hold", hub=self, segment=segment)

    def hold_reason(self, segment: SegmentRef) -> str | None:
        """The reason to keep ``segment``, or None to let it go; a failing plugin's
        reason says it failed (the segment is kept all the same)."""
        return self.hold_decision(segment).keep_reason("retention_hold")

    def layout_for(self, incident: Any, wall: Any) -> str | None:
        return cast(
            str | None,
            self._select("layout_for_incident", hub=self, incident=incident, wall=wall).answer,
        )

    # -- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        """Start everything in order. On failure or cancellation, undo what started."""
        if self.state not in ("created", "stopped"):
            raise RuntimeError(f"cannot start a hub that is {self.state}")
        if self._secrets is None:
            self._secrets = await asyncio.to_thread(self._read_secrets)
        self.setup()
        self.state = "starting"
        self.bus.fire(HubStarting(hub_name=self.name))
        stack = self._stack = AsyncExitStack()
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._acquire_lock()
            stack.callback(self._release_lock)
            await self.store.open()
            stack.push_async_callback(self.store.close)
            stack.push_async_callback(self.bus.drain)
            self.processes.reopen()  # a hub started again may spawn again
            stack.push_async_callback(self.processes.close)
            stack.push_async_callback(self.supervisor.stop)
            await self.store.audit("hub", "hub.start", self.name, version=__version__)
            stack.push_async_callback(self._audit_stop)

            self.pm.hook.hub_configure.call_historic(kwargs={"hub": self})
            for plugin, reason in self.pm.apply_pending_failures():
                self.registry.remove_plugin(plugin)
                self.bus.fire(PluginFailed(plugin=plugin, stage="hub_configure", reason=reason))

            await self._enter_lifespans(stack)

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

            if self.web_enabled:
                from csuhub.web.server import WebServer

                web_cfg = self.config.hub["web"]
                self.web = WebServer(self, web_cfg["host"], web_cfg["port"])
                await self.web.start()
                stack.push_async_callback(self.web.stop)
        except BaseException:
            self.state = "stopping"
            await self._unwind()
            raise
        self.state = "running"
        self.started_at = time.time()
        self.bus.fire(HubStarted(hub_name=self.name, web_url=self.web.url if self.web else None))

    async def _enter_lifespans(self, stack: AsyncExitStack) -> None:
        for plugin, result in self._lifespans():
            if result is None:
                continue
            try:
                if not isinstance(result, AbstractAsyncContextManager) and not (
                    hasattr(result, "__aenter__") and hasattr(result, "__aexit__")
                ):
                    raise TypeError(f"hub_lifespan returned {type(result).__name__}")
                await stack.enter_async_context(_guarded_lifespan(plugin, result))
            except Exception as err:
                self.plugin_failed(
                    plugin, f"hub_lifespan raised {type(err).__name__}: {err}", stage="start"
                )

    def _lifespans(self) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        results = self.pm.call_each("hub_lifespan", hub=self)
        while True:
            try:
                out.append(next(results))
            except StopIteration:
                return out
            except PluginCallError as err:
                self.plugin_failed(err.plugin, str(err), stage="start")

    async def _audit_stop(self) -> None:
        await self.store.audit("hub", "hub.stop", self.name)

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

    def secret(self, name: str) -> Secret | None:
        """A value of the site's ``secrets.yaml`` (for adopted cameras' credentials).

        A lookup, never file I/O: it is called on the event loop (a camera
        starting), so the file is read with the site file (``from_file``, a
        reload's thread) or by ``start()`` in a thread. A changed file takes
        effect at the next reload, like the site file. The value's ``repr``
        hides it, so it cannot leak through a logged dict of options.
        """
        return (self._secrets or {}).get(name)

    def _read_secrets(self) -> dict[str, Secret]:
        """Blocking: read ``secrets.yaml`` beside the site file, if there is one."""
        if self.source.startswith("<"):
            return {}
        try:
            return load_secrets(Path(self.source))
        except (OSError, YamlError) as err:
            # the message names the file and position, never a value
            _LOGGER.warning("secrets.yaml beside %s not read: %s", self.source, err)
            return {}

    # -- reload -----------------------------------------------------------------

    async def reload(self, trigger: str = "api") -> dict[str, Any]:
        """Re-read the site file; apply it only if valid, and then only what changed.

        An invalid file leaves the running configuration untouched. Returns a
        report (also written to ``<data_dir>/reload.json`` for ``csuhub reload``).
        """
        async with self._reload_lock:
            report = await self._reload(trigger)
            self._reload_generation += 1
            report["generation"] = self._reload_generation
            report["trigger"] = trigger
            report["time"] = time.time()
            await asyncio.to_thread(_write_json_atomic, self.data_dir / "reload.json", report)
            return report

    async def _reload(self, trigger: str) -> dict[str, Any]:
        source = self.config.source
        if source is None:
            errors = ["this hub runs an embedded configuration; there is no file to reload"]
            self.bus.fire(ConfigReloadFailed(trigger=trigger, errors=errors))
            return {"ok": False, "errors": errors}
        try:
            loaded = await asyncio.to_thread(load_raw, source)
            # blueprints are files too: validate off the loop
            new = await asyncio.to_thread(self.validate, loaded.raw, str(source), loaded.files)
            # a retention policy that cannot be built refuses the reload: the running ones stay
            retention = self.retention.build(new)
        except ConfigInvalid as err:
            errors = [str(i) for i in err.issues if i.severity == "error"]
            await self.store.audit(trigger, "config.reload_refused", str(source), errors=errors)
            self.bus.fire(ConfigReloadFailed(trigger=trigger, errors=errors))
            return {"ok": False, "errors": errors, "issues": [i.as_dict() for i in err.issues]}
        except OSError as err:
            errors = [f"{source}: cannot read: {err.strerror or err}"]
            self.bus.fire(ConfigReloadFailed(trigger=trigger, errors=errors))
            return {"ok": False, "errors": errors}
        self._secrets = loaded.secrets  # before adopted cameras (re)start with them
        await self.cameras.sync_adopted()
        old = self.config
        diff = diff_config(old.data, new.data)
        if diff.restart_required:
            # keep what cannot change live; report it
            data = dict(new.data)
            for section in diff.restart_required:
                data[section] = old.data[section]
            new = dataclasses.replace(new, data=data)
        self._config = new
        if diff.cameras:
            await self.cameras.apply(diff.cameras, new.section("cameras", []))
        if diff.discovery:
            await self.discovery.apply(diff.discovery, new.section("discovery", []))
        if "retention" in diff.sections or diff.cameras:
            # a shorter period or a removed camera takes effect at once
            self.retention.configure(built=retention)
            self.retention.wake()
        await self.store.audit(trigger, "config.reload", str(source), diff=diff.as_dict())
        self.bus.fire(
            ConfigReloaded(
                trigger=trigger,
                sections=diff.sections,
                cameras=diff.cameras.as_dict(),
                restart_required=diff.restart_required,
            )
        )
        return {"ok": True, "diff": diff.as_dict(), "warnings": [str(w) for w in new.warnings]}

    def _acquire_lock(self) -> None:
        """One hub per data directory: two would corrupt each other's recordings."""
        path = self.data_dir / "csuhub.pid"
        handle = open(path, "a+")  # held open (and locked) for the hub's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            other = handle.read().strip() or "?"
            handle.close()
            raise OSError(
                f"another hub (pid {other}) is running on the data directory {self.data_dir}"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock_handle = handle

    def _release_lock(self) -> None:
        handle, self._lock_handle = self._lock_handle, None
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.truncate(0)
            handle.close()

    def request_stop(self, reason: str = "requested") -> None:
        """Ask a hub started with ``run`` to stop (signal handlers, the API, tests)."""
        self._stop_reason = reason
        if self._stop_requested is not None:
            self._stop_requested.set()

    async def run(
        self,
        *,
        handle_signals: bool = True,
        on_started: Callable[[Hub], Any] | None = None,
    ) -> str:
        """Start, wait for SIGTERM/SIGINT or ``request_stop``, stop. Returns the reason.

        A stop request that arrives during start-up cancels start-up, which
        unwinds whatever had started.
        """
        loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        self._stop_reason = ""
        installed: list[int] = []
        if handle_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(signum, self.request_stop, signal.Signals(signum).name)
                    installed.append(signum)
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
                installed.append(signal.SIGHUP)
        try:
            start = asyncio.create_task(self.start(), name="csuhub:start")
            waiter = asyncio.create_task(self._stop_requested.wait())
            await asyncio.wait({start, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if not start.done():
                start.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await start
                waiter.cancel()
                return self._stop_reason or "stopped during start-up"
            if start.exception() is not None:
                waiter.cancel()
                raise cast(BaseException, start.exception())
            if on_started is not None:
                on_started(self)
            await waiter
            await self.stop(self._stop_reason)
            return self._stop_reason
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)

    def _on_sighup(self) -> None:
        if self.state != "running":
            return
        task = asyncio.get_running_loop().create_task(self.reload("SIGHUP"))
        self._reload_tasks.add(task)
        task.add_done_callback(self._reload_tasks.discard)

    # -- reporting ------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        plugins = {r.name: str(r.state) for r in self.pm.records.values()}
        failed = sorted(r.name for r in self.pm.records.values() if r.state is PluginState.FAILED)
        cameras: dict[str, int] = {}
        for state in self.cameras.states.values():
            cameras[state] = cameras.get(state, 0) + 1
        status = self.state if self.state != "running" else "ok"
        if status == "ok" and (failed or cameras.get("offline")):
            status = "degraded"
        return {
            "status": status,
            "hub": {"name": self.name, "state": self.state},
            "plugins": plugins,
            "failed_plugins": failed,
            "cameras": cameras,
            "tasks": {
                "running": len(self.supervisor.running()),
                "crashes": sum(self.supervisor.crashes.values()),
            },
        }


@contextlib.asynccontextmanager
async def _guarded_lifespan(plugin: str, cm: Any) -> Any:
    """Enter a plugin's lifespan; an error on exit is logged, not propagated."""
    value = await cm.__aenter__()
    try:
        yield value
    except BaseException as err:
        if not await cm.__aexit__(type(err), err, err.__traceback__):
            raise
    else:
        try:
            await cm.__aexit__(None, None, None)
        except Exception:
            _LOGGER.exception("plugin %s: hub_lifespan failed on exit", plugin)


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, default=str, indent=2))
    os.replace(tmp, path)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _peek_disabled(raw: Any) -> list[str]:
    try:
        disabled = raw.get("plugins", {}).get("disabled", [])
    except AttributeError:
        return []
    if isinstance(disabled, str):
        return [disabled]
    return [str(d) for d in disabled] if isinstance(disabled, list) else []


__all__ = ["ConfigInvalid", "Hub", "HubKey", "default_data_dir"]
