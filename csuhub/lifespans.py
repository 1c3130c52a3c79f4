"""Plugins at start-up: ``hub_configure``, then the ``hub_lifespan`` context
managers entered on the hub's exit stack.

A plugin whose lifespan cannot be entered is disabled and the hub starts
without it; an error on leaving one is logged, never propagated, so one
plugin's shutdown cannot stop the rest of the hub from unwinding.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import TYPE_CHECKING, Any

from csuhub.events import PluginFailed

if TYPE_CHECKING:
    from csuhub.hub import Hub
    from csuhub.plugins import CsuhubPluginManager

__all__ = ["enter_lifespans", "start_plugins"]

_LOGGER = logging.getLogger(__name__)

#: ``plugin_failed(plugin, reason, stage=...)``
Fail = Callable[..., None]


async def start_plugins(hub: Hub, stack: AsyncExitStack) -> None:
    """Configure the plugins (a historic call: plugins registered later are called
    too), disable those that failed, and enter their lifespans."""
    hub.pm.hook.hub_configure.call_historic(kwargs={"hub": hub})
    for plugin, reason in hub.pm.apply_pending_failures():
        hub.registry.remove_plugin(plugin)
        hub.bus.fire(PluginFailed(plugin=plugin, stage="hub_configure", reason=reason))
    await enter_lifespans(hub.pm, hub, stack, hub.plugin_failed)


async def enter_lifespans(
    pm: CsuhubPluginManager, hub: object, stack: AsyncExitStack, fail: Fail
) -> None:
    """Ask every plugin for its lifespan and enter each on ``stack``."""
    for plugin, result in _lifespans(pm, hub, fail):
        if result is None:
            continue
        try:
            if not isinstance(result, AbstractAsyncContextManager) and not (
                hasattr(result, "__aenter__") and hasattr(result, "__aexit__")
            ):
                raise TypeError(f"hub_lifespan returned {type(result).__name__}")
            await stack.enter_async_context(_guarded(plugin, result))
        except Exception as err:
            fail(plugin, f"hub_lifespan raised {type(err).__name__}: {err}", stage="start")


def _lifespans(pm: CsuhubPluginManager, hub: object, fail: Fail) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for plugin, result, error in pm.outcomes("hub_lifespan", hub=hub):
        if error is not None:
            fail(plugin, str(error), stage="start")
        else:
            out.append((plugin, result))
    return out


@contextlib.asynccontextmanager
async def _guarded(plugin: str, cm: Any) -> AsyncIterator[Any]:
    """Enter a plugin's lifespan; an error on exit is logged, not propagated."""
    value = await cm.__aenter__()
    try:
        yield value
    except BaseException as err:
        if not await cm.__aexit__(type(err), err, err.__traceback__):
            raise
    else:
        try:
            await cm.__aexit__(None, None, None)
        except Exception:
            _LOGGER.exception("plugin %s: hub_lifespan failed on exit", plugin)
