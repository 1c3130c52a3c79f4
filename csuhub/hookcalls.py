"""Calling a hook one plugin at a time, through pluggy.

Factories and selectors need each plugin's answer on its own: a factory's specs
are registered under the plugin that gave them, and a plugin that raises is
disabled while the others still answer. ``pm.hook.x(**kwargs)`` gives neither:
pluggy stops the whole call at the first raise and returns a factory's answers
without saying whose they are. Calling ``impl.function`` by hand (as the hub
once did) skips wrapper hookimpls, ``pm.trace`` and hook-call monitoring
without a word.

So each plugin is asked through its own pluggy call:
``PluginManager.subset_hook_caller`` leaves out every *other* plugin that
answers the hook and keeps every wrapper. A wrapper therefore wraps each
plugin's answer (it sees it and may change it), and a monitor sees one call per
plugin. A hook nobody answers is not called at all.

When such a call raises, the traceback says whose code raised: the deepest
frame that belongs to one of the call's implementations. A wrapper blamed this
way is left out of the rest of the round (``PluginRound.leave_out``), so it
cannot take innocent plugins down with it. When no frame can be matched (an
implementation hidden behind a decorator that does not set ``__wrapped__``),
the plugin that was asked is blamed, as before wrappers took part.
"""

from __future__ import annotations

import asyncio
import inspect
import traceback
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import CodeType
from typing import Any

import pluggy

#: what a plain ``def`` implementation may raise that is still its own failure: a
#: synchronous call cannot be cancelled, so a ``CancelledError`` is the plugin's own
#: (let through, it would end the task that asked, e.g. the retention sweeper)
PLUGIN_ERRORS: tuple[type[BaseException], ...] = (
    Exception,
    asyncio.CancelledError,
    GeneratorExit,
)


class PluginCallError(Exception):
    """A hook implementation raised; carries which plugin and hook.

    ``by_wrapper`` is true when the code that raised is a wrapper hookimpl of
    ``plugin`` around another plugin's answer, not that answer itself.
    """

    def __init__(
        self,
        plugin: str,
        hook: str,
        error: BaseException,
        *,
        culprit: object = None,
        by_wrapper: bool = False,
    ) -> None:
        super().__init__(f"{plugin}.{hook} raised {type(error).__name__}: {error}")
        self.plugin = plugin
        self.hook = hook
        self.error = error
        #: the plugin object that raised (to leave it out of the rest of the round)
        self.culprit = culprit
        self.by_wrapper = by_wrapper


def _is_wrapper(impl: pluggy.HookImpl) -> bool:
    return bool(impl.wrapper or impl.hookwrapper)


def _codes(function: object) -> set[CodeType]:
    """The code objects whose frames are this implementation's own."""
    found: set[CodeType] = set()
    candidates = [function]
    try:
        candidates.append(inspect.unwrap(function))  # type: ignore[arg-type]
    except ValueError:  # a __wrapped__ cycle: the function itself is enough
        pass
    for candidate in candidates:
        code = getattr(candidate, "__code__", None)
        if isinstance(code, CodeType):
            found.add(code)
    return found


@dataclass(frozen=True, slots=True, eq=False)
class CallPlan:
    """What a round of ``hook`` needs that changes only when plugins come or go.

    Worked out once per set of implementations: a sweep asks ``retention_hold``
    once per segment, and redoing it every time tripled the cost of a call.
    """

    #: the implementations it was made for: a different list means a new plan
    impls: tuple[pluggy.HookImpl, ...]
    #: plugins with a non-wrapper implementation, in pluggy's list order:
    #: registration order, ``trylast`` first and ``tryfirst`` last
    plugins: tuple[object, ...]
    names: dict[int, str]
    #: ``id(plugin)`` -> a caller of that plugin alone, every wrapper around it
    alone: dict[int, pluggy.HookCaller]


def _plan(pm: pluggy.PluginManager, caller: pluggy.HookCaller) -> CallPlan:
    impls = tuple(caller.get_hookimpls())
    # a CsuhubPluginManager keeps plans (``call_plans``); a bare pluggy one does not
    plans: dict[str, CallPlan] | None = getattr(pm, "call_plans", None)
    plan = plans.get(caller.name) if plans is not None else None
    if plan is not None and len(plan.impls) == len(impls):
        if all(a is b for a, b in zip(plan.impls, impls, strict=True)):
            return plan
    plugins: list[object] = []
    for impl in impls:
        if not _is_wrapper(impl) and not any(p is impl.plugin for p in plugins):
            plugins.append(impl.plugin)
    plan = CallPlan(
        impls=impls,
        plugins=tuple(plugins),
        names={id(p): pm.get_name(p) or repr(p) for p in plugins},
        alone={
            id(p): pm.subset_hook_caller(caller.name, [o for o in plugins if o is not p])
            for p in plugins
        },
    )
    if plans is not None:
        plans[caller.name] = plan
    return plan


class PluginRound:
    """One round of calls of ``hook``: each answering plugin asked on its own."""

    def __init__(self, pm: pluggy.PluginManager, hook: str) -> None:
        self.pm = pm
        self.hook = hook
        self.caller: pluggy.HookCaller = getattr(pm.hook, hook)
        self.firstresult = bool(self.caller.spec and self.caller.spec.opts.get("firstresult"))
        self._plan = _plan(pm, self.caller)
        self._left_out: list[object] = []

    @property
    def plugins(self) -> tuple[object, ...]:
        """Registration order, ``trylast`` first and ``tryfirst`` last."""
        return self._plan.plugins

    def _name_of(self, plugin: object) -> str:
        return self.pm.get_name(plugin) or repr(plugin)

    def name(self, plugin: object) -> str:
        """The registered name, remembered: a plugin disabled mid-round keeps it."""
        return self._plan.names.get(id(plugin)) or self._name_of(plugin)

    def in_call_order(self) -> list[object]:
        """Pluggy's calling order: ``tryfirst`` first, then the last registered."""
        return list(reversed(self.plugins))

    def leave_out(self, plugin: object) -> None:
        """Stop calling ``plugin``'s wrappers for the rest of this round."""
        self._left_out.append(plugin)

    def call(self, plugin: object, kwargs: Mapping[str, Any]) -> Any:
        """Ask ``plugin`` through pluggy, every wrapper around it. Returns pluggy's
        answer: the value for a ``firstresult`` hook, else a list. Raises
        ``PluginCallError`` naming the plugin whose code raised."""
        subset = self._plan.alone[id(plugin)]
        if self._left_out:
            others = [p for p in self.plugins if p is not plugin]
            subset = self.pm.subset_hook_caller(self.hook, [*others, *self._left_out])
        try:
            return subset(**kwargs)
        except PLUGIN_ERRORS as err:
            culprit = self._culprit(err, subset.get_hookimpls(), plugin)
            raise PluginCallError(
                self.name(culprit),
                self.hook,
                err,
                culprit=culprit,
                by_wrapper=culprit is not plugin,
            ) from err

    def answers(self, plugin: object, kwargs: Mapping[str, Any]) -> list[Any]:
        """``call``'s answer as a list of the plugin's results (``[None]`` when it
        gave none), so a factory round reads the same with or without wrappers."""
        result = self.call(plugin, kwargs)
        if self.firstresult or not isinstance(result, list):
            return [result]
        return list(result) or [None]

    def _culprit(self, err: BaseException, impls: list[pluggy.HookImpl], asked: object) -> object:
        owners: dict[CodeType, list[object]] = {}
        for impl in impls:
            for code in _codes(impl.function):
                owners.setdefault(code, []).append(impl.plugin)
        deepest: list[object] | None = None
        for frame, _ in traceback.walk_tb(err.__traceback__):
            deepest = owners.get(frame.f_code, deepest)
        if deepest is None or any(p is asked for p in deepest):
            # two plugins may share code (instances of one class): the asked one
            # is blamed before a wrapper
            return asked
        return deepest[0]


class EachPlugin(Iterator[tuple[str, Any]]):
    """``(plugin, result)`` for each plugin answering a hook, in registration order.

    ``__next__`` raises ``PluginCallError`` for a plugin that failed and *carries on*
    at the next call (a generator would be finished by its first raise, and the
    plugins after the culprit never asked). When a wrapper is to blame, it is left
    out and the same plugin is asked again.
    """

    def __init__(self, pm: pluggy.PluginManager, hook: str, kwargs: Mapping[str, Any]) -> None:
        self._round = PluginRound(pm, hook)
        self._kwargs = dict(kwargs)
        self._todo = deque(self._round.plugins)
        self._ready: deque[tuple[str, Any]] = deque()

    def __next__(self) -> tuple[str, Any]:
        while not self._ready:
            if not self._todo:
                raise StopIteration
            plugin = self._todo[0]
            try:
                answers = self._round.answers(plugin, self._kwargs)
            except PluginCallError as err:
                if err.by_wrapper:
                    self._round.leave_out(err.culprit)
                else:
                    self._todo.popleft()
                raise
            self._todo.popleft()
            name = self._round.name(plugin)
            self._ready.extend((name, answer) for answer in answers)
        return self._ready.popleft()
