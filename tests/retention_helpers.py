"""Seed a hub's index and storage with real (small) segment files, fast."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

SEGMENT = 120.0


def rel_path(camera_id: str, start: float) -> str:
    t = time.gmtime(start)
    folder = f"{t.tm_year:04d}/{t.tm_mon:02d}/{t.tm_mday:02d}/{t.tm_hour:02d}"
    return f"{camera_id}/{folder}/{int(start)}.mp4"


def seed(
    db: Path,
    root: Path,
    segments: list[tuple[str, float]],
    *,
    length: float = SEGMENT,
    size: int = 64,
) -> list[str]:
    """Index ``(camera, start)`` segments and write their files; returns the paths."""
    payload = b"\0" * size
    made: set[str] = set()
    rows = []
    for camera_id, start in segments:
        rel = rel_path(camera_id, start)
        folder = rel.rpartition("/")[0]
        if folder not in made:
            (root / folder).mkdir(parents=True, exist_ok=True)
            made.add(folder)
        (root / rel).write_bytes(payload)
        rows.append((camera_id, start, start + length, length, size, rel, None, "ok", time.time()))
    con = sqlite3.connect(db)
    con.executemany(
        "INSERT INTO segments(camera_id, start, end, duration, size, path, sha256, status, "
        "indexed_at) VALUES(?,?,?,?,?,?,?,?,?)",
        rows,
    )
    con.commit()
    con.close()
    return [r[5] for r in rows]


def files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*.mp4")}


def indexed(db: Path) -> set[str]:
    con = sqlite3.connect(db)
    try:
        return {r[0] for r in con.execute("SELECT path FROM segments")}
    finally:
        con.close()


def mount_tmpfs(path: Path, size: str) -> Path:
    """A small real file system to fill up (needs root, as the suite does)."""
    import subprocess

    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    return path


def unmount(path: Path) -> None:
    import subprocess

    subprocess.run(["umount", "-l", str(path)], check=False)  # lazy: a straggler cannot keep it


def pressure_site(storage: Path, authorization: dict[str, str]) -> dict[str, object]:
    """A hub recording on ``storage`` with only the storage_pressure policy (free 40 %,
    up to 80 %, critical 1 %) and one disabled camera whose authorisation sets a
    2-day minimum retention."""
    return {
        "hub": {"timezone": "UTC"},
        "recording": {"storage": str(storage)},
        "cameras": [
            {
                "id": "cam-m",
                "driver": "rtsp",
                "enabled": False,
                "options": {"url": "rtsp://127.0.0.1:9/x", "host": "127.0.0.1", "port": 9},
                "authorization": {**authorization, "min_retention": "2d"},
            }
        ],
        "retention": {
            "interval": "1h",
            "policies": [
                {
                    "policy": "storage_pressure",
                    "options": {
                        "min_free_percent": 40,
                        "target_free_percent": 80,
                        "critical_free_percent": 1,
                    },
                }
            ],
        },
    }
