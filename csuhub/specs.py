"""What the ``register_*`` hooks return.

A spec is a plain, frozen description: a unique name, a voluptuous schema for
its options, and a factory that the hub calls when (and only when) the site
configuration asks for that component. Keeping construction out of the hook
means a plugin can be listed, validated against and documented without being
started, and the hub controls start/stop order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import voluptuous as vol

#: Options schema used when a spec declares none: accept nothing but an empty mapping.
NO_OPTIONS = vol.Schema({})


@dataclass(frozen=True, kw_only=True)
class ComponentSpec:
    """Common shape of every component a plugin can provide."""

    #: Unique within its kind; what the site configuration refers to (``driver: onvif``).
    name: str
    #: ``factory(hub, options)`` returns the long-lived object (see ``csuhub.protocols``).
    factory: Callable[..., Any]
    #: Validates ``options`` from the site configuration before ``factory`` is called.
    config_schema: Callable[[Any], Any] = field(default_factory=lambda: NO_OPTIONS)
    description: str = ""

    kind: str = field(default="component", init=False)


@dataclass(frozen=True, kw_only=True)
class DiscoverySourceSpec(ComponentSpec):
    """Finds cameras on the network (WS-Discovery, mDNS, a simulator).

    A source runs only when the site file names it under ``discovery:``; the
    hub never probes a network nobody asked it to. ``factory(hub, options)``.
    """

    kind: str = field(default="discovery_source", init=False)


@dataclass(frozen=True, kw_only=True)
class CameraDriverSpec(ComponentSpec):
    """Talks to one family of cameras (ONVIF, plain RTSP, a vendor API).

    ``factory(hub, camera_id, options)`` returns a ``CameraDriver`` for one camera.
    """

    #: zeroconf service types this driver understands, e.g. ``("_axis-video._tcp.local.",)``.
    zeroconf_types: tuple[str, ...] = ()
    kind: str = field(default="camera_driver", init=False)


@dataclass(frozen=True, kw_only=True)
class RecordingBackendSpec(ComponentSpec):
    kind: str = field(default="recording_backend", init=False)


@dataclass(frozen=True, kw_only=True)
class RetentionPolicySpec(ComponentSpec):
    kind: str = field(default="retention_policy", init=False)


@dataclass(frozen=True, kw_only=True)
class CallLineSpec(ComponentSpec):
    """Receives the police desk's calls (SIP monitoring leg, CAD webhook).

    ``factory(hub, line_id, options)`` returns a ``CallLine`` for one entry of
    ``call_lines:``; it reports calls to ``hub.calls`` (``csuhub.incidents.calls``).
    """

    kind: str = field(default="call_line", init=False)


@dataclass(frozen=True, kw_only=True)
class WallLayoutSpec(ComponentSpec):
    kind: str = field(default="wall_layout", init=False)


@dataclass(frozen=True, kw_only=True)
class ConfigSectionSpec:
    """A top-level section of the site file that a plugin owns (e.g. ``call_lines``).

    ``schema`` validates the section's value. Core sections (``hub``, ``plugins``,
    ``cameras``) are owned by core and cannot be claimed.
    """

    section: str
    schema: Callable[[Any], Any]
    description: str = ""
