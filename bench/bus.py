#!/usr/bin/env python3
"""B3: event-bus throughput, fire and dispatch timed together.

Scenarios, all in this run:
  one       N events fired, one listener.
  filtered  N events over K=1,000 per-camera subscriptions; each event reaches
            exactly one subscriber. csuhub uses its indexed ``match=``; the
            ``where=`` predicate variant (O(K) per event, like HA's
            ``event_filter``) is reported too, for honesty.
Baselines:
  queue     a bare ``asyncio.Queue`` producer/consumer loop (same process).
  ha        Home Assistant's own ``EventBus`` (2024.3.3, newest for Python
            3.11), run by bench/_ha_baseline.py in a bench-only venv made by
            bench/setup_ha_env.sh (created on first use; ~90 s, not timed).

Targets: csuhub >= 1.5x HA on both scenarios, and within 3x of the bare queue.
The last line printed is the JSON result.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from csuhub.bus import EventBus
from csuhub.events import Event

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True, kw_only=True, slots=True)
class BenchEvent(Event):
    name: ClassVar[str] = "bench_event"
    n: int
    camera_id: str


async def csuhub_one(n: int) -> float:
    bus = EventBus()
    done = asyncio.Event()
    seen = 0

    def listener(event: BenchEvent) -> None:
        nonlocal seen
        seen += 1
        if seen == n:
            done.set()

    bus.listen(BenchEvent, listener)
    gc.collect()
    t0 = time.perf_counter()
    fire = bus.fire
    for i in range(n):
        fire(BenchEvent(n=i, camera_id="cam-0"))
    await done.wait()
    return n / (time.perf_counter() - t0)


async def csuhub_filtered(n: int, k: int, indexed: bool) -> float:
    bus = EventBus()
    done = asyncio.Event()
    counts = [0] * k
    total = 0

    def make(idx: int):  # type: ignore[no-untyped-def]
        def listener(event: BenchEvent) -> None:
            nonlocal total
            counts[idx] += 1
            total += 1
            if total == n:
                done.set()

        return listener

    cameras = [f"cam-{i}" for i in range(k)]
    for i in range(k):
        if indexed:
            bus.listen(BenchEvent, make(i), match={"camera_id": cameras[i]})
        else:
            bus.listen(BenchEvent, make(i), where=lambda e, c=cameras[i]: e.camera_id == c)
    gc.collect()
    t0 = time.perf_counter()
    fire = bus.fire
    for i in range(n):
        fire(BenchEvent(n=i, camera_id=cameras[i % k]))
    await done.wait()
    elapsed = time.perf_counter() - t0
    expected = [n // k + (1 if i < n % k else 0) for i in range(k)]
    if counts != expected:
        raise RuntimeError("filtered: wrong per-subscriber delivery counts")
    return n / elapsed


async def bare_queue(n: int) -> float:
    queue: asyncio.Queue[BenchEvent] = asyncio.Queue()
    done = asyncio.Event()

    async def consumer() -> None:
        seen = 0
        get = queue.get
        while True:
            await get()
            seen += 1
            if seen == n:
                done.set()
                return

    task = asyncio.create_task(consumer())
    gc.collect()
    t0 = time.perf_counter()
    put = queue.put_nowait
    for i in range(n):
        put(BenchEvent(n=i, camera_id="cam-0"))
    await done.wait()
    elapsed = time.perf_counter() - t0
    await task
    return n / elapsed


def ha_baseline(n: int, filtered_n: int, k: int) -> dict[str, float] | None:
    venv = Path(os.environ.get("CSUHUB_HA_VENV", Path.home() / ".cache" / "csuhub-bench-ha"))
    python = venv / "bin" / "python"
    if not python.exists():
        print("setting up the Home Assistant baseline venv (one-time, not timed)...", flush=True)
        setup = subprocess.run(["bash", str(HERE / "setup_ha_env.sh")], check=False)
        if setup.returncode != 0:
            print("HA baseline unavailable: setup_ha_env.sh failed", flush=True)
            return None
    proc = subprocess.run(
        [
            str(python),
            str(HERE / "_ha_baseline.py"),
            "--events",
            str(n),
            "--subs",
            str(k),
            "--filtered-events",
            str(filtered_n),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        print(f"HA baseline failed:\n{proc.stderr[-2000:]}", flush=True)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def best_of(runs: int, factory) -> float:  # type: ignore[no-untyped-def]
    return max(asyncio.run(factory()) for _ in range(runs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller run, under 60 s")
    parser.add_argument("--no-ha", action="store_true", help="skip the Home Assistant baseline")
    args = parser.parse_args()
    n = 100_000 if args.quick else 1_000_000
    k = 1_000
    filtered_n = n
    predicate_n = 5_000 if args.quick else 20_000
    runs = 1 if args.quick else 3

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cpu, python {platform.python_version()}"
    )
    print(f"events: {n:,} (one and indexed filtered), {predicate_n:,} (predicate filtered), K={k}")
    one = best_of(runs, lambda: csuhub_one(n))
    print(f"csuhub one listener          {one:>12,.0f} events/s")
    filtered = best_of(runs, lambda: csuhub_filtered(filtered_n, k, indexed=True))
    print(f"csuhub 1000 match= subs      {filtered:>12,.0f} events/s")
    predicate = best_of(1, lambda: csuhub_filtered(predicate_n, k, indexed=False))
    print(f"csuhub 1000 where= subs      {predicate:>12,.0f} events/s")
    queue = best_of(runs, lambda: bare_queue(n))
    print(f"bare asyncio.Queue           {queue:>12,.0f} events/s")

    ha = None if args.no_ha else ha_baseline(n, predicate_n, k)
    ok = one * 3 >= queue
    ratio = one / queue
    baseline = queue
    target = round(1 / 3, 3)  # without HA: within 3x of the bare queue
    print("target: >= 1.5x HA in both scenarios (ratio is the lower one), within 3x of bare queue")
    if ha is not None:
        print(f"HA {ha['ha_version']} one listener     {ha['one_per_s']:>12,.0f} events/s")
        if ha.get("one_immediate_per_s"):
            print(f"HA one (run_immediately)     {ha['one_immediate_per_s']:>12,.0f} events/s")
        print(f"HA 1000 filtered listeners   {ha['filtered_per_s']:>12,.0f} events/s")
        ratio_one = one / ha["one_per_s"]
        ratio_filtered = filtered / ha["filtered_per_s"]
        print(
            f"ratio one vs HA: {ratio_one:.2f}x; filtered vs HA: {ratio_filtered:.2f}x; "
            f"one vs bare queue: {one / queue:.2f}x"
        )
        ok = ok and ratio_one >= 1.5 and ratio_filtered >= 1.5
        baseline = ha["one_per_s"]
        ratio = min(ratio_one, ratio_filtered)
        target = 1.5
    else:
        print(f"HA baseline skipped; one vs bare queue: {one / queue:.2f}x")
    print(
        json.dumps(
            {
                "bench": "bus",
                "value": round(one),
                "baseline": round(baseline),
                "ratio": round(ratio, 3),
                "target": target,
                "ok": bool(ok),
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
