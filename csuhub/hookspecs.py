"""Every hook a csuhub plugin can implement. No logic lives here.

Three families, named by convention:

* ``register_<things>(hub)``: factories. All implementations are called once
  at start-up; each returns a list of specs (see ``csuhub.specs``). Plain
  ``def``: they describe, they do not do I/O.
* ``<thing>_for_<context>(...)``: selectors, ``firstresult=True``. Called at
  run time on decisions; must be fast, plain ``def`` and return ``None`` to
  pass. (An ``async def`` selector would always "win" with an un-awaited
  coroutine; the hub rejects such a result.) Each selector declares with
  ``@selector`` what a failing implementation means: passed over, or deciding
  (fail closed), and its time budget (``csuhub.selectors``).
* ``hub_*``: lifecycle.

Arguments are typed: the hub, a protocol (``DiscoveredCamera``) or a frozen
reference (``SegmentRef``, ``IncidentRef``, ``WallRef``, see ``csuhub.refs``)
or plain text (``geocode_location``'s address), never ``Any`` or a dict.
Factories and selectors are called through pluggy one plugin at a time
(``csuhub.hookcalls``): wrapper hookimpls wrap each plugin's answer, and
``pm.trace`` and hook-call monitoring see every call.

The exact signatures are documented in ``docs/hooks.md``; a meta-test keeps
the two in step.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import pluggy

from csuhub.selectors import a_point, selector

if TYPE_CHECKING:
    from aiohttp.web import AbstractRouteDef

    from csuhub.hub import Hub
    from csuhub.protocols import DiscoveredCamera
    from csuhub.refs import IncidentRef, Location, WallRef
    from csuhub.retention.context import SegmentRef
    from csuhub.specs import (
        CallLineSpec,
        CameraDriverSpec,
        ConfigSectionSpec,
        DiscoverySourceSpec,
        RecordingBackendSpec,
        RetentionPolicySpec,
        WallLayoutSpec,
    )

PROJECT = "csuhub"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- factories -------------------------------------------------------------


@hookspec
def register_config_schemas(hub: Hub) -> list[ConfigSectionSpec] | None:
    """Claim top-level sections of the site file and the schema that validates them."""


@hookspec
def register_discovery_sources(hub: Hub) -> list[DiscoverySourceSpec] | None:
    """Provide sources that find cameras (WS-Discovery, mDNS, simulators)."""


@hookspec
def register_camera_drivers(hub: Hub) -> list[CameraDriverSpec] | None:
    """Provide drivers that talk to cameras (ONVIF, RTSP, vendor APIs)."""


@hookspec
def register_recording_backends(hub: Hub) -> list[RecordingBackendSpec] | None:
    """Provide backends that record camera streams to storage."""


@hookspec
def register_retention_policies(hub: Hub) -> list[RetentionPolicySpec] | None:
    """Provide policies that decide which recordings expire."""


@hookspec
def register_call_lines(hub: Hub) -> list[CallLineSpec] | None:
    """Provide integrations that receive the police desk's calls (SIP, webhook)."""


@hookspec
def register_wall_layouts(hub: Hub) -> list[WallLayoutSpec] | None:
    """Provide video-wall layouts (grid, 1+N, incident spotlight)."""


@hookspec
def register_web_routes(hub: Hub) -> list[AbstractRouteDef] | None:
    """Provide aiohttp route definitions, mounted under ``/plugins/<plugin>/``."""


# --- selectors ---------------------------------------------------------------


@selector(on_failure="pass", budget=0.5)
@hookspec(firstresult=True)
def driver_for_discovery(hub: Hub, camera: DiscoveredCamera) -> str | None:
    """Name the camera driver for a discovered camera, or return None to pass."""


@selector(on_failure="decide", budget=1.0, expects="a non-empty reason string or None")
@hookspec(firstresult=True)
def retention_hold(hub: Hub, segment: SegmentRef) -> str | None:
    """Return a reason to keep a segment past its expiry, or None to let it expire.
    Fails closed: a raising, slow or nonsensical implementation keeps the segment."""


@selector(on_failure="pass", budget=0.5)
@hookspec(firstresult=True)
def layout_for_incident(hub: Hub, incident: IncidentRef, wall: WallRef) -> str | None:
    """Name the wall layout to show for an incident on ``wall.screen``, or None to pass."""


@selector(on_failure="pass", budget=0.5, accepts=a_point, expects="a Location with lat and lon")
@hookspec(firstresult=True)
def geocode_location(hub: Hub, address: str, district: str | None) -> Location | None:
    """Place an incident's address (a call or an operator gave no point) on the
    map, or return None to pass; without an answer the desk falls back to the
    district the address names."""


# --- lifecycle ---------------------------------------------------------------


@hookspec(historic=True)
def hub_configure(hub: Hub) -> None:
    """Called once the hub is configured; late-registered plugins still receive it."""


@hookspec
def hub_lifespan(hub: Hub) -> AbstractAsyncContextManager[Any] | None:
    """Return an async context manager entered at start and exited at stop, or None."""
