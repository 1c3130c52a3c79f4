"""Building the plugin manager and keeping an honest record of every plugin.

``make_plugin_manager`` is a factory, never an import-time global, so that two
hubs (or two tests) never share plugins. Entry points are loaded one at a time
so that a plugin that fails to import, or that reuses another plugin's name, is
recorded by name with the reason while every other plugin still loads.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from types import ModuleType
from typing import Any

import pluggy

from csuhub import hookspecs
from csuhub.hookcalls import CallPlan, EachPlugin, PluginCallError

_LOGGER = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "csuhub"


class PluginState(StrEnum):
    LOADED = "loaded"
    DISABLED = "disabled"
    FAILED = "failed"


@dataclass
class PluginRecord:
    """What ``csuhub plugins`` and ``/api/health`` report about one plugin."""

    name: str
    version: str | None = None
    distribution: str | None = None
    module: str | None = None
    state: PluginState = PluginState.LOADED
    reason: str | None = None
    hooks: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "distribution": self.distribution,
            "module": self.module,
            "state": str(self.state),
            "reason": self.reason,
            "hooks": list(self.hooks),
        }


class CsuhubPluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers disabled and failed plugins."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        self.pending_failures: list[tuple[str, str]] = []
        #: per hook, how to ask each plugin apart (``csuhub.hookcalls``)
        self.call_plans: dict[str, CallPlan] = {}

    def register_plugin(
        self,
        plugin: object,
        name: str,
        *,
        version: str | None = None,
        distribution: str | None = None,
    ) -> PluginRecord:
        """Register ``plugin`` under ``name`` and record it; duplicates are refused."""
        existing = self.records.get(name)
        if existing is not None and existing.state is not PluginState.DISABLED:
            record = PluginRecord(
                name=name,
                version=version,
                distribution=distribution,
                module=_module_name(plugin),
                state=PluginState.FAILED,
                reason=(
                    f"duplicate plugin name {name!r}: already provided by "
                    f"{existing.distribution or existing.module or 'another plugin'}"
                ),
            )
            _LOGGER.error("plugin %s not loaded: %s", name, record.reason)
            self.records[f"{name}#{distribution or id(plugin)}"] = record
            return record
        record = PluginRecord(
            name=name,
            version=version,
            distribution=distribution,
            module=_module_name(plugin),
        )
        if self.is_blocked(name):
            record.state = PluginState.DISABLED
            record.reason = "disabled in configuration (plugins.disabled)"
            self.records[name] = record
            return record
        if not _hashable(plugin):
            record.state = PluginState.FAILED
            record.reason = UNHASHABLE
            # what it would have implemented: a hold plugin refused here must still keep
            # its footage (``failed_with("retention_hold")`` fails closed on it)
            record.hooks = sorted(declared_hooks(self, plugin))
            self.records[name] = record
            _LOGGER.error("plugin %s not loaded: %s", name, record.reason)
            return record
        try:
            self.register(plugin, name=name)
        except pluggy.PluginValidationError as err:
            record.state = PluginState.FAILED
            record.reason = f"invalid hook implementation: {err}"
            record.hooks = sorted(declared_hooks(self, plugin))
            self.records[name] = record
            _LOGGER.error("plugin %s not loaded: %s", name, record.reason)
            return record
        except Exception as err:
            # a historic hook (hub_configure) replayed inside register() raised
            self.records[name] = record
            self.fail(name, f"hub_configure raised {type(err).__name__}: {err}")
            return record
        self._guard_historic(plugin, name)
        record.hooks = sorted(impl_names(self, plugin))
        self.records[name] = record
        return record

    def _guard_historic(self, plugin: object, name: str) -> None:
        """Isolate historic hooks: pluggy would abort the call at the first raise.

        Historic hooks replay to late registrants inside ``register``; a raise
        there must disable only the culprit, so it is recorded in
        ``pending_failures`` and applied by the hub after the call.
        """
        caller = self.hook.hub_configure
        for impl in caller.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            function = impl.function

            def guarded(*args: Any, _f: Callable[..., Any] = function) -> Any:
                try:
                    return _f(*args)
                except Exception as err:
                    _LOGGER.exception("plugin %s failed in hub_configure", name)
                    self.pending_failures.append(
                        (name, f"hub_configure raised {type(err).__name__}: {err}")
                    )
                    return None

            impl.function = guarded

    def apply_pending_failures(self) -> list[tuple[str, str]]:
        failures, self.pending_failures = self.pending_failures, []
        for name, reason in failures:
            self.fail(name, reason)
        return failures

    def fail(self, name: str, reason: str) -> None:
        """Disable a plugin that raised; the hub keeps running without it."""
        plugin = self.get_plugin(name)
        record = self.records.setdefault(name, PluginRecord(name=name))
        if plugin is not None:
            # what it implemented is remembered: a lost retention_hold must keep footage
            record.hooks = sorted(set(record.hooks) | set(declared_hooks(self, plugin)))
            self.unregister(plugin)
        record.state = PluginState.FAILED
        record.reason = reason
        _LOGGER.error("plugin %s disabled: %s", name, reason)

    def failed_with(self, hook: str) -> list[PluginRecord]:
        """Plugins disabled after a failure that implemented ``hook``: their answers
        are missing, which a fail-closed selector (``retention_hold``) must not read
        as "no objection"."""
        return [
            r for r in self.records.values() if r.state is PluginState.FAILED and hook in r.hooks
        ]

    def call_each(self, hook_name: str, **kwargs: Any) -> Iterator[tuple[str, Any]]:
        """Ask each plugin separately, through pluggy, yielding ``(plugin, result)``.

        pluggy aborts a whole hook call when one implementation raises; at
        start-up we need the opposite: isolate the culprit. The iterator raises
        ``PluginCallError`` (plugin name attached) for a plugin that failed and
        goes on with the next one when asked again, so the caller decides
        (normally: ``fail`` that plugin and carry on). Wrapper hookimpls and
        tracing see every call (``csuhub.hookcalls``).
        """
        return EachPlugin(self, hook_name, kwargs)

    def outcomes(
        self, hook_name: str, **kwargs: Any
    ) -> Iterator[tuple[str, Any, PluginCallError | None]]:
        """``call_each`` as a plain loop: ``(plugin, result, None)`` for an answer,
        ``(plugin, None, error)`` for a plugin that failed, and on to the next."""
        each = self.call_each(hook_name, **kwargs)
        while True:
            try:
                plugin, result = next(each)
            except StopIteration:
                return
            except PluginCallError as err:
                yield err.plugin, None, err
            else:
                yield plugin, result, None

    def loaded(self) -> list[PluginRecord]:
        return [r for r in self.records.values() if r.state is PluginState.LOADED]


def impl_names(pm: pluggy.PluginManager, plugin: object) -> Iterable[str]:
    for caller in pm.get_hookcallers(plugin) or ():
        yield caller.name


def declared_hooks(pm: pluggy.PluginManager, plugin: object) -> Iterable[str]:
    """The hooks ``plugin`` implements, registered or not: a historic hook raising
    inside ``register`` stops pluggy before it adds the plugin's later hooks."""
    for attribute in dir(plugin):
        opts = pm.parse_hookimpl_opts(plugin, attribute)
        if opts is not None:
            yield opts.get("specname") or attribute


#: why an unhashable plugin object is refused: each plugin is asked apart through
#: ``PluginManager.subset_hook_caller``, which keeps plugins in a set
UNHASHABLE = (
    "the plugin object is unhashable: use a module or a class instance"
    " (a @dataclass plugin needs eq=False or frozen=True)"
)


def _hashable(plugin: object) -> bool:
    try:
        hash(plugin)
    except TypeError:
        return False
    return True


def _module_name(plugin: object) -> str | None:
    if isinstance(plugin, ModuleType):
        return plugin.__name__
    return type(plugin).__module__


EntryPointLoader = Callable[[], Iterable[importlib.metadata.EntryPoint]]


def _entry_points() -> Iterable[importlib.metadata.EntryPoint]:
    return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)


def make_plugin_manager(
    *,
    disabled: Iterable[str] = (),
    load_entrypoints: bool = True,
    plugins: Iterable[tuple[str, object]] = (),
    entry_points: EntryPointLoader = _entry_points,
) -> CsuhubPluginManager:
    """Build a fresh plugin manager.

    ``disabled`` names plugins to block (``plugins: {disabled: [...]}``).
    ``plugins`` are extra ``(name, object)`` pairs, which is how tests and the
    plugin kit register a plugin for one hub only.
    """
    pm = CsuhubPluginManager()
    for name in disabled:
        pm.set_blocked(name)
    if load_entrypoints:
        for ep in sorted(entry_points(), key=lambda e: e.name):
            dist = ep.dist
            dist_name = dist.name if dist is not None else None
            version = dist.version if dist is not None else None
            if pm.is_blocked(ep.name):
                pm.records[ep.name] = PluginRecord(
                    name=ep.name,
                    version=version,
                    distribution=dist_name,
                    module=ep.value,
                    state=PluginState.DISABLED,
                    reason="disabled in configuration (plugins.disabled)",
                )
                continue
            try:
                plugin = ep.load()
            except Exception as err:  # any import error must not stop the hub
                key = ep.name if ep.name not in pm.records else f"{ep.name}#{dist_name}"
                pm.records[key] = PluginRecord(
                    name=ep.name,
                    version=version,
                    distribution=dist_name,
                    module=ep.value,
                    state=PluginState.FAILED,
                    reason=f"import failed: {type(err).__name__}: {err}",
                )
                _LOGGER.error("plugin %s failed to import: %s", ep.name, err)
                continue
            pm.register_plugin(plugin, ep.name, version=version, distribution=dist_name)
    for name, plugin in plugins:
        pm.register_plugin(plugin, name)
    _check_pending(pm)
    return pm


def _check_pending(pm: CsuhubPluginManager) -> None:
    """``check_pending`` raises on the first plugin with an unknown hook; fail it and go on."""
    while True:
        try:
            pm.check_pending()
        except pluggy.PluginValidationError as err:
            name = pm.get_name(err.plugin) or repr(err.plugin)
            pm.fail(name, f"implements an unknown hook: {err}")
            continue
        return
