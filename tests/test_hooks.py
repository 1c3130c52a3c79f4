"""One test per hook: a plugin implementing it is honoured by a real hub.

The meta-test in test_docs.py fails if a hook lacks its ``test_hook_<name>``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import aiohttp
import pytest
import voluptuous as vol
from aiohttp import web

from csuhub.config import ConfigInvalid
from csuhub.events import CameraDiscovered
from csuhub.hookspecs import hookimpl
from csuhub.protocols import DiscoveredCamera
from csuhub.refs import IncidentRef, LinkedCamera, Location, Priority, WallRef
from csuhub.retention.context import SegmentRef
from csuhub.security.tokens import hash_secret
from csuhub.specs import (
    CallLineSpec,
    ConfigSectionSpec,
    DiscoverySourceSpec,
    RecordingBackendSpec,
    RetentionPolicySpec,
    WallLayoutSpec,
)
from csuhub.testing import build_hub, registered_plugin, wait_camera_state
from csuhub.web.auth import USER_KEY
from csuhub.web.declare import endpoint


class FixedSource:
    def __init__(self, hub: Any, options: dict[str, Any]) -> None:
        self.refs = options["refs"]

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def scan(self, timeout: float) -> AsyncIterator[DiscoveredCamera]:
        for ref in self.refs:
            yield DiscoveredCamera(ref=ref, address="127.0.0.1", source="fixed")


async def test_hook_register_discovery_sources(hub_factory: Any) -> None:
    class Plugin:
        @hookimpl
        def register_discovery_sources(self, hub: Any) -> list[DiscoverySourceSpec]:
            return [
                DiscoverySourceSpec(
                    name="fixed",
                    factory=FixedSource,
                    config_schema=vol.Schema({vol.Required("refs"): [str]}),
                )
            ]

    config = {"discovery": [{"source": "fixed", "options": {"refs": ["urn:x:1", "urn:x:2"]}}]}
    found: list[str] = []
    async with hub_factory(config, plugins=[("fixed", Plugin())]) as hub:
        hub.bus.listen(CameraDiscovered, lambda e: found.append(e.ref))
        count = await hub.discovery.scan_once("fixed", hub.discovery.sources["fixed"], 1.0)
        await hub.bus.drain()
        assert set(hub.discovery.seen) == {"urn:x:1", "urn:x:2"}
    assert "fixed" in hub.registry.discovery_sources
    assert count == 2
    assert found[-2:] == ["urn:x:1", "urn:x:2"]


async def test_hook_register_camera_drivers(hub_factory: Any) -> None:
    """A configured camera is driven by the driver its plugin registered (simcam here)."""
    config = {
        "cameras": [
            {
                "id": "cam-1",
                "driver": "simcam",
                "options": {"width": 160, "height": 96, "clip_seconds": 2},
            }
        ]
    }
    async with hub_factory(config) as hub:
        await wait_camera_state(hub, "cam-1", "online", timeout=30)
        stream = await hub.cameras.drivers["cam-1"].stream()
    assert hub.cameras.states["cam-1"] == "online"
    assert hub.registry.camera_drivers.plugin_of("simcam") == "simcam"
    assert stream.url.endswith(".mp4") and stream.codec == "h264"


def _component_hook_test(hook: str, spec_type: type, attr: str) -> Any:
    def make_plugin() -> object:
        def impl(hub: Any) -> list[Any]:
            return [
                spec_type(name="one", factory=lambda hub, options: object()),
                spec_type(name="two", factory=lambda hub, options: object()),
            ]

        impl.__name__ = hook
        plugin = ModuleType(f"plugin_{hook}")
        setattr(plugin, hook, hookimpl(impl))
        return plugin

    async def check(tmp_path: Any) -> None:
        hub = build_hub(tmp_path, plugins=[("p1", make_plugin())], load_entrypoints=False)
        registry = getattr(hub.registry, attr)
        assert registry.names() == ["one", "two"]
        assert registry.plugin_of("one") == "p1"
        # a second plugin reusing a name is disabled whole, with both names in the reason
        hub2 = build_hub(
            tmp_path / "2",
            plugins=[("p1", make_plugin()), ("p2", make_plugin())],
            load_entrypoints=False,
        )
        assert str(hub2.pm.records["p2"].state) == "failed"
        assert "clashes" in (hub2.pm.records["p2"].reason or "")
        assert getattr(hub2.registry, attr).plugin_of("one") == "p1"

    return check


async def test_hook_register_recording_backends(tmp_path: Any) -> None:
    await _component_hook_test(
        "register_recording_backends", RecordingBackendSpec, "recording_backends"
    )(tmp_path)


async def test_hook_register_retention_policies(tmp_path: Any) -> None:
    await _component_hook_test(
        "register_retention_policies", RetentionPolicySpec, "retention_policies"
    )(tmp_path)


async def test_hook_register_call_lines(tmp_path: Any) -> None:
    await _component_hook_test("register_call_lines", CallLineSpec, "call_lines")(tmp_path)


async def test_hook_register_wall_layouts(tmp_path: Any) -> None:
    await _component_hook_test("register_wall_layouts", WallLayoutSpec, "wall_layouts")(tmp_path)


def test_hook_register_config_schemas(tmp_path: Any) -> None:
    class Plugin:
        @hookimpl
        def register_config_schemas(self, hub: Any) -> list[ConfigSectionSpec]:
            return [
                ConfigSectionSpec(section="sirens", schema=vol.Schema([{vol.Required("id"): str}]))
            ]

    hub = build_hub(
        tmp_path, {"sirens": [{"id": "s1"}]}, plugins=[("sirens", Plugin())], load_entrypoints=False
    )
    assert hub.config.section("sirens") == [{"id": "s1"}]
    try:
        build_hub(
            tmp_path,
            {"sirens": [{"nope": 1}]},
            plugins=[("sirens", Plugin())],
            load_entrypoints=False,
        )
    except ConfigInvalid as err:
        assert any(i.path[:2] == ("sirens", 0) for i in err.issues)
    else:
        raise AssertionError("invalid plugin section accepted")

    class Greedy:
        @hookimpl
        def register_config_schemas(self, hub: Any) -> list[ConfigSectionSpec]:
            return [ConfigSectionSpec(section="cameras", schema=vol.Schema(list))]

    hub = build_hub(tmp_path, plugins=[("greedy", Greedy())], load_entrypoints=False)
    assert "owned by core" in (hub.pm.records["greedy"].reason or "")


async def test_hook_register_web_routes(hub_factory: Any) -> None:
    @endpoint("camera.read")
    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hello": request[USER_KEY]})

    async def undeclared(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    class Plugin:
        @hookimpl
        def register_web_routes(self, hub: Any) -> list[Any]:
            return [web.get("/hello", hello), web.get("/undeclared", undeclared)]

    async with hub_factory(plugins=[("greeter", Plugin())], web=True) as hub:
        await hub.store.create_token("viewer-1", "viewer", hash_secret("csu_viewer"))
        await hub.store.create_token("admin-1", "admin", hash_secret("csu_admin"))
        base = hub.web.url
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/plugins/greeter/hello") as resp:
                assert resp.status == 401
            headers = {"Authorization": "Bearer csu_viewer"}
            async with session.get(f"{base}/plugins/greeter/hello", headers=headers) as resp:
                assert resp.status == 200
                assert await resp.json() == {"hello": "viewer-1"}
            # a route that declares no permission is refused to everyone, admin included
            for who in ("csu_viewer", "csu_admin"):
                async with session.get(
                    f"{base}/plugins/greeter/undeclared", headers={"Authorization": f"Bearer {who}"}
                ) as resp:
                    assert resp.status == 403
                    assert "declares no permission" in (await resp.json())["error"]
            async with session.get(
                f"{base}/plugins/greeter/hello", headers={"Authorization": "Bearer wrong"}
            ) as resp:
                assert resp.status == 401


async def test_hook_driver_for_discovery(hub_factory: Any) -> None:
    class Acme:
        @hookimpl
        def driver_for_discovery(self, hub: Any, camera: DiscoveredCamera) -> str | None:
            return "acme" if camera.info.get("manufacturer") == "ACME" else None

    class AsyncBroken:
        @hookimpl(tryfirst=True)
        async def driver_for_discovery(self, hub: Any, camera: DiscoveredCamera) -> str:
            return "never"

    async with hub_factory(plugins=[("acme", Acme()), ("bad", AsyncBroken())]) as hub:
        acme = DiscoveredCamera(
            ref="r1", address="127.0.0.1", source="t", info={"manufacturer": "ACME"}
        )
        sim = DiscoveredCamera(ref="urn:csuhub:simcam:1", address="127.0.0.1", source="t")
        other = DiscoveredCamera(ref="r3", address="127.0.0.1", source="t")
        # the async implementation is ignored rather than "winning" with a coroutine
        assert hub.driver_for(acme) == "acme"
        assert hub.driver_for(sim) == "simcam"
        assert hub.driver_for(other) is None


async def test_hook_retention_hold(hub_factory: Any) -> None:
    class Holder:
        @hookimpl
        def retention_hold(self, hub: Any, segment: SegmentRef) -> str | None:
            return "requisition PV-42" if segment.camera_id == "cam-1" else None

    class Raising:
        @hookimpl(tryfirst=True)
        def retention_hold(self, hub: Any, segment: SegmentRef) -> str | None:
            raise RuntimeError("broken plugin")

    one = SegmentRef(1, "cam-1", 0.0, 60.0, "cam-1/a.mp4", "max_age")
    two = SegmentRef(2, "cam-2", 0.0, 60.0, "cam-2/a.mp4", "max_age")
    async with hub_factory() as hub:
        assert hub.hold_reason(one) is None
        with registered_plugin(hub, Holder()):
            assert hub.hold_reason(one) == "requisition PV-42"
            assert hub.hold_reason(two) is None
            with registered_plugin(hub, Raising()):
                # fail closed: a plugin that cannot answer keeps the segment, saying why
                for segment in (one, two):
                    reason = hub.hold_reason(segment)
                    assert reason is not None
                    assert "fail closed" in reason and "broken plugin" in reason
                decision = hub.hold_decision(two)
                assert decision.failed and decision.answer is None
        assert hub.hold_reason(one) is None
        # the argument is typed: the dict a test once passed (with 'camera' for
        # 'camera_id') is refused, not silently answered
        with pytest.raises(TypeError, match="SegmentRef"):
            hub.hold_reason({"camera": "cam-1"})
        with pytest.raises(TypeError):
            SegmentRef(id=1, camera="cam-1", start=0, end=1, path="x", policy="p")  # type: ignore[call-arg]


async def test_hook_layout_for_incident(hub_factory: Any) -> None:
    class Spotlight:
        @hookimpl
        def layout_for_incident(self, hub: Any, incident: IncidentRef, wall: WallRef) -> str | None:
            if incident.priority >= Priority.HIGH and "spotlight" in wall.layouts:
                return "spotlight"
            return None

    class Fallback:
        @hookimpl(trylast=True)
        def layout_for_incident(self, hub: Any, incident: IncidentRef, wall: WallRef) -> str | None:
            return wall.screen.layout

    wall = WallRef.from_config(
        {
            "id": "main",
            "name": "Main wall",
            "screens": [
                {"id": "s1", "layout": "grid", "cameras": ["cam-1"]},
                {"id": "s2", "layout": "1+5"},
            ],
        },
        "s2",
        layouts=["spotlight", "grid", "1+5"],
    )
    high = IncidentRef(
        id=7,
        category="fight",
        priority=Priority.HIGH,
        opened_at=1_700_000_000.0,
        location=Location(lat=50.6365, lon=3.0635, radius_m=30.0, address="Grand Place, Lille"),
        cameras=(LinkedCamera("cam-1", 42.0, "nearest"),),
    )
    low = IncidentRef(id=8, category="noise", priority=Priority.LOW, opened_at=1_700_000_000.0)
    async with hub_factory(plugins=[("spot", Spotlight()), ("fallback", Fallback())]) as hub:
        assert hub.layout_for(high, wall) == "spotlight"
        assert hub.layout_for(low, wall) == "1+5"
    assert wall.screen.id == "s2" and [s.id for s in wall.screens] == ["s1", "s2"]
    assert wall.layouts == ("1+5", "grid", "spotlight")
    assert high.camera_ids == ("cam-1",) and str(high.priority) == "high"


def test_incident_and_wall_refs_are_frozen_and_checked() -> None:
    """What once passed as a dict is refused at construction, not at a plugin's
    first read of a missing key in production."""
    incident = IncidentRef(id=1, category="fire", priority=Priority.CRITICAL, opened_at=0.0)
    with pytest.raises(AttributeError):
        incident.priority = Priority.LOW  # type: ignore[misc]
    with pytest.raises(TypeError):
        IncidentRef(id=1, category="fire", priority="high", opened_at=0.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        IncidentRef(1, "fire", Priority.LOW, 0.0, cameras=["cam-1"])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        IncidentRef(1, "fire", Priority.LOW, 0.0, location={"lat": 1})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="both lat and lon"):
        Location(lat=50.0)
    with pytest.raises(ValueError, match="lat"):
        Location(lat=91.0, lon=0.0)
    with pytest.raises(ValueError, match="radius_m"):
        Location(lat=50.0, lon=3.0, radius_m=-1.0)
    with pytest.raises(ValueError, match="missing"):
        Location(radius_m=10.0, address="somewhere")
    assert not Location(address="12 rue Nationale").has_point
    assert Priority.CRITICAL > Priority.HIGH > Priority.NORMAL > Priority.LOW
    wall = {"id": "w", "screens": [{"id": "s", "layout": "grid"}]}
    with pytest.raises(KeyError, match="no screen"):
        WallRef.from_config(wall, "missing")
    with pytest.raises(TypeError):
        WallRef(id="w", screen={"id": "s"})  # type: ignore[arg-type]
    assert not hasattr(incident, "__dict__")  # slots: no stray attribute can be set


async def test_hook_hub_configure(hub_factory: Any) -> None:
    calls: list[str] = []

    class Early:
        @hookimpl
        def hub_configure(self, hub: Any) -> None:
            calls.append(f"early:{hub.name}")

    class Broken:
        @hookimpl
        def hub_configure(self, hub: Any) -> None:
            raise RuntimeError("cannot configure")

    class Late:
        @hookimpl
        def hub_configure(self, hub: Any) -> None:
            calls.append("late")

    async with hub_factory(plugins=[("early", Early()), ("broken", Broken())]) as hub:
        assert calls == ["early:test-hub"]
        assert str(hub.pm.records["broken"].state) == "failed"
        assert hub.state == "running"
        with registered_plugin(hub, Late(), "late"):
            assert calls == ["early:test-hub", "late"]  # historic: replayed to late plugins


async def test_hook_hub_lifespan(hub_factory: Any) -> None:
    order: list[str] = []

    def make(name: str) -> object:
        class Plugin:
            @hookimpl
            def hub_lifespan(self, hub: Any) -> Any:
                @contextlib.asynccontextmanager
                async def span() -> AsyncIterator[None]:
                    order.append(f"enter:{name}")
                    yield
                    order.append(f"exit:{name}")

                return span()

        return Plugin()

    class Failing:
        @hookimpl
        def hub_lifespan(self, hub: Any) -> Any:
            @contextlib.asynccontextmanager
            async def span() -> AsyncIterator[None]:
                raise OSError("device busy")
                yield

            return span()

    async with hub_factory(
        plugins=[("a", make("a")), ("bad", Failing()), ("b", make("b"))], load_entrypoints=False
    ) as hub:
        assert str(hub.pm.records["bad"].state) == "failed"
        assert "device busy" in (hub.pm.records["bad"].reason or "")
        entered = list(order)
    assert sorted(entered) == ["enter:a", "enter:b"]
    # exits run in reverse order of entry
    assert order[2:] == [f"exit:{entered[1][6:]}", f"exit:{entered[0][6:]}"]
