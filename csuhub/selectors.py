"""How the hub asks a selector hook, and what a failing answer means.

A selector (``firstresult`` hook) is a run-time decision. What a plugin's
failure means depends on the decision: a driver that cannot be chosen is
passed over, but a legal hold that cannot be read must keep the footage. So the
failure policy is part of the hook's spec (``@selector`` in ``hookspecs.py``),
not a choice made at each call site.

A *failure* is any of: the implementation (or a wrapper hookimpl around it)
raised, it is an ``async def`` (its coroutine is never awaited), it took longer
than the spec's budget, or it gave an answer of the wrong kind. A wrapper that
catches an implementation's exception and returns an answer has decided for it:
the hub sees that answer, not the exception. Selectors are plain ``def`` run on the event loop,
so a slow one cannot be interrupted: its answer is discarded once it arrives.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pluggy

from csuhub.hookcalls import PluginCallError, PluginRound
from csuhub.refs import Location

_LOGGER = logging.getLogger(__name__)

#: attribute of a hookspec function that carries its ``SelectorPolicy``
POLICY_ATTR = "csuhub_selector_policy"


def _non_empty_str(answer: Any) -> bool:
    return isinstance(answer, str) and bool(answer.strip())


def a_point(answer: Any) -> bool:
    """A geocoder's usable answer: a ``Location`` with its point (an address
    alone places nothing on the map)."""
    return isinstance(answer, Location) and answer.has_point


@dataclass(frozen=True, slots=True)
class SelectorPolicy:
    """What the hub does when an implementation of a selector fails.

    ``on_failure="pass"`` skips the failing plugin and asks the next one;
    ``on_failure="decide"`` stops at once and returns a failed ``Selection``
    (fail closed: the caller treats it as the safe answer, e.g. keep).
    """

    on_failure: Literal["pass", "decide"] = "pass"
    #: seconds an implementation may take; a slower answer is a failure
    budget: float = 0.5
    #: whether a non-``None`` answer is usable
    accepts: Callable[[Any], bool] = _non_empty_str
    #: what a usable answer is, for the log and the reason of a failure
    expects: str = "a non-empty string"


def selector(
    *,
    on_failure: Literal["pass", "decide"] = "pass",
    budget: float = 0.5,
    accepts: Callable[[Any], bool] = _non_empty_str,
    expects: str = "a non-empty string",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Attach a ``SelectorPolicy`` to a hookspec function (declaration only)."""
    policy = SelectorPolicy(on_failure, budget, accepts, expects)

    def mark(function: Callable[..., Any]) -> Callable[..., Any]:
        setattr(function, POLICY_ATTR, policy)
        return function

    return mark


DEFAULT_POLICY = SelectorPolicy()


@dataclass(frozen=True, slots=True)
class Selection:
    """The outcome of asking a selector: the winning answer and who gave it, or the
    failure that decided (``failed`` is only ever true under ``on_failure="decide"``)."""

    answer: Any = None
    plugin: str | None = None
    failed: bool = False
    error: str | None = None
    #: the failure was the time budget: the caller may stop asking for a while, since
    #: every further call blocks the event loop as long (a sweep asks once per segment)
    slow: bool = False

    def keep_reason(self, hook: str) -> str | None:
        """For a hold-like selector: the reason to keep, the failure's when it failed
        (fail closed), else the answer; None lets go."""
        if self.failed:
            return f"{hook} failed, kept (fail closed): {self.error}"
        return None if self.answer is None else str(self.answer)


def policy_of(caller: pluggy.HookCaller) -> SelectorPolicy:
    spec = caller.spec
    if spec is None:
        return DEFAULT_POLICY
    return getattr(spec.function, POLICY_ATTR, DEFAULT_POLICY)


def select(
    pm: pluggy.PluginManager,
    hook: str,
    kwargs: dict[str, Any],
    logged: set[tuple[str, str]] | None = None,
) -> Selection:
    """Ask each plugin in pluggy's order, each through its own pluggy call (wrappers
    and tracing included, ``csuhub.hookcalls``); the first usable non-``None`` answer
    wins, and a failure is passed over or decides, as the hook's spec says.

    A failing wrapper is a failure too: under ``decide`` it decides (fail closed);
    under ``pass`` the wrapper is left out and the same plugin asked again without it.

    ``logged`` remembers (hook, plugin) pairs already reported at error level: a
    sweep asks a hold hook once per segment, and one broken plugin must not write
    thousands of tracebacks (the sweep report counts every failure)."""
    logged = set() if logged is None else logged
    if not getattr(pm.hook, hook).get_hookimpls():
        return Selection()  # the common case of a hold hook nobody implements, per segment
    calls = PluginRound(pm, hook)
    policy = policy_of(calls.caller)
    for plugin in calls.in_call_order():
        while True:
            name = calls.name(plugin)
            error: str | None = None
            started = time.monotonic()
            try:
                answer = calls.call(plugin, kwargs)
            except PluginCallError as err:
                name = err.plugin
                if (hook, name) not in logged:
                    _LOGGER.error("plugin %s failed in selector %s", name, hook, exc_info=err.error)
                role = "wrapper " if err.by_wrapper else ""
                error = f"plugin {name} {role}failed: {type(err.error).__name__}: {err.error}"
                error = error[:300]
                answer = None
                if err.by_wrapper and policy.on_failure == "pass":
                    logged.add((hook, name))
                    _LOGGER.debug("%s: %s; wrapper left out", hook, error)
                    calls.leave_out(err.culprit)
                    continue
            break
        elapsed = time.monotonic() - started
        if asyncio.iscoroutine(answer):
            answer.close()
            error = f"plugin {name} implements {hook} with async def"
            answer = None
        elif error is None and elapsed > policy.budget:
            error = f"plugin {name} answered after {elapsed:.2f} s (budget {policy.budget:g} s)"
            answer = None
        elif error is None and answer is not None and not policy.accepts(answer):
            error = (
                f"plugin {name} gave an unusable answer ({type(answer).__name__}),"
                f" expected {policy.expects}"
            )
            answer = None
        if error is not None:
            level = logging.DEBUG if (hook, name) in logged else logging.ERROR
            logged.add((hook, name))
            if policy.on_failure == "decide":
                _LOGGER.log(level, "%s: %s; failing closed", hook, error)
                return Selection(None, name, failed=True, error=error, slow=elapsed > policy.budget)
            _LOGGER.log(level, "%s: %s; ignored", hook, error)
            continue
        if answer is not None:
            return Selection(answer, name)
    return Selection()
