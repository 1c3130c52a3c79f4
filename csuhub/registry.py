"""Registries of the specs plugins provide, one per kind, with unique names."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from csuhub.config.schema import CORE_SECTIONS

if TYPE_CHECKING:
    from csuhub.plugins import CsuhubPluginManager

from csuhub.specs import (
    CallLineSpec,
    CameraDriverSpec,
    ComponentSpec,
    ConfigSectionSpec,
    DiscoverySourceSpec,
    RecordingBackendSpec,
    RetentionPolicySpec,
    WallLayoutSpec,
)

S = TypeVar("S", bound=ComponentSpec)


class DuplicateSpecError(Exception):
    pass


@dataclass(frozen=True)
class Registered(Generic[S]):
    spec: S
    plugin: str


class SpecRegistry(Generic[S]):
    """Specs of one kind, by name. A second spec with a taken name is refused."""

    def __init__(self, kind: str, spec_type: type[S]) -> None:
        self.kind = kind
        self.spec_type = spec_type
        self._items: dict[str, Registered[S]] = {}

    def add(self, spec: S, plugin: str) -> None:
        if not isinstance(spec, self.spec_type):
            raise TypeError(
                f"{plugin} returned {type(spec).__name__} from register_{self.kind}s; "
                f"expected {self.spec_type.__name__}"
            )
        existing = self._items.get(spec.name)
        if existing is not None:
            raise DuplicateSpecError(
                f"{self.kind} {spec.name!r} from plugin {plugin!r} clashes with the one "
                f"from plugin {existing.plugin!r}"
            )
        self._items[spec.name] = Registered(spec, plugin)

    def get(self, name: str) -> S | None:
        item = self._items.get(name)
        return None if item is None else item.spec

    def plugin_of(self, name: str) -> str | None:
        item = self._items.get(name)
        return None if item is None else item.plugin

    def remove_plugin(self, plugin: str) -> None:
        self._items = {k: v for k, v in self._items.items() if v.plugin != plugin}

    def names(self) -> list[str]:
        return sorted(self._items)

    def __iter__(self) -> Iterator[Registered[S]]:
        return iter(list(self._items.values()))

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items


class Registry:
    """Every kind of spec, filled once at start-up from the ``register_*`` hooks."""

    def __init__(self) -> None:
        self.discovery_sources = SpecRegistry("discovery_source", DiscoverySourceSpec)
        self.camera_drivers = SpecRegistry("camera_driver", CameraDriverSpec)
        self.recording_backends = SpecRegistry("recording_backend", RecordingBackendSpec)
        self.retention_policies = SpecRegistry("retention_policy", RetentionPolicySpec)
        self.call_lines = SpecRegistry("call_line", CallLineSpec)
        self.wall_layouts = SpecRegistry("wall_layout", WallLayoutSpec)
        self.config_sections: dict[str, tuple[ConfigSectionSpec, str]] = {}
        self.web_routes: dict[str, list[object]] = {}

    #: hook name -> attribute holding the registry it fills
    FACTORY_HOOKS = {
        "register_discovery_sources": "discovery_sources",
        "register_camera_drivers": "camera_drivers",
        "register_recording_backends": "recording_backends",
        "register_retention_policies": "retention_policies",
        "register_call_lines": "call_lines",
        "register_wall_layouts": "wall_layouts",
    }
    #: every hook asked once at set-up: the factories, then sections and routes
    SETUP_HOOKS = (*FACTORY_HOOKS, "register_config_schemas", "register_web_routes")

    def spec_registries(self) -> list[SpecRegistry[ComponentSpec]]:
        return [getattr(self, attr) for attr in self.FACTORY_HOOKS.values()]

    def remove_plugin(self, plugin: str) -> None:
        for registry in self.spec_registries():
            registry.remove_plugin(plugin)
        self.config_sections = {k: v for k, v in self.config_sections.items() if v[1] != plugin}
        self.web_routes.pop(plugin, None)

    def add_section(self, spec: ConfigSectionSpec, plugin: str) -> None:
        """Claim a configuration section for ``plugin``; core's and another plugin's
        sections cannot be taken."""
        if not isinstance(spec, ConfigSectionSpec):
            raise TypeError(f"register_config_schemas must return ConfigSectionSpec, got {spec!r}")
        if spec.section in CORE_SECTIONS:
            raise ValueError(f"config section {spec.section!r} is owned by core")
        if spec.section in self.config_sections:
            owner = self.config_sections[spec.section][1]
            raise DuplicateSpecError(
                f"config section {spec.section!r} from plugin {plugin!r} is already "
                f"claimed by plugin {owner!r}"
            )
        self.config_sections[spec.section] = (spec, plugin)

    def collect(self, pm: CsuhubPluginManager, hub: object) -> list[tuple[str, str]]:
        """Call each factory hook per plugin and register what they return.

        A plugin that raises, or returns something unusable, contributes nothing
        (all or none of its specs): the returned ``(plugin, reason)`` pairs are the
        plugins the caller must disable, in the order they failed.
        """
        staged: dict[str, list[tuple[str, Any]]] = {}
        failed: dict[str, str] = {}
        for hook in self.SETUP_HOOKS:
            for plugin, result, error in pm.outcomes(hook, hub=hub):
                if error is not None:
                    failed.setdefault(plugin, str(error))
                elif result is not None:
                    staged.setdefault(plugin, []).append((hook, result))
        out = list(failed.items())
        for plugin in failed:
            staged.pop(plugin, None)
        for plugin, items in staged.items():
            try:
                self._register(plugin, items)
            except (DuplicateSpecError, TypeError, ValueError) as err:
                out.append((plugin, str(err)))
        return out

    def _register(self, plugin: str, items: list[tuple[str, Any]]) -> None:
        try:
            for hook, result in items:
                if hook == "register_web_routes":
                    self.web_routes[plugin] = list(result)
                elif hook == "register_config_schemas":
                    for spec in result:
                        self.add_section(spec, plugin)
                else:
                    target = getattr(self, self.FACTORY_HOOKS[hook])
                    for spec in result:
                        target.add(spec, plugin)
        except Exception:
            self.remove_plugin(plugin)
            raise


def disabled_plugins(raw: Any) -> list[str]:
    """``plugins.disabled`` read from the raw configuration, before validation: the
    plugin manager (which validation needs) is made first."""
    try:
        disabled = raw.get("plugins", {}).get("disabled", [])
    except AttributeError:
        return []
    if isinstance(disabled, str):
        return [disabled]
    return [str(d) for d in disabled] if isinstance(disabled, list) else []
