"""The bundled ``incident_preservation`` policy beside the incident desk, which
places and releases the incidents' holds itself: turned off, the policy does
nothing at all. Real hub, real SQLite, real sweeps."""

from __future__ import annotations

import time
from typing import Any

from test_incidents import OPERATOR, ORIGIN, StillPlugin, ready, site

from csuhub.api import Location
from csuhub.testing import sweep_at


def preserving(enabled: bool) -> dict[str, Any]:
    config = site()
    config["retention"]["policies"] = [
        {"policy": "max_age"},
        {"policy": "incident_preservation", "options": {"enabled": enabled}},
    ]
    return config


async def test_a_disabled_incident_preservation_leaves_the_desk_s_holds_alone(
    hub_factory: Any,
) -> None:
    plugins = [("still", StillPlugin())]
    async with hub_factory(
        preserving(False), plugins=plugins, health_interval=60, sweeping=False
    ) as hub:
        await ready(hub)
        incident = await hub.incidents.open(OPERATOR, category="x", location=Location(*ORIGIN))
        placed = {h.id for h in await hub.store.retention.holds(kind="incident")}
        assert len(placed) == 3
        await sweep_at(hub, time.time())
        await sweep_at(hub, time.time() + 60)
        assert {h.id for h in await hub.store.retention.holds(kind="incident")} == placed
        # nor does it hold what the desk did not: an incident whose holds went missing
        other = await hub.incidents.open(OPERATOR, category="y", location=Location(*ORIGIN))
        await hub.store.retention.release("incident", str(other.id), "test")
        await sweep_at(hub, time.time())
        held = await hub.store.retention.holds(kind="incident")
        assert {h.ref for h in held} == {str(incident.id)}
        # closing is the desk's: its holds end there
        await hub.incidents.close(incident.id, "done", OPERATOR)
        assert await hub.store.retention.holds(kind="incident") == []


async def test_an_enabled_incident_preservation_repairs_missing_holds(hub_factory: Any) -> None:
    plugins = [("still", StillPlugin())]
    async with hub_factory(
        preserving(True), plugins=plugins, health_interval=60, sweeping=False
    ) as hub:
        await ready(hub)
        incident = await hub.incidents.open(OPERATOR, category="x", location=Location(*ORIGIN))
        await hub.store.retention.release("incident", str(incident.id), "test")
        await sweep_at(hub, time.time())
        held = await hub.store.retention.holds(kind="incident")
        assert {h.ref for h in held} == {str(incident.id)} and len(held) == 3
