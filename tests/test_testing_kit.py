"""The plugin test kit's retention helpers, used the way a policy's author would:
footage indexed in the past, swept at the test's time, no background sweeper racing."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import aiohttp
import pytest

from csuhub.api import FOREVER, Expiry, RetentionPolicySpec, SweepContext, hookimpl, policy_store
from csuhub.testing import api_token, index_footage, sweep_at

DAY = 86400.0
HOUR = 3600.0
#: a round hour, twenty days ago: well past the default 14-day retention
START = time.time() // HOUR * HOUR - 20 * DAY
SITE = {"hub": {"timezone": "UTC"}, "retention": {"default": "14d"}}


async def test_index_footage_writes_real_files_and_indexes_their_sha256(
    hub_factory: Any,
) -> None:
    async with hub_factory(SITE, sweeping=False) as hub:
        made = await index_footage(hub, "cam-kit", START, 0.5, segment=120.0, size=2048)
        assert len(made) == 15
        assert [s.start for s in made] == [START + i * 120.0 for i in range(15)]
        root = hub.recording.storage_root()
        for segment in made:
            data = segment.path.read_bytes()
            assert len(data) == 2048
            assert hashlib.sha256(data).hexdigest() == segment.sha256
            # the recorder's own layout: <camera>/YYYY/MM/DD/HH/
            parts = segment.path.relative_to(root).parts
            assert parts[0] == "cam-kit" and len(parts) == 6
        assert len({s.sha256 for s in made}) == 15  # distinct bytes, distinct evidence
        rows = await hub.store.segments("cam-kit")
        assert [(r.id, r.start, r.end, r.sha256, r.size) for r in rows] == [
            (s.id, s.start, s.end, s.sha256, 2048) for s in made
        ]


async def test_sweep_at_runs_on_the_tests_clock(hub_factory: Any) -> None:
    async with hub_factory(SITE, sweeping=False) as hub:
        await index_footage(hub, "cam-kit", START, 2)
        early = await sweep_at(hub, START + 13 * DAY)
        assert early.segments == 0 and early.plan  # nothing 14 days old yet
        dry = await sweep_at(hub, START + 14 * DAY + HOUR, dry_run=True)
        assert dry.segments == 0
        assert dry.would_destroy["cam-kit:max_age"]["segments"] == 60
        report = await sweep_at(hub, START + 14 * DAY + HOUR)
        assert report.segments == 60 and report.by_policy == {"max_age": 60}
        left = await hub.store.segments("cam-kit")
        assert len(left) == 60 and min(s.start for s in left) == START + HOUR


async def test_without_sweeping_no_background_sweep_races_the_test(hub_factory: Any) -> None:
    """The reason for ``sweeping=False``: the hub's own sweeper, on the real clock,
    would destroy footage indexed twenty days ago as soon as it is woken."""
    async with hub_factory(SITE) as racing:
        await asyncio.wait_for(racing.retention.swept.wait(), 10)
        await index_footage(racing, "cam-kit", START, 0.1)
        racing.retention.swept.clear()
        racing.retention.wake()  # what a released hold or a reload does
        await asyncio.wait_for(racing.retention.swept.wait(), 10)
        assert await racing.store.segments("cam-kit") == []
    async with hub_factory(SITE, sweeping=False) as quiet:
        await index_footage(quiet, "cam-kit", START, 0.1)
        quiet.retention.wake()
        await asyncio.sleep(0.3)
        assert len(await quiet.store.segments("cam-kit")) == 6


class _EveryOther:
    """A third-party policy: the footage of odd-numbered hours may go at once."""

    def __init__(self, hub: Any, options: dict[str, Any]) -> None:
        pass

    async def plan(self, sweep: SweepContext) -> list[Expiry]:
        return [Expiry("cam-kit", START + HOUR, "every_other", "test")]


class _PolicyPlugin:
    @hookimpl
    def register_retention_policies(self, hub: Any) -> list[RetentionPolicySpec]:
        return [RetentionPolicySpec(name="every_other", factory=_EveryOther)]


async def test_a_third_party_policy_tested_with_the_kit(hub_factory: Any) -> None:
    site = {**SITE, "retention": {"policies": [{"policy": "every_other"}]}}
    async with hub_factory(site, plugins=[("kit-policy", _PolicyPlugin())], sweeping=False) as hub:
        await index_footage(hub, "cam-kit", START, 2)
        report = await sweep_at(hub, START + 2 * DAY)
        # only the named policy runs: max_age is not in the list, so the second hour stays
        assert report.by_policy == {"every_other": 60}
        assert len(await hub.store.segments("cam-kit")) == 60


class _VaultKeeper:
    """A third-party policy that preserves the vault camera's footage."""

    def __init__(self, hub: Any, options: dict[str, Any]) -> None:
        pass

    async def plan(self, sweep: SweepContext) -> list[Expiry]:
        store = policy_store(sweep)
        # from the first sweep that sees its footage (not the hub's start-up sweep)
        if "vault-1" in sweep.recorded and not await store.holds("vault"):
            await store.place_hold(
                ["vault-1"], 0.0, FOREVER, kind="vault", ref="v1", reason="vault", actor="keeper"
            )
        return []


class _VaultPlugin:
    @hookimpl
    def register_retention_policies(self, hub: Any) -> list[RetentionPolicySpec]:
        return [RetentionPolicySpec(name="vault_keeper", factory=_VaultKeeper)]


async def test_a_dry_run_simulates_the_holds_a_policy_would_place(hub_factory: Any) -> None:
    """Seen in acceptance: the facade skipped holds in a dry run, so ``would_destroy``
    listed the vault camera's footage, which the real sweep keeps."""
    policies = [{"policy": "max_age", "options": {"max_age": "14d"}}, {"policy": "vault_keeper"}]
    site = {**SITE, "retention": {"policies": policies}}
    async with hub_factory(site, plugins=[("vault", _VaultPlugin())], sweeping=False) as hub:
        vault = await index_footage(hub, "vault-1", START, 1)
        await index_footage(hub, "street-1", START, 1)
        dry = await sweep_at(hub, START + 15 * DAY, dry_run=True)
        assert list(dry.would_destroy) == ["street-1:max_age"]
        assert dry.would_destroy["street-1:max_age"]["segments"] == 60
        # the report says which keeps are simulated, and nothing was written
        (simulated,) = dry.simulated
        assert simulated["action"] == "place" and simulated["camera_id"] == "vault-1"
        assert (simulated["kind"], simulated["ref"], simulated["actor"]) == (
            "vault",
            "v1",
            "keeper",
        )
        assert simulated["segments"] == 60 and simulated["bytes"] == sum(
            s.path.stat().st_size for s in vault
        )
        assert dry.as_dict()["simulated"] == dry.simulated
        assert await hub.store.retention.holds() == []
        assert not any(s.hold for s in await hub.store.segments("vault-1"))
        assert all(s.path.exists() for s in vault)
        real = await sweep_at(hub, START + 15 * DAY)
        assert real.simulated == []
        assert real.segments == dry.would_destroy["street-1:max_age"]["segments"]
        assert await hub.store.segments("street-1") == []
        assert len(await hub.store.segments("vault-1")) == 60


async def test_api_token_opens_the_api_at_its_role(hub_factory: Any) -> None:
    async with hub_factory(web=True) as hub:
        token = await api_token(hub, "auditor")
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            async with session.get(f"{hub.web.url}/api/register/destructions") as resp:
                assert resp.status == 200  # the auditor's
            async with session.get(f"{hub.web.url}/api/recordings/cam-1") as resp:
                assert resp.status == 403  # footage: never the auditor's
        with pytest.raises(ValueError, match="unknown role"):
            await api_token(hub, "root")


async def test_the_registers_csv_over_http_lists_every_destruction(hub_factory: Any) -> None:
    """The web export of the destruction register, read by a real HTTP client: its
    header is the store's column list and each row is one (camera, day, policy)."""
    import csv
    import io

    async with hub_factory(SITE, web=True, sweeping=False) as hub:
        await index_footage(hub, "cam-kit", START, 1)
        report = await sweep_at(hub, START + 15 * DAY)
        assert report.segments == 60
        token = await api_token(hub, "auditor")
        async with (
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session,
            session.get(f"{hub.web.url}/api/register/destructions?format=csv") as resp,
        ):
            assert resp.status == 200 and resp.content_type == "text/csv"
            rows = list(csv.reader(io.StringIO(await resp.text())))
    assert rows[0] == [
        "camera_id",
        "day",
        "policy",
        "segments",
        "bytes",
        "seconds",
        "footage_start",
        "footage_end",
        "first_destroyed_at",
        "last_destroyed_at",
    ]
    (row,) = rows[1:]
    assert (row[0], row[2], row[3]) == ("cam-kit", "max_age", "60")
