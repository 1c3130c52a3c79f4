"""Runs the configured discovery sources and streams what they find to the bus.

Sources that send multicast never run unless named in the site file's
``discovery:`` section: the hub must not probe networks nobody asked it to.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from csuhub.config.settings import DiscoverySettings
from csuhub.events import CameraDiscovered, ComponentFailed, ComponentStarted
from csuhub.protocols import DiscoverySource

if TYPE_CHECKING:
    from csuhub.services import HubServices

_LOGGER = logging.getLogger(__name__)


class DiscoveryManager:
    def __init__(self, hub: HubServices) -> None:
        self.hub = hub
        self.sources: dict[str, DiscoverySource] = {}
        self.seen: dict[str, CameraDiscovered] = {}
        self.last_scan: dict[str, Any] | None = None

    async def start(self) -> None:
        for entry in self.hub.config.section("discovery", []):
            await self._start_source(entry)

    async def apply(self, diff: Any, entries: list[dict[str, Any]]) -> None:
        """Restart only the sources a reload added, removed or changed."""
        by_name = {e["source"]: e for e in entries}
        for name in [*diff.removed, *diff.changed]:
            await self.hub.supervisor.cancel(f"discovery:{name}")
            source = self.sources.pop(name, None)
            if source is not None:
                try:
                    await source.stop()
                except Exception:
                    _LOGGER.exception("discovery source %s failed to stop", name)
        for name in [*diff.changed, *diff.added]:
            await self._start_source(by_name[name])

    async def _start_source(self, entry: dict[str, Any]) -> None:
        name = entry["source"]
        spec = self.hub.registry.discovery_sources.get(name)
        plugin = self.hub.registry.discovery_sources.plugin_of(name) or "?"
        if spec is None:
            self.hub.bus.fire(
                ComponentFailed(
                    kind="discovery_source",
                    component=name,
                    plugin=plugin,
                    reason="no such discovery source (see `csuhub plugins`)",
                )
            )
            return
        try:
            source = spec.factory(self.hub, spec.config_schema(entry.get("options", {})))
            if not isinstance(source, DiscoverySource):
                raise TypeError(f"factory returned {type(source).__name__}, not a DiscoverySource")
            await source.start()
        except Exception as err:
            _LOGGER.exception("discovery source %s failed to start", name)
            self.hub.bus.fire(
                ComponentFailed(
                    kind="discovery_source",
                    component=name,
                    plugin=plugin,
                    reason=f"{type(err).__name__}: {err}",
                )
            )
            return
        self.sources[name] = source
        self.hub.bus.fire(ComponentStarted(kind="discovery_source", component=name, plugin=plugin))
        settings = DiscoverySettings.of(entry)
        self.hub.supervisor.spawn(
            f"discovery:{name}",
            lambda: self._loop(name, source, settings.timeout, settings.interval),
        )

    async def _loop(
        self, name: str, source: DiscoverySource, timeout: float, interval: float
    ) -> None:
        while True:
            await self.scan_once(name, source, timeout)
            await asyncio.sleep(interval)

    async def scan_once(self, name: str, source: DiscoverySource, timeout: float) -> int:
        return len(await self._scan(name, source, timeout))

    async def _scan(
        self, name: str, source: DiscoverySource, timeout: float
    ) -> list[CameraDiscovered]:
        found_events: list[CameraDiscovered] = []
        started = time.time()
        async for found in source.scan(timeout):
            event = CameraDiscovered(
                source=name,
                ref=found.ref,
                address=found.address,
                info={**found.info, "name": found.name, "driver": found.driver},
            )
            self.seen[found.ref] = event
            self.hub.bus.fire(event)
            found_events.append(event)
        self.last_scan = {
            "source": name,
            "started": started,
            "duration_s": time.time() - started,
            "found": len(found_events),
        }
        return found_events

    async def scan_all(self, timeout: float) -> list[CameraDiscovered]:
        """Scan every running source at once (the API's "scan now")."""
        results = await asyncio.gather(
            *(self._scan(name, source, timeout) for name, source in self.sources.items())
        )
        return [event for batch in results for event in batch]

    async def stop(self) -> None:
        for name, source in list(self.sources.items()):
            try:
                await source.stop()
            except Exception:
                _LOGGER.exception("discovery source %s failed to stop", name)
        self.sources.clear()
