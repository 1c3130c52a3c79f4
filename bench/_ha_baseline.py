"""Home Assistant EventBus baseline (bench only, not part of csuhub).

Run with the interpreter of the venv made by bench/setup_ha_env.sh:

    ~/.cache/csuhub-bench-ha/bin/python bench/_ha_baseline.py \
        --events 1000000 --subs 1000 --filtered-events 20000

It builds a real ``homeassistant.core.HomeAssistant`` (config dir in a temp
dir), starts it, and times ``hass.bus`` (the EventBus) in these scenarios.
Each one times fire AND dispatch together: the timer starts, N events are
fired with ``hass.bus.async_fire`` from inside the loop, and it stops when the
listener(s) have seen all N (an asyncio.Event set on the Nth delivery).

* one            one @callback listener on "bench_event" (the HA default
                 path: async_fire schedules it with loop.call_soon)
* one_immediate  same, registered with run_immediately=True (called inline
                 from async_fire; the 2024.3 API has this flag)
* filtered       K @callback listeners on "bench_event", listener i with an
                 @callback event_filter ``event.data["n"] % K == i``.  Every
                 event runs all K filters (async_fire walks the whole list) and
                 is delivered to exactly one listener.

Exactly one JSON line goes to stdout at the end; everything else to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import sys
import tempfile
import time
from typing import Any

from homeassistant.const import __version__ as HA_VERSION
from homeassistant.core import Event, HomeAssistant, callback

EVENT_TYPE = "bench_event"


def log(msg: str) -> None:
    print(f"[ha_baseline] {msg}", file=sys.stderr, flush=True)


async def _fire_and_wait(
    hass: HomeAssistant, n: int, done: asyncio.Event, yield_every: int
) -> float:
    """Fire n events, wait until delivered; return elapsed seconds."""
    fire = hass.bus.async_fire
    t0 = time.perf_counter()
    if yield_every <= 0:
        for i in range(n):
            fire(EVENT_TYPE, {"n": i})
    else:
        for start in range(0, n, yield_every):
            for i in range(start, min(start + yield_every, n)):
                fire(EVENT_TYPE, {"n": i})
            await asyncio.sleep(0)
    await done.wait()
    return time.perf_counter() - t0


async def bench_one(hass: HomeAssistant, n: int, run_immediately: bool, yield_every: int) -> float:
    """One listener; return events/s."""
    done = asyncio.Event()
    seen = 0

    @callback
    def listener(event: Event) -> None:
        nonlocal seen
        seen += 1
        if seen == n:
            done.set()

    unsub = hass.bus.async_listen(EVENT_TYPE, listener, run_immediately=run_immediately)
    try:
        elapsed = await _fire_and_wait(hass, n, done, yield_every)
    finally:
        unsub()
    if seen != n:
        raise RuntimeError(f"one: listener saw {seen} events, expected {n}")
    return n / elapsed


def _make_filter(k: int, idx: int) -> Any:
    @callback
    def event_filter(event: Event) -> bool:
        return event.data["n"] % k == idx

    return event_filter


async def bench_filtered(hass: HomeAssistant, n: int, k: int, yield_every: int) -> float:
    """K filtered listeners, each event delivered to exactly one; return events/s."""
    done = asyncio.Event()
    counts = [0] * k
    total = 0

    def make_listener(idx: int) -> Any:
        @callback
        def listener(event: Event) -> None:
            nonlocal total
            counts[idx] += 1
            total += 1
            if total == n:
                done.set()

        return listener

    unsubs = [
        hass.bus.async_listen(EVENT_TYPE, make_listener(i), event_filter=_make_filter(k, i))
        for i in range(k)
    ]
    try:
        elapsed = await _fire_and_wait(hass, n, done, yield_every)
    finally:
        for unsub in unsubs:
            unsub()
    expected = [n // k + (1 if i < n % k else 0) for i in range(k)]
    if counts != expected:
        raise RuntimeError("filtered: wrong per-listener delivery counts")
    return n / elapsed


async def _timed(label: str, coro_factory: Any, warmup: Any) -> float:
    await warmup()
    gc.collect()
    t0 = time.perf_counter()
    rate = await coro_factory()
    log(f"{label}: {rate:,.0f} events/s (scenario wall {time.perf_counter() - t0:.2f}s)")
    gc.collect()
    return rate


async def main(args: argparse.Namespace) -> dict[str, Any]:
    n, m, k, ye = args.events, args.filtered_events, args.subs, args.yield_every
    with tempfile.TemporaryDirectory(prefix="csuhub-ha-bench-") as config_dir:
        hass = HomeAssistant(config_dir)
        await hass.async_start()
        log(
            f"homeassistant {HA_VERSION}, python {sys.version.split()[0]}, "
            f"state={hass.state}, listeners before bench={hass.bus.async_listeners()}"
        )
        try:
            warm = min(n, 10_000)
            one = await _timed(
                f"one (N={n})",
                lambda: bench_one(hass, n, False, ye),
                lambda: bench_one(hass, warm, False, ye),
            )
            one_imm = await _timed(
                f"one_immediate (N={n})",
                lambda: bench_one(hass, n, True, ye),
                lambda: bench_one(hass, warm, True, ye),
            )
            filtered = await _timed(
                f"filtered (N={m}, K={k})",
                lambda: bench_filtered(hass, m, k, ye),
                lambda: bench_filtered(hass, min(m, 1_000), k, ye),
            )
        finally:
            log("stopping hass")
            await asyncio.wait_for(hass.async_stop(), timeout=30)
            log(f"hass state={hass.state}")
    return {
        "ha_version": HA_VERSION,
        "one_per_s": round(one, 1),
        "one_immediate_per_s": round(one_imm, 1),
        "filtered_per_s": round(filtered, 1),
        "events": n,
        "filtered_events": m,
        "subs": k,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=100_000, help="N for 'one' scenarios")
    p.add_argument("--subs", type=int, default=1_000, help="K listeners for 'filtered'")
    p.add_argument(
        "--filtered-events",
        type=int,
        default=None,
        help="N for 'filtered' (default: min(--events, 20000))",
    )
    p.add_argument(
        "--yield-every",
        type=int,
        default=0,
        help="await asyncio.sleep(0) after every B fires (0 = fire all N, then wait)",
    )
    args = p.parse_args(argv)
    if args.filtered_events is None:
        args.filtered_events = min(args.events, 20_000)
    if args.events < 1 or args.filtered_events < 1 or args.subs < 1:
        p.error("--events, --filtered-events and --subs must be >= 1")
    return args


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    result = asyncio.run(main(parse_args()))
    print(json.dumps(result), flush=True)
