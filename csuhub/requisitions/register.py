"""The register of requisitions and extractions as CSV, for an audit or the CNIL:
one line per extraction, and one per requisition without any, so that every
requisition appears and every handed-over file is traceable to its SHA-256."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

from csuhub.timeutil import iso_or_blank

if TYPE_CHECKING:
    from csuhub.services import HubServices

COLUMNS = (
    "requisition_id",
    "reference",
    "service",
    "officer",
    "legal_frame",
    "cameras",
    "from",
    "to",
    "status",
    "outcome",
    "created_at",
    "created_by",
    "delivered_to",
    "closed_at",
    "extraction_id",
    "extraction_camera",
    "extraction_file",
    "extraction_sha256",
    "extraction_seconds",
    "extracted_at",
    "extracted_by",
)


async def register_csv(hub: HubServices, requisitions: list[dict[str, Any]] | None = None) -> str:
    """The register of ``requisitions`` (rows of ``store.requisitions.list``; by
    default, all), times in the hub's time zone."""
    store = hub.store.requisitions
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    tz = hub.config.settings.hub.timezone
    extractions: dict[int, list[dict[str, Any]]] = {}
    for row in await store.extractions():
        extractions.setdefault(row["requisition_id"], []).append(row)
    for req in await store.list() if requisitions is None else requisitions:
        base = [
            req["id"],
            req["reference"],
            req["service"],
            req["officer"],
            req["legal_frame"],
            " ".join(req["cameras"]),
            iso_or_blank(req["start"], tz),
            iso_or_blank(req["end"], tz),
            req["status"],
            req["outcome"] or "",
            iso_or_blank(req["created_at"], tz),
            req["created_by"],
            req["delivered_to"] or "",
            iso_or_blank(req["closed_at"], tz),
        ]
        rows = extractions.get(req["id"]) or [None]
        for ext in rows:
            if ext is None:
                writer.writerow([*base, "", "", "", "", "", "", ""])
            else:
                writer.writerow(
                    [
                        *base,
                        ext["id"],
                        ext["camera_id"],
                        ext["file"],
                        ext["sha256"],
                        f"{ext['seconds']:.1f}",
                        iso_or_blank(ext["created_at"], tz),
                        ext["created_by"],
                    ]
                )
    return buffer.getvalue()
