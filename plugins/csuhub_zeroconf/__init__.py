"""mDNS/DNS-SD discovery (python-zeroconf's async API) and advertising the hub.

Browses camera service types (``_rtsp._tcp``, ``_onvif._tcp`` and the types
camera drivers declare, e.g. ``_axis-video._tcp``) and advertises the hub as
``_csuhub._tcp`` with its web panel's port once the panel listens. Like every
multicast source it runs only when the site file names it under
``discovery:``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import voluptuous as vol
from zeroconf import InterfaceChoice, IPVersion, ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from csuhub.api import CSUHUB_VERSION, DiscoveredCamera, DiscoverySourceSpec, HubStarted, hookimpl

_LOGGER = logging.getLogger(__name__)

BASE_TYPES = ("_rtsp._tcp.local.", "_onvif._tcp.local.")
HUB_TYPE = "_csuhub._tcp.local."
MAX_PROPERTIES = 16


def _service_type(value: Any) -> str:
    if (
        not isinstance(value, str)
        or not value.startswith("_")
        or not value.endswith("._tcp.local.")
        or len(value) > 80
    ):
        raise vol.Invalid("expected a service type such as _rtsp._tcp.local.")
    return value


def _ipv4(value: Any) -> str:
    """A local IPv4 address in dotted form; zeroconf joins the mDNS group on it."""
    try:
        if not isinstance(value, str) or len(value) > 15:
            raise ValueError(value)
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise vol.Invalid("expected a local IPv4 address such as 192.168.1.10") from None


SCHEMA = vol.Schema(
    {
        vol.Optional("types", default=[]): [_service_type],
        vol.Optional("advertise", default=True): bool,
        vol.Optional("interfaces"): vol.All([_ipv4], vol.Length(max=64)),
        # what ``csuhub discover --interface`` passes to every source: one address
        vol.Optional("interface"): _ipv4,
    }
)


def interface_choice(options: dict[str, Any]) -> list[str] | InterfaceChoice:
    """What python-zeroconf listens on: the addresses the site names, else every
    IPv4 interface.

    The "every interface" default must be the ``InterfaceChoice.All`` enum: zeroconf
    refuses anything else that is not a list (a string such as ``"all"`` raises
    ``TypeError`` in ``normalize_interface_choice``), and that default is the path
    ``csuhub discover`` takes.
    """
    chosen = [
        *options.get("interfaces", ()),
        *([options["interface"]] if "interface" in options else []),
    ]
    return list(dict.fromkeys(chosen)) if chosen else InterfaceChoice.All


def _text(value: Any, limit: int = 100) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return "".join(ch for ch in str(value) if ch.isprintable())[:limit]


class ZeroconfStartError(Exception):
    """mDNS could not open its sockets; the message is for an operator."""


class ZeroconfSource:
    def __init__(self, hub: Any, options: dict[str, Any]) -> None:
        self.hub = hub
        self.options = options
        self.zc: AsyncZeroconf | None = None
        self.advertised: AsyncServiceInfo | None = None
        self._unsub: Any = None
        # service type -> driver, from the drivers' declarations
        self.type_drivers: dict[str, str] = {}
        for item in hub.registry.camera_drivers:
            for service_type in item.spec.zeroconf_types:
                self.type_drivers.setdefault(service_type, item.spec.name)

    @property
    def types(self) -> list[str]:
        return sorted({*BASE_TYPES, *self.type_drivers, *self.options["types"]})

    async def start(self) -> None:
        try:
            self.zc = AsyncZeroconf(
                interfaces=interface_choice(self.options), ip_version=IPVersion.V4Only
            )
        except (OSError, RuntimeError) as err:  # no usable interface, address not local
            raise ZeroconfStartError(f"mDNS cannot listen: {err}") from None
        if self.options["advertise"]:
            self._unsub = self.hub.bus.listen_once(HubStarted, self._advertise)

    async def _advertise(self, event: HubStarted) -> None:
        web = getattr(self.hub, "web", None)
        if self.zc is None or web is None or not web.url:
            return
        host = web.host
        addresses = []
        if host not in ("0.0.0.0", "127.0.0.1", "localhost"):  # noqa: S104
            with contextlib.suppress(ValueError):
                addresses = [ipaddress.IPv4Address(host).packed]
        name = "".join(ch for ch in self.hub.name if ch.isalnum() or ch in " -")[:40] or "csuhub"
        info = AsyncServiceInfo(
            HUB_TYPE,
            f"{name}.{HUB_TYPE}",
            port=web.port,
            addresses=addresses or None,
            properties={"path": "/", "version": CSUHUB_VERSION},
            server=f"{socket.gethostname()}.local.",
        )
        try:
            await self.zc.async_register_service(info, allow_name_change=True)
            self.advertised = info
        except Exception as err:
            _LOGGER.warning("zeroconf: cannot advertise the hub: %s", err)

    async def stop(self) -> None:
        if self._unsub is not None:
            self._unsub()
        if self.zc is not None:
            if self.advertised is not None:
                with contextlib.suppress(Exception):
                    await self.zc.async_unregister_service(self.advertised)
            await self.zc.async_close()
            self.zc = None

    async def scan(self, timeout: float) -> AsyncIterator[DiscoveredCamera]:
        if self.zc is None:
            await self.start()
        assert self.zc is not None
        queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

        def on_change(
            zeroconf: Any, service_type: str, name: str, state_change: ServiceStateChange
        ) -> None:
            if state_change in (ServiceStateChange.Added, ServiceStateChange.Updated):
                queue.put_nowait((service_type, name))

        browser = AsyncServiceBrowser(self.zc.zeroconf, self.types, handlers=[on_change])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen: set[str] = set()
        try:
            while (remaining := deadline - loop.time()) > 0:
                try:
                    service_type, name = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:
                    return
                if name in seen:
                    continue
                found = await self._resolve(service_type, name, max(0.2, min(remaining, 3.0)))
                if found is not None:
                    seen.add(name)
                    yield found
        finally:
            await browser.async_cancel()

    async def _resolve(self, service_type: str, name: str, wait: float) -> DiscoveredCamera | None:
        assert self.zc is not None
        info = AsyncServiceInfo(service_type, name)
        if not await info.async_request(self.zc.zeroconf, int(wait * 1000)):
            return None
        addresses = info.parsed_addresses(IPVersion.V4Only)
        if not addresses or not info.port:
            return None
        if name == (self.advertised.name if self.advertised else None):
            return None  # ourselves
        properties = {
            _text(k, 40): _text(v, 200)
            for k, v in list((info.properties or {}).items())[:MAX_PROPERTIES]
            if k
        }
        label = _text(name[: -len(service_type) - 1] if name.endswith(service_type) else name)
        return DiscoveredCamera(
            ref=f"mdns:{_text(name, 200)}",
            address=addresses[0],
            source="zeroconf",
            name=label or None,
            driver=self.type_drivers.get(service_type),
            info={
                "service_type": service_type,
                "port": info.port,
                "properties": properties,
                "driver_options": {"host": addresses[0], "port": info.port},
            },
        )


@hookimpl
def register_discovery_sources(hub: Any) -> list[DiscoverySourceSpec]:
    return [
        DiscoverySourceSpec(
            name="zeroconf",
            factory=ZeroconfSource,
            config_schema=SCHEMA,
            description="mDNS/DNS-SD browse of camera service types; advertises _csuhub._tcp",
        )
    ]
