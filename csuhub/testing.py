"""The plugin author's test kit.

Installed with csuhub as a pytest plugin (entry point ``pytest11``), so any
test suite gets these fixtures without importing anything:

* ``hub_factory``: ``async with hub_factory(config, plugins=[...]) as hub:``
  builds a hub in the test's temporary directory, starts it, stops it after.
* ``csuhub_hub``: a started hub with the installed plugins and the web server
  on a free port of 127.0.0.1.
* ``registered_plugin(hub, plugin, name)``: register a plugin on a running
  hub for one block (selectors and late lifecycle hooks), undone after.
* ``validate_plugin(plugin)``: checks what a plugin's ``register_*`` hooks
  return, the checks the hub applies at start-up, as a list of problems.

Async fixtures need ``pytest-asyncio`` (installed with ``csuhub[test]``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from csuhub.hub import Hub
from csuhub.plugins import make_plugin_manager
from csuhub.registry import Registry
from csuhub.specs import ComponentSpec, ConfigSectionSpec

__all__ = [
    "csuhub_hub",
    "hub_factory",
    "make_hub",
    "registered_plugin",
    "validate_plugin",
    "wait_camera_state",
]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def build_hub(
    data_dir: Path,
    config: dict[str, Any] | None = None,
    *,
    plugins: Iterable[tuple[str, object]] = (),
    load_entrypoints: bool = True,
    web: bool = False,
    health_interval: float | None = None,
) -> Hub:
    """A configured (``setup()`` done) but not started hub, isolated from others.

    ``health_interval`` shortens camera health checks (seconds between checks of a
    healthy camera); set it here, not after start: the first check's sleep uses it.
    """
    config = dict(config or {})
    hub_section = dict(config.get("hub", {}))
    hub_section.setdefault("name", "test-hub")
    web_section = dict(hub_section.get("web", {}))
    web_section.setdefault("host", "127.0.0.1")
    web_section.setdefault("port", 0)
    hub_section["web"] = web_section
    config["hub"] = hub_section
    disabled = config.get("plugins", {}).get("disabled", [])
    pm = make_plugin_manager(
        disabled=disabled, load_entrypoints=load_entrypoints, plugins=list(plugins)
    )
    hub = Hub(config, source="<test>", data_dir=data_dir, pm=pm, web=web)
    if health_interval is not None:
        hub.cameras.health_interval = health_interval
    hub.setup()
    return hub


@contextlib.asynccontextmanager
async def make_hub(
    data_dir: Path,
    config: dict[str, Any] | None = None,
    *,
    plugins: Iterable[tuple[str, object]] = (),
    load_entrypoints: bool = True,
    web: bool = False,
    health_interval: float | None = None,
) -> AsyncIterator[Hub]:
    """Build, start and finally stop a hub; the workhorse of plugin tests."""
    hub = build_hub(
        data_dir,
        config,
        plugins=plugins,
        load_entrypoints=load_entrypoints,
        web=web,
        health_interval=health_interval,
    )
    await hub.start()
    try:
        yield hub
    finally:
        await hub.stop("test finished")


@contextlib.contextmanager
def registered_plugin(hub: Hub, plugin: object, name: str | None = None) -> Iterator[str]:
    """Register ``plugin`` on ``hub`` for the duration of the block.

    Factory hooks were read at set-up, so this is for selectors and lifecycle
    hooks. Historic ``hub_configure`` is replayed to the late plugin.
    """
    name = name or f"test-plugin-{id(plugin):x}"
    hub.pm.register_plugin(plugin, name)
    try:
        yield name
    finally:
        registered = hub.pm.get_plugin(name)
        if registered is not None:
            hub.pm.unregister(registered)
        hub.pm.records.pop(name, None)


async def wait_camera_state(hub: Hub, camera_id: str, state: str, timeout: float = 15.0) -> None:
    """Wait until a camera is in ``state`` (returns at once if it already is).

    Waiting for the *event* alone races with a camera that got there while
    the hub was starting.
    """
    from csuhub.events import CameraStateChanged

    waiter = hub.bus.wait_for(
        CameraStateChanged, match={"camera_id": camera_id, "new_state": state}, timeout=timeout
    )
    task = asyncio.ensure_future(waiter)
    await asyncio.sleep(0)
    if hub.cameras.states.get(camera_id) == state:
        task.cancel()
        return
    await task


def validate_plugin(plugin: object, hub: Hub | None = None) -> list[str]:
    """Problems with a plugin's specs, as the hub would see them (empty is good)."""
    pm = make_plugin_manager(load_entrypoints=False, plugins=[("under-test", plugin)])
    record = pm.records.get("under-test")
    if record is None or str(record.state) != "loaded":
        return [f"plugin does not load: {record.reason if record else 'not registered'}"]
    problems: list[str] = []
    probe = hub if hub is not None else _ProbeHub()
    hooks = [*Registry.FACTORY_HOOKS, "register_config_schemas", "register_web_routes"]
    for hook in hooks:
        for impl in pm.get_plugin("under-test") and getattr(pm.hook, hook).get_hookimpls():
            try:
                result = impl.function(**{a: probe for a in impl.argnames})
            except Exception as err:
                problems.append(f"{hook} raised {type(err).__name__}: {err}")
                continue
            problems.extend(_check_result(hook, result))
    return problems


class _ProbeHub:
    """Stands in for the hub argument when a plugin's hooks are only described."""

    config = None
    data_dir = Path("/nonexistent")


def _check_result(hook: str, result: Any) -> list[str]:
    if result is None:
        return []
    if hasattr(result, "__await__"):
        return [f"{hook} is async; register hooks must be plain def"]
    if not isinstance(result, list | tuple):
        return [f"{hook} must return a list, got {type(result).__name__}"]
    problems = []
    for spec in result:
        if hook == "register_web_routes":
            continue
        if hook == "register_config_schemas":
            if not isinstance(spec, ConfigSectionSpec):
                problems.append(f"{hook} returned {spec!r}, not a ConfigSectionSpec")
            continue
        if not isinstance(spec, ComponentSpec):
            problems.append(f"{hook} returned {spec!r}, not a spec")
            continue
        if not _NAME.match(spec.name):
            problems.append(f"{hook}: spec name {spec.name!r} is not a lowercase slug")
        if not callable(spec.factory):
            problems.append(f"{hook}: {spec.name} factory is not callable")
        if not callable(spec.config_schema):
            problems.append(f"{hook}: {spec.name} config_schema is not callable")
    return problems


# -- pytest fixtures --------------------------------------------------------


@pytest.fixture
def hub_factory(tmp_path: Path) -> Callable[..., Any]:
    """``async with hub_factory(config, plugins=[("name", plugin)]) as hub: ...``"""
    counter = iter(range(1_000_000))

    def factory(config: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return make_hub(tmp_path / f"hub{next(counter)}", config, **kwargs)

    return factory


@pytest.fixture
async def csuhub_hub(tmp_path: Path) -> AsyncIterator[Hub]:
    """A started hub with the installed plugins and its web server on 127.0.0.1."""
    async with make_hub(tmp_path / "hub", web=True) as hub:
        yield hub
