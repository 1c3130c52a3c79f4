"""The SIP call line: a monitoring user agent the PBX forks the police line to.

Each INVITE opens (through ``hub.calls``) an incident with the caller's number
and, when the PBX conveys one, the caller's location (RFC 6442 PIDF-LO); the
leg is never answered with media. See docs/call-lines.md for the PBX set-up,
the options and why this is a small stack of its own rather than a library:
``message`` (strict parser), ``pidf`` (location), ``transactions`` (RFC 3261
§17.2), ``agent`` (what each request means), ``transport`` (sockets, allowed
peers), ``digest`` (authentication), ``line`` (options, reports).
"""

from __future__ import annotations

from typing import Any

from csuhub.api import CallLineSpec, hookimpl

from .line import SCHEMA, SipLine

__all__ = ["SCHEMA", "SipLine"]


@hookimpl
def register_call_lines(hub: Any) -> list[CallLineSpec]:
    return [
        CallLineSpec(
            name="sip",
            factory=SipLine,
            config_schema=SCHEMA,
            description="SIP monitoring leg: the PBX forks the police line to the hub (UDP/TCP)",
        )
    ]
