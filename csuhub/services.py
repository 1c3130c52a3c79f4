"""What the managers may ask of the hub: the ``HubServices`` protocol.

Managers (cameras, discovery, recording, retention, requisitions) and the
functions they call receive the hub as ``HubServices``, never as ``Hub``: they
see the shared services (bus, store, supervisor, configuration, registry, data
directory, plugin manager and the selectors), not the lifecycle and not each
other. A manager that needs a sibling is handed it by ``Hub.setup()``.

This module imports nothing from ``csuhub`` at run time, so anything may import
it without an import cycle.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar, cast

if TYPE_CHECKING:
    from csuhub.bus import EventBus
    from csuhub.config import SiteConfig
    from csuhub.config.nodes import Secret
    from csuhub.plugins import CsuhubPluginManager
    from csuhub.protocols import DiscoveredCamera
    from csuhub.registry import Registry
    from csuhub.retention.context import SegmentRef
    from csuhub.selectors import Selection
    from csuhub.store import Store
    from csuhub.supervisor import ProcessGroup, Supervisor

__all__ = ["BuiltBySetup", "HubServices"]

T = TypeVar("T")


class HubServices(Protocol):
    """The hub as its managers see it (``Hub`` implements it)."""

    @property
    def name(self) -> str: ...

    @property
    def source(self) -> str: ...

    @property
    def bus(self) -> EventBus: ...

    @property
    def store(self) -> Store: ...

    @property
    def supervisor(self) -> Supervisor: ...

    @property
    def processes(self) -> ProcessGroup: ...

    @property
    def config(self) -> SiteConfig: ...

    @property
    def registry(self) -> Registry: ...

    @property
    def pm(self) -> CsuhubPluginManager: ...

    @property
    def data_dir(self) -> Path: ...

    def secret(self, name: str) -> Secret | None: ...

    def plugin_failed(self, plugin: str, reason: str, *, stage: str = "run") -> None: ...

    def driver_for(self, camera: DiscoveredCamera) -> str | None: ...

    def hold_decision(self, segment: SegmentRef) -> Selection: ...

    def hold_reason(self, segment: SegmentRef) -> str | None: ...


class BuiltBySetup(Generic[T]):
    """A hub attribute (the store, a manager) that exists once ``setup()`` has
    validated the configuration: reading it earlier is a clear error, not ``None``."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name, self.slot = name, f"_built_{name}"

    def __get__(self, hub: object, owner: type | None = None) -> T:
        try:
            return cast(T, vars(hub)[self.slot])
        except KeyError:
            raise RuntimeError(
                f"hub.{self.name} is built by hub.setup(), which has not run"
            ) from None

    def __set__(self, hub: object, value: T) -> None:
        vars(hub)[self.slot] = value
