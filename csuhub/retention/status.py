"""What retention is doing, for people: ``csuhub retention status`` and
``GET /api/retention/status``. Reads only; never changes what a sweep does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from csuhub.retention.context import SweepContext

if TYPE_CHECKING:
    from csuhub.retention.sweep import SweepReport


async def retention_status(
    ctx: SweepContext, interval: float, policies: list[str], last: SweepReport | None
) -> dict[str, Any]:
    """Per camera its rules and oldest footage; the disk, the holds, the last sweeps,
    and the alerts of the last sweep, as of ``ctx.now``."""
    store = ctx.hub.store.retention
    overview = await store.overview()
    total, free = ctx.disk() if ctx.storage_root.exists() else (0, 0)
    cameras = []
    for camera_id in sorted(set(overview) | set(ctx.cameras)):
        rules = ctx.retention_of(camera_id)
        data = overview.get(camera_id, {})
        oldest = data.get("oldest")
        cameras.append(
            {
                "camera_id": camera_id,
                "retention": rules.retention,
                "minimum": rules.minimum,
                "oldest": oldest,
                "age": None if oldest is None else ctx.now - oldest,
                **data,
            }
        )
    holds = await store.holds()
    sweeps = await store.sweeps(5)
    return {
        "now": ctx.now,
        "legal_cap": ctx.cap,
        "law": ctx.law,
        "default_retention": ctx.default_retention,
        "interval": interval,
        "policies": policies,
        "disk": {
            "total": total,
            "free": free,
            "free_percent": (100.0 * free / total) if total else None,
        },
        "cameras": cameras,
        "holds": [h.as_dict() for h in holds],
        "last_sweeps": sweeps,
        "alerts": list(last.alerts) if last else [],
    }
