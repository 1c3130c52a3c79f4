"""The kept answers of authenticated reads (``csuhub.web.cache``) are never
stale: a token revoked, an account disabled or its role taken, a camera's
state written, footage indexed, damaged or destroyed by retention is seen by
the very next request, whether this hub or another process committed it.
Real hub, real HTTP, real SQLite; the CLI revokes from its own process."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from hypothesis import given, settings
from hypothesis import strategies as st

from csuhub.hub import DATABASE
from csuhub.security.tokens import hash_secret, new_secret
from csuhub.store.sqlite import Store
from csuhub.testing import api_token, index_footage, sweep_at
from csuhub.web.cache import Kept, current_version, probe_of

DAY = 86400.0


async def _get(url: str, token: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http,
        http.get(url) as resp,
    ):
        return resp.status, await resp.json()


async def _cameras(hub: Any, token: str) -> dict[str, dict[str, Any]]:
    status, body = await _get(f"{hub.web.url}/api/cameras", token)
    assert status == 200, body
    return {c["id"]: c for c in body["cameras"]}


async def _add_cameras(hub: Any, districts: dict[str, str]) -> None:
    for camera_id, district in districts.items():
        await hub.store.upsert_camera(
            camera_id,
            name=camera_id,
            driver="onvif",
            state="discovered",
            origin="discovered",
            location={"district": district, "lat": 43.6, "lon": 3.9},
        )


async def _person_token(hub: Any, name: str, role: str, scope: list[str]) -> str:
    await hub.store.users.add(
        name, kind="person", roles=[role], scope=scope, password_hash=None, now=time.time()
    )
    secret = new_secret()
    await hub.store.create_token(f"{name}-tok", role, hash_secret(secret), user=name)
    return secret


async def test_a_token_stops_at_the_next_request_after_revoke_disable_or_role_change(
    hub_factory: Any,
) -> None:
    async with hub_factory(web=True) as hub:
        await _add_cameras(hub, {"cam-a": "north"})
        url = f"{hub.web.url}/api/cameras"
        kiosk = await api_token(hub, "viewer", name="kiosk")
        for _ in range(3):  # read, then kept
            assert (await _get(url, kiosk))[0] == 200
        await hub.store.revoke_token("kiosk")
        assert (await _get(url, kiosk))[0] == 401

        nina = await _person_token(hub, "nina", "operator", ["*"])
        assert (await _get(url, nina))[0] == 200
        await hub.store.users.disable("nina", time.time())
        assert (await _get(url, nina))[0] == 401
        await hub.store.users.enable("nina", time.time())
        assert (await _get(url, nina))[0] == 200

        # the account loses the token's role: the token has no permission left
        await hub.store.users.set_grants("nina", ["auditor"], ["*"], time.time())
        assert (await _get(url, nina))[0] == 403


async def test_a_token_revoked_by_the_cli_in_another_process_stops_at_once(
    hub_factory: Any, cli_env: dict[str, str]
) -> None:
    async with hub_factory(web=True) as hub:
        url = f"{hub.web.url}/api/cameras"
        cad = await api_token(hub, "viewer", name="cad")
        assert (await _get(url, cad))[0] == 200
        assert (await _get(url, cad))[0] == 200
        done = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "csuhub",
                "tokens",
                "revoke",
                "cad",
                "--data",
                str(hub.data_dir),
            ],
            capture_output=True,
            text=True,
            env=cli_env,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert (await _get(url, cad))[0] == 401  # no waiting: the commit is seen


async def test_the_camera_list_follows_every_register_write(hub_factory: Any) -> None:
    async with hub_factory(web=True) as hub:
        await _add_cameras(hub, {"cam-a": "north", "cam-b": "south"})
        admin = await api_token(hub, "admin")
        assert set(await _cameras(hub, admin)) == {"cam-a", "cam-b"}
        await _cameras(hub, admin)  # kept
        await hub.store.set_camera_state("cam-a", "offline", "cable cut")
        listed = await _cameras(hub, admin)
        assert (listed["cam-a"]["state"], listed["cam-a"]["state_reason"]) == (
            "offline",
            "cable cut",
        )
        await _add_cameras(hub, {"cam-c": "north"})
        assert set(await _cameras(hub, admin)) == {"cam-a", "cam-b", "cam-c"}
        await hub.store.delete_camera("cam-b")
        assert set(await _cameras(hub, admin)) == {"cam-a", "cam-c"}
        status, one = await _get(f"{hub.web.url}/api/cameras/cam-b", admin)
        assert status == 404
        # another process writes the register (the CLI's adoption, say)
        with sqlite3.connect(hub.data_dir / DATABASE) as conn:
            conn.execute(
                "UPDATE cameras SET authorization_status='expired', name='Gare' WHERE id='cam-c'"
            )
        listed = await _cameras(hub, admin)
        assert listed["cam-c"]["name"] == "Gare"
        assert listed["cam-c"]["authorization"]["status"] == "expired"
        status, one = await _get(f"{hub.web.url}/api/cameras/cam-c", admin)
        assert (status, one["name"]) == (200, "Gare")


async def test_each_scope_gets_its_own_list(hub_factory: Any) -> None:
    async with hub_factory(web=True) as hub:
        await _add_cameras(hub, {"cam-n1": "north", "cam-n2": "north", "cam-s1": "south"})
        admin = await api_token(hub, "admin")
        north = await _person_token(hub, "nord", "operator", ["district:north"])
        south = await _person_token(hub, "sud", "operator", ["district:south"])
        for _ in range(2):
            assert set(await _cameras(hub, admin)) == {"cam-n1", "cam-n2", "cam-s1"}
            assert set(await _cameras(hub, north)) == {"cam-n1", "cam-n2"}
            assert set(await _cameras(hub, south)) == {"cam-s1"}
        # the scope changes: the list with it
        await hub.store.users.set_grants("sud", ["operator"], ["district:north"], time.time())
        assert set(await _cameras(hub, south)) == {"cam-n1", "cam-n2"}


async def test_the_recording_flags_are_the_managers_at_each_request(hub_factory: Any) -> None:
    """``recording_allowed`` comes from the camera manager's memory, which can
    change without a write to the store: it is asked at every request."""
    async with hub_factory(web=True) as hub:
        await _add_cameras(hub, {"cam-a": "north"})
        admin = await api_token(hub, "admin")
        before = (await _cameras(hub, admin))["cam-a"]
        assert before["recording_blocked_reason"] == "not adopted"
        may_record = hub.cameras.may_record
        hub.cameras.may_record = lambda camera_id: (False, "disabled")  # type: ignore[method-assign]
        try:
            after = (await _cameras(hub, admin))["cam-a"]
        finally:
            hub.cameras.may_record = may_record  # type: ignore[method-assign]
        assert after["recording_blocked_reason"] == "disabled"
        assert (await _cameras(hub, admin))["cam-a"]["recording_blocked_reason"] == "not adopted"


async def test_a_closed_timeline_follows_indexing_damage_and_retention(
    hub_factory: Any,
) -> None:
    async with hub_factory(web=True, sweeping=False) as hub:
        day = (time.time() // DAY - 3) * DAY
        token = await api_token(hub, "admin")
        first = await index_footage(hub, "cam-a", day, 1)
        await index_footage(hub, "cam-a", day + 7200, 1)
        url = f"{hub.web.url}/api/recordings/cam-a?from={day}&to={day + 10800}"
        gaps_url = f"{hub.web.url}/api/recordings/cam-a/gaps?from={day}&to={day + 10800}"
        for _ in range(2):
            status, seen = await _get(url, token)
            assert status == 200 and len(seen["segments"]) == 120
            assert [(g["start"], g["end"]) for g in seen["gaps"]] == [(day + 3600, day + 7200)]
            status, report = await _get(gaps_url, token)
            assert status == 200 and report["recorded_s"] == 7200
            assert abs(report["now"] - time.time()) < 5  # the request's, even when kept
        # late indexing fills the hole (a reconciliation after a crash, say)
        await index_footage(hub, "cam-a", day + 3600, 1)
        status, seen = await _get(url, token)
        assert len(seen["segments"]) == 180 and seen["gaps"] == [] and seen["percent"] == 100
        assert (await _get(gaps_url, token))[1]["recorded_s"] == 10800
        # a segment found damaged
        await hub.store.set_segment_status([first[0].id], "corrupt")
        status, seen = await _get(url, token)
        assert [g["state"] for g in seen["gaps"]] == ["damaged"]
        # retention destroys it all (as if 40 days had passed)
        await sweep_at(hub, day + 40 * DAY)
        status, seen = await _get(url, token)
        assert seen["segments"] == [] and {g["state"] for g in seen["gaps"]} == {"destroyed"}
        assert (await _get(gaps_url, token))[1]["destroyed_s"] == 10800


async def test_a_timeline_reaching_the_present_is_never_kept(hub_factory: Any) -> None:
    async with hub_factory(web=True) as hub:
        await _add_cameras(hub, {"cam-a": "north"})
        token = await api_token(hub, "admin")
        end = time.time() + 3600
        url = f"{hub.web.url}/api/recordings/cam-a?from={end - 7200}&to={end}"
        first = (await _get(url, token))[1]["future_s"]
        await asyncio.sleep(0.3)
        second = (await _get(url, token))[1]["future_s"]
        assert first > second > 0  # the clock moved, and the answer with it


async def test_the_version_changes_with_every_commit_from_any_connection(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / DATABASE)
    await store.open()
    try:
        before = await current_version(store)
        assert before is not None
        assert await current_version(store) == before  # reads change nothing
        await store.set_meta("k", "v")  # the hub's own connection
        mine = await current_version(store)
        assert mine != before
        with sqlite3.connect(tmp_path / DATABASE) as conn:  # another connection
            conn.execute("INSERT INTO meta(key, value) VALUES('k2', 'v')")
        theirs = await current_version(store)
        assert theirs not in (before, mine)
        # callers arriving together share one trip to the store's thread
        probe = probe_of(store)
        since = time.monotonic()
        versions = await asyncio.gather(*(probe.version(since) for _ in range(20)))
        assert set(versions) == {theirs}
    finally:
        await store.close()
    assert await current_version(store) is None  # closed: nothing is served as kept


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["put", "get"]),
            st.integers(0, 5),  # key
            st.integers(0, 2),  # version
            st.integers(0, 40),  # size
        ),
        max_size=60,
    )
)
def test_kept_values_stay_within_bounds_and_versions(ops: list[tuple[str, int, int, int]]) -> None:
    kept: Kept[str] = Kept(entries=3, size=50)
    for op, key, version, size in ops:
        v = (None, version, 0)
        if op == "put":
            kept.put(key, v, f"{key}@{version}", size)
            if size <= 50:
                assert kept.get(key, v) == f"{key}@{version}"
        else:
            found = kept.get(key, v)
            assert found is None or found == f"{key}@{version}"
        assert len(kept) <= 3
        assert kept._used <= 50


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["info", "options", "location", "device"]),
        st.dictionaries(st.text(max_size=6), _JSON, max_size=3),
    ),
    st.sampled_from([None, "ref-1"]),
)
def test_the_register_reads_back_what_was_written(
    tmp_path_factory: Any, objects: dict[str, dict[str, Any]], ref: str | None
) -> None:
    """Rows are read as tuples into ``CameraRow`` by position, empty objects unparsed."""

    async def roundtrip() -> None:
        store = Store(tmp_path_factory.mktemp("register") / DATABASE)
        await store.open()
        try:
            await store.upsert_camera(
                "cam-a", name="A", driver="onvif", state="adopted", ref=ref, **objects
            )
            await store.upsert_camera("cam-b", name="B", driver="rtsp", state="discovered")
            row = await store.get_camera("cam-a")
            assert row is not None and row.ref == ref and row.name == "A"
            for column in ("info", "options", "location", "device"):
                assert getattr(row, column) == objects.get(column, {})
            assert [r.id for r in await store.list_cameras()] == ["cam-a", "cam-b"]
            assert (await store.list_cameras())[0] == row
            if ref is not None:
                assert await store.camera_by_ref(ref) == row
            assert (await store.get_camera("cam-b")).info == {}  # type: ignore[union-attr]
        finally:
            await store.close()

    asyncio.run(roundtrip())


async def test_each_cameras_footage_version_counts_its_own_writes(hub_factory: Any) -> None:
    async with hub_factory(sweeping=False) as hub:
        index = hub.store.segment_index
        day = (time.time() // DAY - 3) * DAY
        seen: list[int] = []

        async def changed() -> bool:
            seen.append(await index.footage_version("cam-a"))
            return len(seen) == 1 or seen[-1] > seen[-2]

        assert await changed()
        await _add_cameras(hub, {"cam-a": "north"})
        assert await changed()
        (first,) = await index_footage(hub, "cam-a", day, 1 / 60)
        assert await changed()
        await hub.store.add_gap("cam-a", day + 60, day + 120, "camera offline")
        assert await changed()
        await hub.store.set_segment_status([first.id], "corrupt")
        assert await changed()
        # another camera's footage, its state: not this camera's version
        await index_footage(hub, "cam-b", day, 1 / 60)
        await hub.store.set_camera_state("cam-a", "offline", "cable cut")
        assert not await changed()
        await sweep_at(hub, day + 40 * DAY)  # destroyed and registered
        assert await changed()
        await hub.store.delete_camera("cam-a")
        assert await changed()


async def test_a_kept_timeline_outlives_other_cameras_writes_not_its_own(
    hub_factory: Any,
) -> None:
    """Recording cameras commit every few seconds: a closed range's answer is
    checked against its own camera's footage version, not rebuilt at each commit."""
    from csuhub.web.recordings import _kept

    async with hub_factory(web=True, sweeping=False) as hub:
        day = (time.time() // DAY - 3) * DAY
        token = await api_token(hub, "admin")
        await index_footage(hub, "cam-a", day, 1)
        url = f"{hub.web.url}/api/recordings/cam-a?from={day}&to={day + 7200}"
        key = ("timeline", "cam-a", day, day + 7200)
        first = (await _get(url, token))[1]
        kept = _kept(hub).peek(key)
        assert kept is not None
        await index_footage(hub, "cam-b", day, 1)  # the database changes, not cam-a's footage
        assert (await _get(url, token))[1] == first
        again = _kept(hub).peek(key)
        assert again is not None and again[1] is kept[1] and again[0] != kept[0]
        # its own gap, recorded late (the hub was down), is seen at once
        await hub.store.add_gap("cam-a", day + 3600, day + 7200, "hub down")
        seen = (await _get(url, token))[1]
        assert [g["reason"] for g in seen["gaps"]] == ["hub down"]
        # a camera only the register knew: forgotten, it is unknown again
        await _add_cameras(hub, {"cam-x": "north"})
        x_url = f"{hub.web.url}/api/recordings/cam-x?from={day}&to={day + 3600}"
        assert (await _get(x_url, token))[0] == 200
        assert (await _get(x_url, token))[0] == 200
        await hub.store.delete_camera("cam-x")
        assert (await _get(x_url, token))[0] == 404
