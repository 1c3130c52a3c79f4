"""Registries of the specs plugins provide, one per kind, with unique names."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

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

    def spec_registries(self) -> list[SpecRegistry[ComponentSpec]]:
        return [getattr(self, attr) for attr in self.FACTORY_HOOKS.values()]

    def remove_plugin(self, plugin: str) -> None:
        for registry in self.spec_registries():
            registry.remove_plugin(plugin)
        self.config_sections = {k: v for k, v in self.config_sections.items() if v[1] != plugin}
        self.web_routes.pop(plugin, None)
