"""The event bus: how everything that happens at run time reaches whoever cares.

Design choices, and why:

* ``fire`` never runs a listener inside the caller. Events are appended to a
  queue that one ``call_soon`` drains in a batch, so a burst of N events costs
  one loop wake-up, listeners see events in firing order, and a listener that
  fires from inside a listener cannot recurse.
* Subscriptions are indexed. ``match={"camera_id": "cam-12"}`` is a dict lookup
  at dispatch time, not a predicate called for every subscriber, which is what
  keeps 1,000 per-camera subscriptions cheap. ``where=`` predicates remain for
  anything an equality cannot express.
* Listener tables (tuples and index dicts) are copied on (un)subscribe, which
  is rare; dispatch, which is hot, iterates them without copying or locking,
  and a listener that unsubscribes mid-dispatch cannot disturb it.
* A listener that raises is logged with the event and the listener's name; the
  others still run. Coroutine listeners become tracked tasks whose failures are
  logged the same way.
* pluggy is never involved here: hooks are for registration, the bus for run time.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

from csuhub.events import Event

_LOGGER = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)
Listener = Callable[[E], Any]
Unsubscribe = Callable[[], None]

# How many queued events one drain handles before yielding to the loop, so a
# flood of events cannot starve I/O (web requests, ffmpeg pipes).
_DRAIN_BATCH = 4096


class _Subscription:
    __slots__ = ("active", "callback", "event_type", "is_async", "match", "once", "where")

    def __init__(
        self,
        event_type: type[Event],
        callback: Callable[[Any], Any],
        match: tuple[tuple[str, Any], ...],
        where: Callable[[Any], bool] | None,
        once: bool,
    ) -> None:
        self.event_type = event_type
        self.callback = callback
        self.match = match
        self.where = where
        self.once = once
        self.active = True
        self.is_async = inspect.iscoroutinefunction(callback)


class _TypeTable:
    """The subscriptions for one event type."""

    __slots__ = ("indexed", "plain")

    def __init__(self) -> None:
        self.plain: tuple[_Subscription, ...] = ()
        # attribute -> value -> subscriptions whose first match key is that attribute
        self.indexed: dict[str, dict[Any, tuple[_Subscription, ...]]] = {}

    def empty(self) -> bool:
        return not self.plain and not self.indexed


class EventBus:
    """Fire typed events; listen with optional indexed matches and predicates."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop
        self._tables: dict[type[Event], _TypeTable] = {}
        # concrete event type -> tables of it and its base classes, in MRO order
        self._resolved: dict[type[Event], tuple[_TypeTable, ...]] = {}
        self._queue: deque[Event] = deque()
        self._scheduled = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._idle: asyncio.Event | None = None

    # -- subscribing --------------------------------------------------------

    def listen(
        self,
        event_type: type[E],
        callback: Callable[[E], Any],
        *,
        match: Mapping[str, Any] | None = None,
        where: Callable[[E], bool] | None = None,
    ) -> Unsubscribe:
        """Call ``callback`` for each event of ``event_type`` (or a subclass).

        ``match`` keeps only events whose attributes equal the given values and
        is indexed; ``where`` is an arbitrary predicate. Returns the undo.
        """
        return self._add(event_type, callback, match, where, once=False)

    def listen_once(
        self,
        event_type: type[E],
        callback: Callable[[E], Any],
        *,
        match: Mapping[str, Any] | None = None,
        where: Callable[[E], bool] | None = None,
    ) -> Unsubscribe:
        """Like ``listen`` but removed before the first matching call."""
        return self._add(event_type, callback, match, where, once=True)

    async def wait_for(
        self,
        event_type: type[E],
        *,
        match: Mapping[str, Any] | None = None,
        where: Callable[[E], bool] | None = None,
        timeout: float | None = None,
    ) -> E:
        """Wait for the next matching event; the idiom tests and orchestration need."""
        future: asyncio.Future[E] = asyncio.get_running_loop().create_future()

        def _resolve(event: E) -> None:
            if not future.done():
                future.set_result(event)

        unsub = self.listen_once(event_type, _resolve, match=match, where=where)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            unsub()

    def _add(
        self,
        event_type: type[Any],
        callback: Callable[[Any], Any],
        match: Mapping[str, Any] | None,
        where: Callable[[Any], bool] | None,
        once: bool,
    ) -> Unsubscribe:
        if not (isinstance(event_type, type) and issubclass(event_type, Event)):
            raise TypeError(f"event_type must be an Event subclass, got {event_type!r}")
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {callback!r}")
        if match:
            fields = getattr(event_type, "__dataclass_fields__", {})
            unknown = [key for key in match if key not in fields]
            if unknown:
                names = ", ".join(sorted(unknown))
                raise ValueError(f"{event_type.__name__} has no field(s) {names} to match on")
        sub = _Subscription(event_type, callback, tuple((match or {}).items()), where, once)
        table = self._tables.get(event_type)
        if table is None:
            table = self._tables[event_type] = _TypeTable()
            self._resolved.clear()
        if sub.match:
            # copy-on-write: a dispatch in progress keeps iterating the old dicts
            attr, value = sub.match[0]
            by_value = dict(table.indexed.get(attr, {}))
            by_value[value] = (*by_value.get(value, ()), sub)
            table.indexed = {**table.indexed, attr: by_value}
        else:
            table.plain = (*table.plain, sub)

        def unsubscribe() -> None:
            self._remove(event_type, sub)

        return unsubscribe

    def _remove(self, event_type: type[Event], sub: _Subscription) -> None:
        if not sub.active:
            return
        sub.active = False
        table = self._tables.get(event_type)
        if table is None:
            return
        if sub.match:
            attr, value = sub.match[0]
            by_value = dict(table.indexed.get(attr, {}))
            remaining = tuple(s for s in by_value.get(value, ()) if s is not sub)
            if remaining:
                by_value[value] = remaining
            else:
                by_value.pop(value, None)
            indexed = dict(table.indexed)
            if by_value:
                indexed[attr] = by_value
            else:
                indexed.pop(attr, None)
            table.indexed = indexed
        else:
            table.plain = tuple(s for s in table.plain if s is not sub)
        if table.empty():
            del self._tables[event_type]
            self._resolved.clear()

    def listener_count(self, event_type: type[Event] | None = None) -> int:
        """How many subscriptions exist; tests use it to prove nothing leaked."""
        tables = self._tables.values() if event_type is None else [self._tables.get(event_type)]
        total = 0
        for table in tables:
            if table is None:
                continue
            total += len(table.plain)
            total += sum(len(subs) for by in table.indexed.values() for subs in by.values())
        return total

    # -- firing -------------------------------------------------------------

    def fire(self, event: Event) -> None:
        """Queue ``event`` for dispatch. Must be called from the loop's thread."""
        self._queue.append(event)
        if not self._scheduled:
            self._scheduled = True
            loop = self._loop or asyncio.get_running_loop()
            self._loop = loop
            loop.call_soon(self._drain)

    def fire_threadsafe(self, event: Event) -> None:
        """Fire from a worker thread (an executor doing hashing or deletion)."""
        if self._loop is None:
            raise RuntimeError("the bus has not fired on a loop yet; fire once from the loop")
        self._loop.call_soon_threadsafe(self.fire, event)

    def _tables_for(self, event_type: type[Event]) -> tuple[_TypeTable, ...]:
        resolved = self._resolved.get(event_type)
        if resolved is None:
            tables = self._tables
            resolved = tuple(tables[cls] for cls in event_type.__mro__ if cls in tables)
            self._resolved[event_type] = resolved
        return resolved

    def _drain(self) -> None:
        try:
            self._drain_batch()
        except BaseException:
            # never leave the bus wedged with _scheduled set and nobody draining
            self._scheduled = False
            if self._queue and self._loop is not None:
                self._scheduled = True
                self._loop.call_soon(self._drain)
            raise

    def _drain_batch(self) -> None:
        queue = self._queue
        popleft = queue.popleft
        for _ in range(_DRAIN_BATCH):
            if not queue:
                break
            event = popleft()
            for table in self._tables_for(type(event)):
                for sub in table.plain:
                    self._deliver(sub, event)
                if table.indexed:
                    for attr, by_value in table.indexed.items():
                        subs = by_value.get(getattr(event, attr, _MISSING))
                        if subs:
                            for sub in subs:
                                self._deliver(sub, event)
        if queue:
            # more than one batch: yield to I/O, then continue
            assert self._loop is not None
            self._loop.call_soon(self._drain)
        else:
            self._scheduled = False
            if self._idle is not None:
                self._idle.set()

    def _deliver(self, sub: _Subscription, event: Event) -> None:
        if not sub.active:
            return
        try:
            if len(sub.match) > 1:
                for attr, value in sub.match[1:]:
                    if getattr(event, attr, _MISSING) != value:
                        return
            if sub.where is not None and not sub.where(event):
                return
            if sub.once:
                self._remove(sub.event_type, sub)
            if sub.is_async:
                self._spawn(sub.callback(event), sub, event)
            else:
                sub.callback(event)
        except Exception:
            _LOGGER.exception("listener %s failed on %s", _callable_name(sub.callback), event.name)

    def _spawn(self, coro: Coroutine[Any, Any, Any], sub: _Subscription, event: Event) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coro, name=f"listener:{_callable_name(sub.callback)}")
        self._tasks.add(task)

        def _done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                _LOGGER.error(
                    "listener %s failed on %s",
                    _callable_name(sub.callback),
                    event.name,
                    exc_info=t.exception(),
                )

        task.add_done_callback(_done)

    async def drain(self) -> None:
        """Wait until every queued event is dispatched and async listeners finished.

        Used at shutdown (so the last events are not lost) and by tests.
        """
        while self._queue or self._tasks:
            if self._queue:
                self._idle = asyncio.Event()
                await self._idle.wait()
                self._idle = None
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


def _callable_name(func: Callable[..., Any]) -> str:
    return getattr(func, "__qualname__", None) or repr(func)
