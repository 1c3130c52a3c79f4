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
* ``index_footage(hub, camera, start, hours)``: real files (synthetic bytes,
  their SHA-256 in the index) under the storage layout, indexed, for a
  retention policy to sweep.
* ``sweep_at(hub, now)``: one retention sweep at the test's time. Build the
  hub with ``sweeping=False`` (or call ``stop_sweeper(hub)``) so that the
  background sweeper, on the real clock, does not race it for the footage.
* ``api_token(hub, role)``: a bearer token for the hub's API.

Plugins and their tests import ``csuhub.api`` and this module, nothing else of
csuhub (``tests/test_meta.py`` checks the bundled ones and the example).

Async fixtures need ``pytest-asyncio`` (installed with ``csuhub[test]``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from csuhub.hub import Hub
from csuhub.plugins import make_plugin_manager
from csuhub.registry import Registry
from csuhub.retention import SweepReport
from csuhub.security.permissions import ROLES
from csuhub.security.tokens import SERVICE_PREFIX, hash_secret, new_secret
from csuhub.specs import ComponentSpec, ConfigSectionSpec

__all__ = [
    "IndexedSegment",
    "api_token",
    "build_hub",
    "csuhub_hub",
    "hub_factory",
    "index_footage",
    "make_hub",
    "make_plugin_manager",
    "registered_plugin",
    "stop_sweeper",
    "sweep_at",
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
    hub.setup()  # the managers exist from here
    if health_interval is not None:
        hub.cameras.health_interval = health_interval
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
    sweeping: bool = True,
) -> AsyncIterator[Hub]:
    """Build, start and finally stop a hub; the workhorse of plugin tests.

    ``sweeping=False`` stops the background retention sweeper once its start-up
    sweep is done (see :func:`stop_sweeper`): retention tests sweep with
    :func:`sweep_at` on their own clock.
    """
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
        if not sweeping:
            await stop_sweeper(hub)
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


async def api_token(hub: Hub, role: str = "viewer", name: str | None = None) -> str:
    """A new bearer token of ``role`` for ``hub``'s API: send it as
    ``Authorization: Bearer <token>``. Like ``csuhub token create``, only its
    hash is stored. The kit's promise is a token that sees every camera: it
    belongs to a service account ``token:<name>`` made with scope ``*``
    (``csuhub tokens create`` without ``--user`` gives most roles none)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    secret = new_secret()
    token = name or f"test-{role}-{secret[-8:]}"
    await hub.store.users.add(
        SERVICE_PREFIX + token,
        kind="service",
        roles=[role],
        scope=["*"],
        password_hash=None,
        now=time.time(),
    )
    await hub.store.create_token(token, role, hash_secret(secret), SERVICE_PREFIX + token)
    return secret


# -- retention: footage and sweeps on the test's clock ----------------------------


@dataclass(frozen=True, slots=True)
class IndexedSegment:
    """One segment :func:`index_footage` wrote and indexed."""

    id: int
    camera_id: str
    start: float
    end: float
    #: the file, under the hub's storage root
    path: Path
    sha256: str


def _write_segments(
    hub: Hub, camera_id: str, starts: list[float], size: int
) -> list[tuple[float, Path, str]]:
    """Blocking (a thread): one file per start, distinct bytes, and their SHA-256."""
    written = []
    for start in starts:
        folder = hub.recording.segment_dir(camera_id, start)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / time.strftime("%Y%m%dT%H%M%SZ.mp4", time.gmtime(start))
        header = f"csuhub test footage {camera_id} {start:.3f}\n".encode()
        payload = header + b"\0" * max(size - len(header), 0)
        with path.open("xb") as handle:  # never over a segment already there
            handle.write(payload)
        written.append((start, path, hashlib.sha256(payload).hexdigest()))
    return written


async def index_footage(
    hub: Hub,
    camera_id: str,
    start: float,
    hours: float,
    *,
    segment: float = 60.0,
    size: int = 1024,
) -> list[IndexedSegment]:
    """Write and index ``hours`` of one camera's footage from ``start`` (POSIX
    seconds, UTC), in ``segment``-second segments, on a started hub.

    The files are real (``size`` bytes each, not playable video) and sit where
    the recorder puts its own (``<storage>/<camera>/YYYY/MM/DD/HH/``); the index
    rows carry their size and SHA-256, so a sweep destroys and registers them
    exactly as recorded footage. An active hold over the range holds them from
    the start, as it would live footage. The camera need not be configured:
    retention reaches every camera with footage.
    """
    if segment <= 0 or hours <= 0 or size < 0:
        raise ValueError("need segment > 0, hours > 0 and size >= 0")
    count = max(1, round(hours * 3600 / segment))
    starts = [start + i * segment for i in range(count)]
    written = await asyncio.to_thread(_write_segments, hub, camera_id, starts, size)
    root = hub.recording.storage_root()
    indexed = []
    for seg_start, path, digest in written:
        segment_id, _ = await hub.store.add_segment(
            camera_id,
            start=seg_start,
            end=seg_start + segment,
            size=path.stat().st_size,
            path=path.relative_to(root).as_posix(),
            sha256=digest,
        )
        indexed.append(
            IndexedSegment(segment_id, camera_id, seg_start, seg_start + segment, path, digest)
        )
    return indexed


async def stop_sweeper(hub: Hub, timeout: float = 30.0) -> None:
    """Stop a started hub's background retention sweeper, after its start-up sweep.

    That sweeper runs on the real clock, at start-up, every
    ``retention.interval`` and whenever a hold is released or the site reloaded:
    left running, it would destroy (or race for) footage a test indexed in the
    past before the test sweeps at its own time. The hub's ``stop()`` is
    unaffected. Waiting for the start-up sweep first means the loop is stopped
    while it sleeps, never in the middle of a sweep.
    """
    await asyncio.wait_for(hub.retention.swept.wait(), timeout)
    await hub.retention.stop()


async def sweep_at(hub: Hub, now: float, *, dry_run: bool = False) -> SweepReport:
    """One retention sweep as if the time were ``now`` (POSIX seconds): the
    policies see ``sweep.now == now``, the legal cap counts back from it, and the
    report says what was destroyed (``segments``, ``by_policy``) or, in a dry run,
    what would be (``would_destroy``). Policies, holds, the ``retention_hold``
    hook and the register all run as in production."""
    return await hub.retention.sweep(now=now, dry_run=dry_run, origin="test")


def validate_plugin(plugin: object, hub: Hub | None = None) -> list[str]:
    """Problems with a plugin's specs, as the hub would see them (empty is good)."""
    pm = make_plugin_manager(load_entrypoints=False, plugins=[("under-test", plugin)])
    record = pm.records.get("under-test")
    if record is None or str(record.state) != "loaded":
        return [f"plugin does not load: {record.reason if record else 'not registered'}"]
    problems: list[str] = []
    probe = hub if hub is not None else _ProbeHub()
    for hook in Registry.SETUP_HOOKS:
        # as the hub calls it: through pluggy, with any wrapper hookimpl around it
        for _, result, error in pm.outcomes(hook, hub=probe):
            if error is not None:
                problems.append(f"{hook} raised {type(error.error).__name__}: {error.error}")
            else:
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
    """``async with hub_factory(config, plugins=[("name", plugin)]) as hub: ...``
    (keywords as :func:`make_hub`: ``web``, ``health_interval``, ``sweeping``...)"""
    counter = iter(range(1_000_000))

    def factory(config: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return make_hub(tmp_path / f"hub{next(counter)}", config, **kwargs)

    return factory


@pytest.fixture
async def csuhub_hub(tmp_path: Path) -> AsyncIterator[Hub]:
    """A started hub with the installed plugins and its web server on 127.0.0.1."""
    async with make_hub(tmp_path / "hub", web=True) as hub:
        yield hub
