"""Benchmark: ``csuhub audit verify`` over 1M entries against a bare SHA-256 chain loop.

Issue 12's target: verifying the chain takes at most twice as long as the
simplest chain loop one could write over the same rows. Both read the same
rows with the same query from the same SQLite file (warm cache, each run
twice, best time kept); the baseline then only joins each row's fields as text
and hashes them with the previous digest, while verify encodes each entry
canonically (docs/audit.md), compares links and hashes, and checks anchors.

    python bench/audit.py            # 1M entries
    python bench/audit.py --quick    # 200k entries, well under a minute

The last line is the JSON object the other bench/ scripts print.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from csuhub.audit.chain import COLUMNS, GENESIS, details_text, entry_hash
from csuhub.store import Store
from csuhub.store.audit import verify

_SELECT = "SELECT " + ", ".join(f'"{c}"' for c in COLUMNS) + " FROM audit_log ORDER BY id"
_ACTIONS = [
    ("recording.view", "consultation"),
    ("camera.ptz", "admin"),
    ("camera.snapshot", "consultation"),
    ("login", "access"),
    ("recording.export", "extraction"),
]


def build(path: Path, count: int) -> None:
    async def schema() -> None:
        store = Store(path)
        await store.open()
        await store.close()

    asyncio.run(schema())
    rng = random.Random(12)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    prev = GENESIS
    batch = []
    t0 = 1_764_000_000.0
    for rid in range(1, count + 1):
        action, cls = _ACTIONS[rid % len(_ACTIONS)]
        params = {"start": t0 + rid, "end": t0 + rid + 60, "pan": round(rng.random(), 3)}
        values = [
            rid,
            t0 + rid * 0.731,
            f"user{rid % 37}",
            "operator",
            f"sess-{rid % 101:04d}",
            f"10.0.{rid % 7}.{rid % 250}",
            action,
            f"cam-{rid % 300:03d}",
            details_text(params),
            "appel 17 rixe" if rid % 3 == 0 else None,
            "ok",
            None,
            cls,
            prev,
        ]
        prev = entry_hash(values)
        batch.append((*values, prev))
        if len(batch) == 50_000:
            _insert(conn, batch)
            batch = []
    _insert(conn, batch)
    conn.execute("COMMIT")
    conn.close()


def _insert(conn: sqlite3.Connection, batch: list[tuple[object, ...]]) -> None:
    conn.executemany(
        "INSERT INTO audit_log(" + ", ".join(f'"{c}"' for c in COLUMNS) + ") "
        "VALUES(" + ", ".join("?" * len(COLUMNS)) + ")",
        batch,
    )


def baseline(path: Path) -> tuple[float, str]:
    """The bare loop: same rows, fields joined as text, SHA-256 chained."""
    conn = sqlite3.connect(path)
    start = time.perf_counter()
    cur = conn.cursor()
    cur.arraysize = 4096
    prev = GENESIS.encode()
    sha = hashlib.sha256
    for row in cur.execute(_SELECT):
        prev = sha(prev + "\x1f".join(map(str, row[:14])).encode()).hexdigest().encode()
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed, prev.decode()


def verified(path: Path) -> tuple[float, int, bool]:
    conn = sqlite3.connect(path, isolation_level=None)
    start = time.perf_counter()
    report = verify(conn, {}, None)
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed, report.entries, report.ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="200k entries")
    parser.add_argument("--entries", type=int, help="number of entries (default 1M)")
    args = parser.parse_args()
    count = args.entries or (200_000 if args.quick else 1_000_000)
    work = Path(tempfile.mkdtemp(prefix="csuhub-bench-audit-"))
    try:
        path = work / "csuhub.db"
        t = time.perf_counter()
        build(path, count)
        print(f"built {count} chained entries in {time.perf_counter() - t:.1f} s", flush=True)
        base = min(baseline(path)[0] for _ in range(2))
        runs = [verified(path) for _ in range(2)]
        value = min(r[0] for r in runs)
        entries_ok = all(r[1] == count and r[2] for r in runs)
        ratio = value / base if base else float("inf")
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}"
        )
        print(f"verify {value:.2f} s, bare loop {base:.2f} s, {count / value:,.0f} entries/s")
        print(
            json.dumps(
                {
                    "bench": "audit_verify" + ("_quick" if args.quick else ""),
                    "value": round(value, 4),
                    "baseline": round(base, 4),
                    "ratio": round(ratio, 3),
                    "target": 2.0,
                    "entries": count,
                    "ok": ratio <= 2.0 and entries_ok,
                }
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
