"""The store facade retention policies get from ``csuhub.api``: preservation
holds only, never a requisition's, and nothing written in a dry run."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from csuhub.api import FOREVER, PRESERVE, IncidentWindow, policy_store
from csuhub.testing import index_footage

DAY = 86400.0
START = time.time() // 3600 * 3600 - 3 * DAY


async def test_a_policy_places_and_releases_preservation_holds_only(hub_factory: Any) -> None:
    async with hub_factory(sweeping=False) as hub:
        await index_footage(hub, "cam-p", START, 1)
        store = policy_store(await hub.retention.context(now=START + DAY))
        await store.place_hold(
            ("cam-p",), START, FOREVER, kind="flag", ref="7", reason="test", actor="policy"
        )
        (hold,) = await store.holds("flag")
        assert (hold.level, hold.camera_id, hold.ref) == (PRESERVE, "cam-p", "7")
        assert all(s.hold for s in await hub.store.segments("cam-p"))
        for kind in ("requisition", ""):
            with pytest.raises(PermissionError):
                await store.place_hold(
                    ["cam-p"], START, START + 60, kind=kind, ref="1", reason="x", actor="policy"
                )
            with pytest.raises(PermissionError):
                await store.release_holds(kind, "1", "policy")
        await store.release_holds("flag", "7", "policy")
        assert await store.holds("flag") == []


async def test_in_a_dry_run_the_facade_writes_nothing_and_simulates_the_holds(
    hub_factory: Any,
) -> None:
    """Seen in acceptance: the facade skipped holds in a dry run, so a policy that
    checks ``holds(kind)`` first saw none, and the report listed held footage."""
    async with hub_factory(sweeping=False) as hub:
        await index_footage(hub, "cam-p", START, 1)
        await hub.store.retention.place(
            ["cam-p"],
            START,
            START + 600,
            level=PRESERVE,
            kind="flag",
            ref="old",
            reason="x",
            actor="t",
        )
        sweep = await hub.retention.context(now=START, dry_run=True)
        store = policy_store(sweep)
        await store.place_hold(
            ["cam-p"], START, START + 60, kind="flag", ref="1", reason="x", actor="p"
        )
        await store.release_holds("flag", "old", "p")
        # the policy sees its own writes; the store and the segments do not change
        assert [(h.ref, h.id < 0) for h in await store.holds("flag")] == [("1", True)]
        assert [h.ref for h in await hub.store.retention.holds(kind="flag")] == ["old"]
        held = [s.hold for s in await hub.store.segments("cam-p")]
        assert held == [True] * 10 + [False] * 50
        assert sweep.simulation is not None
        assert [(e["action"], e["ref"]) for e in sweep.simulation.report()] == [
            ("place", "1"),
            ("release", "old"),
        ]
        # a release also drops what this dry run placed, as the store would
        await store.release_holds("flag", "1", "p")
        assert await store.holds("flag") == []
        with pytest.raises(PermissionError):
            await store.place_hold(
                ["cam-p"], START, START + 1, kind="requisition", ref="1", reason="x", actor="p"
            )
    # a real sweep never carries a simulation: its writes go to the store
    with pytest.raises(ValueError):
        dataclasses.replace(sweep, dry_run=False)


async def test_incidents_are_typed_and_oldest_unheld_reads_the_index(hub_factory: Any) -> None:
    async with hub_factory(sweeping=False) as hub:
        made = await index_footage(hub, "cam-p", START, 1, size=100)
        await hub.store.retention.open_incident("INC-1", ["cam-p"], START, None, "a fight")
        store = policy_store(await hub.retention.context(now=START + DAY))
        (incident,) = await store.incidents()
        assert isinstance(incident, IncidentWindow)
        assert (incident.reference, incident.cameras, incident.end, incident.is_open) == (
            "INC-1",
            ("cam-p",),
            None,
            True,
        )
        befores, found = await store.oldest_unheld(250, {}, START + DAY)
        assert found == 300 and befores == {"cam-p": made[2].end}  # three 100-byte segments


async def test_a_policy_cannot_alter_the_sweep_it_is_shown(hub_factory: Any) -> None:
    """Seen in review: the core reads ``dry_run``, ``now`` and ``cap`` again after the
    policies planned, so a policy setting ``sweep.dry_run = False`` made a dry run
    destroy footage; and ``sweep.store`` handed out the whole store (legal holds)."""
    async with hub_factory(sweeping=False) as hub:
        await index_footage(hub, "cam-p", START, 1)
        sweep = await hub.retention.context(now=START + DAY, dry_run=True)
        for field, value in (("dry_run", False), ("now", START + 99 * DAY), ("cap", 0.0)):
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(sweep, field, value)
        with pytest.raises(TypeError):
            sweep.cameras["cam-x"] = sweep.retention_of("cam-p")  # type: ignore[index]
        with pytest.raises(AttributeError):
            sweep.recorded.add("cam-x")  # type: ignore[attr-defined]
        assert not hasattr(sweep, "store")
        assert "cam-p" in sweep.recorded


async def test_in_a_dry_run_oldest_unheld_skips_the_footage_of_simulated_holds(
    hub_factory: Any,
) -> None:
    """``storage_pressure`` planning after ``incident_preservation`` must not count
    footage the real sweep's hold keeps: it would free less than the dry run says."""
    async with hub_factory(sweeping=False) as hub:
        made = await index_footage(hub, "cam-p", START, 1, size=100)
        store = policy_store(await hub.retention.context(now=START + DAY, dry_run=True))
        await store.place_hold(
            ["cam-p"], START, made[1].end, kind="flag", ref="1", reason="x", actor="p"
        )
        befores, found = await store.oldest_unheld(250, {}, START + DAY)
        assert found == 300 and befores == {"cam-p": made[4].end}
        befores, found = await store.oldest_unheld(10_000, {}, START + DAY)
        assert found == 5800 and befores == {"cam-p": made[-1].end}  # all there is
