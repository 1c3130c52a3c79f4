"""B8 soak: what a shift measured, printed for people, then the JSON line's fields.

Apart from ``bench/soak.py`` (which runs the shift) so that each stays one
job: running the shift, and judging it against the issue's targets
(``soak_figures``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import soak_figures as fig
from soak_clients import PROBE_S

#: a fault explains a gap that ends this long after the source came back
EXPLAIN_AFTER = 60.0


def report(p: dict[str, Any], r: dict[str, Any], bitrate: str) -> dict[str, Any]:
    lag = fig.percentile(r["lags"], 99)
    bare = fig.percentile(r["bare"], 99)
    samples = r["samples"]
    warm = min(samples, key=lambda s: abs(s[0] - p["warm"]))
    last = samples[-1]
    rss_growth = fig.growth(warm[1], last[1])
    fds_flat = fig.flat(warm[2], last[2])
    threads_flat = fig.flat(warm[3], last[3])
    bad = fig.unexplained([*r["holes"], *r["events"]], r["faults"], EXPLAIN_AFTER)
    explained = len(r["events"]) - len(fig.unexplained(r["events"], r["faults"], EXPLAIN_AFTER))
    c = r["clients"]
    polls = c["polls"]
    calls = c["calls"]
    n, window = p["cameras"], r["cpu_window"]
    cpu = r["cpu"]
    total = sum(cpu.values())
    rec_per_cam = (cpu["recorder"] + cpu["python"]) / n / window
    all_per_cam = total / n / window
    destroyed = sum(s[0] for s in r["swept"])
    pressure = sum(s[2].get("storage_pressure", 0) for s in r["swept"])
    overhead = r["overhead"]
    worst_at, worst_lag = fig.worst(r["lags"], PROBE_S)
    print(
        f"loop lag p99: hub {lag:.1f} ms ({len(r['lags'])} samples), bare loop {bare:.1f} ms "
        f"({len(r['bare'])}); worst: hub {worst_lag:.0f} ms at {worst_at:.0f} s, bare "
        f"{max(r['bare']):.0f} ms"
    )
    curve = [samples[min(len(samples) - 1, len(samples) * k // 6)] for k in range(7)]
    print(
        "RSS (MiB) over the run: " + ", ".join(f"{s[1] / 1024:.0f} at {s[0]:.0f} s" for s in curve)
    )
    print(
        f"RSS {warm[1] / 1024:.0f} MiB at {warm[0]:.0f} s -> "
        f"{last[1] / 1024:.0f} MiB at {last[0]:.0f} s"
        f" ({rss_growth * 100:+.1f} %); fds {warm[2]} -> {last[2]}; threads {warm[3]} -> {last[3]}"
    )
    print(
        f"gaps: {len(r['events'])} gap events ({explained} explained by the injected fault), "
        f"{len(r['holes'])} holes in the continuity reports; unexplained: {len(bad)}"
    )
    if r["faults"]:
        print(f"the faulty camera recorded again after its source came back: {r['recovered']}")
    for gap in bad:
        print(f"  unexplained: {gap.camera_id} {gap.end - gap.start:.1f} s: {gap.reason}")
    print(
        f"retention: {len(r['swept'])} sweeps, {destroyed} segments destroyed ({pressure} under"
        f" storage pressure), alerts {sorted(set(r['alerts']))}"
    )
    print(
        f"exports: {r['exports']['ok']} ok (at s, took s: {r['exports']['s']}), "
        f"{len(r['exports']['failed'])} failed"
        + "".join(f"\n  {e}" for e in r["exports"]["failed"][:3])
    )
    print(
        f"calls: {calls['calls']} incidents opened ({calls['linked']} cameras linked), "
        f"{calls['call_errors']} refused, {calls['closed']} closed, "
        f"{calls['close_errors']} close errors"
    )
    kiosks = c["kiosks"]
    mbit = sum(k["bytes"] for k in kiosks) * 8 / 1e6 / p["seconds"]
    print(
        f"kiosks: {sum(k['tiles_max'] for k in kiosks)} tiles at most, {mbit:.1f} Mbit/s received, "
        f"{sum(k['opened'] for k in kiosks)} live sockets opened, "
        f"{sum(k['refreshes'] for k in kiosks)} wall refreshes, "
        f"{sum(k['errors'] for k in kiosks)} errors"
    )
    print(
        f"API: {len(polls['latencies'])} reads by 5 sessions, "
        f"p99 {fig.percentile(polls['latencies'], 99):.1f} ms,"
        f" {len(polls['errors'])} errors {sorted(set(polls['errors']))[:4]}"
    )
    print(
        f"CPU over {window:.0f} s after warm-up: python {cpu['python']:.1f} s, recorders' ffmpeg "
        f"{cpu['recorder']:.1f} s, other children {cpu['other']:.1f} s; per camera: recording "
        f"{rec_per_cam * 100:.2f} % of a core, whole shift {all_per_cam * 100:.2f} %"
    )
    print(
        f"footage: {r['segments']} segments kept, {r['bytes_per_s'] * 8 / 1e6:.3f} Mbit/s "
        f"per camera on disk for a {r['clip_bps'] / 1e6:.3f} Mbit/s video payload "
        f"(container {overhead * 100:+.2f} %)"
    )
    ok = (
        lag < fig.LAG_P99_TARGET_MS
        and rss_growth < fig.RSS_GROWTH_TARGET
        and not bad
        and fds_flat
        and threads_flat
        and not r["exports"]["failed"]
        and calls["call_errors"] == 0
        and calls["calls"] > 0
    )
    return {
        "bench": "soak",
        "value": round(lag, 2),
        "baseline": round(bare, 2),
        "ratio": round(lag / bare, 2) if bare > 0 else None,
        "target": fig.LAG_P99_TARGET_MS,
        "seconds": p["seconds"],
        "cameras": n,
        "bitrate": bitrate,
        "rss_growth": round(rss_growth, 4),
        "rss_mib": [round(warm[1] / 1024, 1), round(last[1] / 1024, 1)],
        "rss_curve_mib": [round(s[1] / 1024, 1) for s in curve],
        "lag_worst_ms": round(worst_lag, 1),
        "lag_worst_at_s": round(worst_at, 1),
        "fds": [warm[2], last[2]],
        "threads": [warm[3], last[3]],
        "gaps": len(r["events"]),
        "holes": len(r["holes"]),
        "gaps_unexplained": len(bad),
        "faults": len(r["faults"]),
        "fault_recovered": all(r["recovered"]),
        "sweeps": len(r["swept"]),
        "destroyed": destroyed,
        "destroyed_pressure": pressure,
        "exports": r["exports"]["ok"],
        "exports_failed": len(r["exports"]["failed"]),
        "calls": calls["calls"],
        "api_reads": len(polls["latencies"]),
        "api_p99_ms": round(fig.percentile(polls["latencies"], 99), 1),
        "api_errors": len(polls["errors"]),
        "live_mbit_s": round(mbit, 1),
        "cpu_per_camera_recording": round(rec_per_cam, 5),
        "cpu_per_camera_shift": round(all_per_cam, 5),
        "container_overhead": round(overhead, 4),
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
        "ok": ok,
    }
