"""Factories and selectors go through pluggy, one plugin at a time.

Wrapper hookimpls wrap each plugin's answer and may change it; ``pm.trace`` and
hook-call monitoring see every call; a plugin or a wrapper that raises is
isolated; a fail-closed selector stays closed whoever raised.
"""

from __future__ import annotations

import inspect
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy

from csuhub import hookspecs
from csuhub.hookcalls import PluginCallError
from csuhub.hookspecs import hookimpl
from csuhub.plugins import UNHASHABLE, PluginState, make_plugin_manager
from csuhub.protocols import DiscoveredCamera
from csuhub.retention.context import SegmentRef
from csuhub.selectors import POLICY_ATTR, SelectorPolicy, select
from csuhub.specs import WallLayoutSpec
from csuhub.testing import build_hub, registered_plugin

SEGMENT = SegmentRef(1, "cam-1", 0.0, 60.0, "cam-1/a.mp4", "max_age")
CAMERA = DiscoveredCamera(ref="r1", address="127.0.0.1", source="t")


def _layouts(*names: str) -> object:
    class Layouts:
        @hookimpl
        def register_wall_layouts(self, hub: Any) -> list[WallLayoutSpec]:
            return [WallLayoutSpec(name=n, factory=lambda hub, options: object()) for n in names]

    return Layouts()


class Raising:
    @hookimpl
    def register_wall_layouts(self, hub: Any) -> list[WallLayoutSpec]:
        raise RuntimeError("broken factory")


def _collect(pm: Any, hook: str) -> tuple[list[tuple[str, Any]], list[PluginCallError]]:
    """Drain ``call_each`` the way the hub does: errors are raised and the round goes on."""
    results: list[tuple[str, Any]] = []
    errors: list[PluginCallError] = []
    each = pm.call_each(hook, hub=None)
    while True:
        try:
            results.append(next(each))
        except StopIteration:
            return results, errors
        except PluginCallError as err:
            errors.append(err)


# --- factories ---------------------------------------------------------------


def test_a_wrapper_around_a_factory_sees_and_changes_each_plugins_answer(tmp_path: Path) -> None:
    seen: list[list[str]] = []

    class Renamer:
        @hookimpl(wrapper=True)
        def register_wall_layouts(self, hub: Any) -> Generator[None, Any, Any]:
            results = yield
            seen.append([spec.name for specs in results for spec in specs])
            return [[WallLayoutSpec(name=f"{s.name}-x", factory=s.factory) for s in results[0]]]

    hub = build_hub(
        tmp_path,
        plugins=[("a", _layouts("grid")), ("b", _layouts("spot")), ("w", Renamer())],
        load_entrypoints=False,
    )
    assert sorted(seen) == [["grid"], ["spot"]]  # once per plugin, each answer alone
    assert hub.registry.wall_layouts.names() == ["grid-x", "spot-x"]
    # the specs are still registered under the plugin that gave them
    assert hub.registry.wall_layouts.plugin_of("grid-x") == "a"


def test_an_old_style_hookwrapper_is_called_too() -> None:
    calls: list[str] = []

    class Old:
        @hookimpl(hookwrapper=True)
        def register_wall_layouts(self, hub: Any) -> Generator[None, Any, None]:
            calls.append("before")
            yield
            calls.append("after")

    pm = make_plugin_manager(
        load_entrypoints=False, plugins=[("a", _layouts("grid")), ("old", Old())]
    )
    results, errors = _collect(pm, "register_wall_layouts")
    assert [name for name, _ in results] == ["a"] and not errors
    assert calls == ["before", "after"]


def test_a_raising_factory_is_isolated_and_the_plugins_after_it_still_answer() -> None:
    pm = make_plugin_manager(
        load_entrypoints=False,
        plugins=[("a", _layouts("grid")), ("bad", Raising()), ("c", _layouts("spot"))],
    )
    results, errors = _collect(pm, "register_wall_layouts")
    assert [name for name, _ in results] == ["a", "c"]
    assert [(e.plugin, e.by_wrapper) for e in errors] == [("bad", False)]
    assert "broken factory" in str(errors[0])


def test_a_raising_wrapper_is_blamed_and_left_out_not_the_plugin_it_wraps() -> None:
    class BadWrapper:
        @hookimpl(wrapper=True)
        def register_wall_layouts(self, hub: Any) -> Generator[None, Any, Any]:
            yield
            raise ValueError("wrapper bug")

    pm = make_plugin_manager(
        load_entrypoints=False,
        plugins=[("a", _layouts("grid")), ("b", _layouts("spot")), ("w", BadWrapper())],
    )
    results, errors = _collect(pm, "register_wall_layouts")
    assert [(e.plugin, e.by_wrapper) for e in errors] == [("w", True)]
    # the wrapped plugin was asked again without the wrapper, and so was the next one
    assert [name for name, _ in results] == ["a", "b"]


def test_a_wrapper_that_lets_an_error_through_does_not_take_the_blame() -> None:
    class Passive:
        @hookimpl(wrapper=True)
        def register_wall_layouts(self, hub: Any) -> Generator[None, Any, Any]:
            return (yield)

    pm = make_plugin_manager(load_entrypoints=False, plugins=[("bad", Raising()), ("w", Passive())])
    _, errors = _collect(pm, "register_wall_layouts")
    assert [(e.plugin, e.by_wrapper) for e in errors] == [("bad", False)]


def test_a_hub_disables_a_raising_factory_and_keeps_the_others(tmp_path: Path) -> None:
    hub = build_hub(
        tmp_path,
        plugins=[("a", _layouts("grid")), ("bad", Raising()), ("c", _layouts("spot"))],
        load_entrypoints=False,
    )
    assert hub.pm.records["bad"].state is PluginState.FAILED
    assert hub.registry.wall_layouts.names() == ["grid", "spot"]


def test_monitoring_and_tracing_see_factory_calls() -> None:
    pm = make_plugin_manager(
        load_entrypoints=False, plugins=[("a", _layouts("grid")), ("b", _layouts("spot"))]
    )
    before: list[tuple[str, list[str]]] = []
    undo = pm.add_hookcall_monitoring(
        lambda hook, impls, kwargs: before.append((hook, [i.plugin_name for i in impls])),
        lambda outcome, hook, impls, kwargs: None,
    )
    _collect(pm, "register_wall_layouts")
    undo()
    assert before == [("register_wall_layouts", ["a"]), ("register_wall_layouts", ["b"])]

    written: list[str] = []
    pm.trace.root.setwriter(written.append)
    undo = pm.enable_tracing()
    _collect(pm, "register_wall_layouts")
    undo()
    assert sum("register_wall_layouts" in line for line in written) >= 2


# --- selectors -----------------------------------------------------------------


class Driver:
    @hookimpl
    def driver_for_discovery(self, hub: Any, camera: DiscoveredCamera) -> str | None:
        return None


class Hold:
    @hookimpl
    def retention_hold(self, hub: Any, segment: SegmentRef) -> str | None:
        return None


def test_a_wrapper_around_a_selector_sees_and_changes_the_answer() -> None:
    seen: list[Any] = []

    class Default:
        @hookimpl(wrapper=True)
        def driver_for_discovery(
            self, hub: Any, camera: DiscoveredCamera
        ) -> Generator[None, Any, Any]:
            answer = yield
            seen.append(answer)
            return answer or "rtsp"

    pm = make_plugin_manager(load_entrypoints=False, plugins=[("d", Driver()), ("w", Default())])
    selection = select(pm, "driver_for_discovery", {"hub": None, "camera": CAMERA})
    assert (selection.answer, selection.plugin) == ("rtsp", "d")
    assert seen == [None]
    # what the wrapper returns is checked like any answer
    assert not selection.failed


def test_monitoring_sees_selector_calls() -> None:
    pm = make_plugin_manager(load_entrypoints=False, plugins=[("h", Hold())])
    hooks: list[str] = []
    undo = pm.add_hookcall_monitoring(
        lambda hook, impls, kwargs: hooks.append(hook), lambda *args: None
    )
    select(pm, "retention_hold", {"hub": None, "segment": SEGMENT})
    undo()
    assert hooks == ["retention_hold"]


def test_a_raising_wrapper_on_a_pass_selector_is_left_out() -> None:
    class Acme:
        @hookimpl
        def driver_for_discovery(self, hub: Any, camera: DiscoveredCamera) -> str | None:
            return "acme"

    class BadWrapper:
        @hookimpl(wrapper=True)
        def driver_for_discovery(
            self, hub: Any, camera: DiscoveredCamera
        ) -> Generator[None, Any, Any]:
            yield
            raise ValueError("wrapper bug")

    pm = make_plugin_manager(
        load_entrypoints=False, plugins=[("acme", Acme()), ("w", BadWrapper())]
    )
    selection = select(pm, "driver_for_discovery", {"hub": None, "camera": CAMERA})
    assert (selection.answer, selection.plugin, selection.failed) == ("acme", "acme", False)


async def test_retention_hold_fails_closed_on_a_raising_plugin_or_wrapper(
    hub_factory: Any,
) -> None:
    class Raising:
        @hookimpl
        def retention_hold(self, hub: Any, segment: SegmentRef) -> str | None:
            raise RuntimeError("broken hold")

    class BadWrapper:
        @hookimpl(wrapper=True)
        def retention_hold(self, hub: Any, segment: SegmentRef) -> Generator[None, Any, Any]:
            yield
            raise ValueError("wrapper bug")

    class Swallower:
        """Turns every failure into "no objection": the hub must not believe it."""

        @hookimpl(wrapper=True)
        def retention_hold(self, hub: Any, segment: SegmentRef) -> Generator[None, Any, Any]:
            try:
                return (yield)
            except Exception:
                return None

    async with hub_factory(load_entrypoints=False) as hub:
        with registered_plugin(hub, Hold(), "hold"):
            assert hub.hold_reason(SEGMENT) is None
            with registered_plugin(hub, Raising(), "raising"):
                decision = hub.hold_decision(SEGMENT)
                assert decision.failed and decision.plugin == "raising"
                assert "broken hold" in (decision.keep_reason("retention_hold") or "")
            with registered_plugin(hub, BadWrapper(), "wrapper"):
                decision = hub.hold_decision(SEGMENT)
                assert decision.failed and decision.plugin == "wrapper"
                assert "wrapper bug" in (decision.error or "")
            with registered_plugin(hub, Swallower(), "swallow"):
                assert hub.hold_reason(SEGMENT) is None  # nothing failed: no objection
                with registered_plugin(hub, Raising(), "raising"):
                    # the wrapper hid the raise, so the hold is a plain "no objection";
                    # that is the wrapper author's decision, and it is theirs alone
                    assert hub.hold_decision(SEGMENT).failed is False


# --- declarations --------------------------------------------------------------


def _specs() -> dict[str, Any]:
    return {
        name: function
        for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(function, f"{hookspecs.PROJECT}_spec")
    }


def test_every_selector_hookspec_declares_its_failure_policy() -> None:
    firstresult = {
        name
        for name, function in _specs().items()
        if getattr(function, f"{hookspecs.PROJECT}_spec").get("firstresult")
    }
    declared = {n for n, f in _specs().items() if hasattr(f, POLICY_ATTR)}
    assert firstresult, "no selector found: the meta-test would pass vacuously"
    assert firstresult - declared == set(), "firstresult hooks without @selector(...)"
    assert declared - firstresult == set(), "@selector on a hook that is not firstresult"
    for name in declared:
        assert isinstance(getattr(_specs()[name], POLICY_ATTR), SelectorPolicy), name


def test_no_hook_argument_is_untyped() -> None:
    """Hook arguments are dataclasses or protocols, never ``Any`` nor a dict."""
    for name, function in _specs().items():
        for parameter in inspect.signature(function).parameters.values():
            assert parameter.annotation is not inspect.Parameter.empty, (name, parameter.name)
            annotation = str(parameter.annotation)
            assert annotation not in ("Any", "dict", "object"), (name, parameter.name)
            assert not annotation.startswith("dict["), (name, parameter.name)


def test_an_unhashable_plugin_is_refused_with_its_reason() -> None:
    @dataclass
    class Unhashable:  # eq=True drops __hash__
        label: str = "x"

        @hookimpl
        def driver_for_discovery(self, hub: Any, camera: DiscoveredCamera) -> str | None:
            return "never"

    pm = make_plugin_manager(load_entrypoints=False, plugins=[("u", Unhashable())])
    record = pm.records["u"]
    assert record.state is PluginState.FAILED and record.reason == UNHASHABLE
    assert pm.get_plugin("u") is None
    assert isinstance(pm, pluggy.PluginManager)


def test_a_hook_nobody_answers_is_not_called() -> None:
    pm = make_plugin_manager(load_entrypoints=False)
    called: list[str] = []
    pm.add_hookcall_monitoring(lambda hook, *a: called.append(hook), lambda *a: None)
    assert select(pm, "driver_for_discovery", {"hub": None, "camera": CAMERA}).answer is None
    assert _collect(pm, "register_wall_layouts") == ([], [])
    assert called == []


def test_plugins_coming_and_going_are_seen_by_the_next_call() -> None:
    """How each plugin is asked is worked out once per set of implementations."""

    def driver(answer: str) -> object:
        class Answering:
            @hookimpl
            def driver_for_discovery(self, hub: Any, camera: DiscoveredCamera) -> str:
                return answer

        return Answering()

    pm = make_plugin_manager(load_entrypoints=False, plugins=[("a", driver("a"))])
    kwargs = {"hub": None, "camera": CAMERA}
    assert select(pm, "driver_for_discovery", kwargs).answer == "a"
    plan = pm.call_plans["driver_for_discovery"]
    assert select(pm, "driver_for_discovery", kwargs).answer == "a"
    assert pm.call_plans["driver_for_discovery"] is plan  # reused
    pm.register_plugin(driver("b"), "b")
    assert select(pm, "driver_for_discovery", kwargs).answer == "b"  # last registered first
    pm.unregister(name="b")
    assert select(pm, "driver_for_discovery", kwargs).answer == "a"
    pm.unregister(name="a")
    pm.register_plugin(driver("c"), "c")  # as many implementations as before, not the same
    assert select(pm, "driver_for_discovery", kwargs) == select(pm, "driver_for_discovery", kwargs)
    assert select(pm, "driver_for_discovery", kwargs).answer == "c"


def test_a_hold_plugin_refused_at_registration_still_keeps_footage(tmp_path: Path) -> None:
    """Seen in review: an unhashable (or invalid) hold plugin was recorded FAILED with
    no hooks, so ``failed_with`` missed it and the sweep destroyed what it held."""

    @dataclass
    class UnhashableHold:
        label: str = "x"

        @hookimpl(specname="retention_hold")
        def keep_court_order(self, hub: Any, segment: SegmentRef) -> str | None:
            return "court order"

    class BadSignature:
        @hookimpl
        def retention_hold(self, hub: Any, segment: SegmentRef, surplus: int) -> str | None:
            return "court order"

    segment = SegmentRef(
        id=1, camera_id="cam", start=0.0, end=60.0, path="cam/x.mp4", policy="max_age"
    )
    for plugin in (UnhashableHold(), BadSignature()):
        hub = build_hub(
            tmp_path / type(plugin).__name__, plugins=[("holder", plugin)], load_entrypoints=False
        )
        assert hub.pm.records["holder"].state is PluginState.FAILED
        assert [r.name for r in hub.pm.failed_with("retention_hold")] == ["holder"]
        decision = hub.hold_decision(segment)
        assert decision.failed and hub.hold_reason(segment) is not None
