"""The requisition workflow: hold at once, report the scope exactly, export, hand over, close.

Status flow: ``requested`` → ``held`` (in the same transaction as the
registration: no instant where registered footage is unheld) → ``exported``
→ ``delivered`` → ``closed`` (with the outcome). Closing releases the legal
hold: the footage is subject to normal retention again, and what is already
past its age goes at the next sweep (the audit says how much).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import voluptuous as vol

from csuhub.events import RequisitionChanged
from csuhub.hashing import sha256_file
from csuhub.recording.export import ExportError, export_evidence, hub_name_of
from csuhub.requisitions.model import (
    CREATE_SCHEMA,
    MAX_RANGE,
    OUTCOMES,
    RequisitionConflict,
    RequisitionError,
)
from csuhub.requisitions.receipt import render_receipt
from csuhub.requisitions.register import register_csv
from csuhub.requisitions.scope import requisition_scope
from csuhub.store.requisitions import DuplicateReference

if TYPE_CHECKING:
    from csuhub.recording.manager import RecordingManager
    from csuhub.retention.manager import RetentionManager
    from csuhub.services import HubServices

Progress = Callable[[str, float], None]


class Requisitions:
    def __init__(
        self, hub: HubServices, retention: RetentionManager, recording: RecordingManager
    ) -> None:
        self.hub = hub
        self.retention = retention
        self.recording = recording

    @property
    def store(self) -> Any:
        return self.hub.store.requisitions

    async def scope(self, cameras: list[str], start: float, end: float) -> dict[str, Any]:
        """Per camera, exactly which ranges exist (and are held) and which do not, and why."""
        return await requisition_scope(self.hub, cameras, start, end)

    async def create(self, payload: dict[str, Any], actor: str) -> dict[str, Any]:
        try:
            fields = CREATE_SCHEMA(payload)
        except vol.MultipleInvalid as err:
            raise RequisitionError(
                "; ".join(
                    f"{'.'.join(str(p) for p in e.path) or 'requisition'}: {e.msg}"
                    for e in err.errors
                )
            ) from None
        if fields["end"] <= fields["start"]:
            raise RequisitionError("the end of the range must be after its start")
        if fields["end"] - fields["start"] > MAX_RANGE:
            raise RequisitionError("a requisition covers at most 31 days; register several")
        known = {row.id for row in await self.hub.store.list_cameras()}
        known |= set(await self.hub.store.recorded_cameras())
        unknown = [c for c in fields["cameras"] if c not in known]
        if unknown:
            raise RequisitionError(f"unknown camera(s): {', '.join(unknown)}")
        fields["cameras"] = list(dict.fromkeys(fields["cameras"]))
        try:
            req_id, held = await self.store.create(fields, actor)
        except DuplicateReference:
            raise RequisitionConflict(
                f"a requisition with reference {fields['reference']!r} is already registered"
            ) from None
        scope = await self.scope(fields["cameras"], fields["start"], fields["end"])
        for camera_id, entry in scope.items():
            entry["held_segments"] = held[camera_id]["segments"]
            entry["held_bytes"] = held[camera_id]["bytes"]
        await self.store.set_scope(req_id, scope)
        await self.hub.store.audit(
            actor,
            "requisition.create",
            f"requisition:{req_id}",
            reference=fields["reference"],
            service=fields["service"],
            officer=fields["officer"],
            legal_frame=fields["legal_frame"],
            cameras=fields["cameras"],
            range=[fields["start"], fields["end"]],
            held_segments=sum(h["segments"] for h in held.values()),
        )
        self._changed(req_id, fields["reference"], "held")
        return await self.get(req_id)

    async def get(self, req_id: int) -> dict[str, Any]:
        found = await self.store.get(req_id)
        if found is None:
            raise RequisitionError(f"no requisition {req_id}")
        found["extractions"] = await self.store.extractions(req_id)
        return found

    async def resolve(self, key: str) -> dict[str, Any]:
        """By id, or by reference (what the officer quotes on the phone)."""
        # ASCII and within SQLite's int64: '²'.isdigit() is true, int('²') raises, and
        # a 20-digit id overflows the store (issue 10 §3)
        if key.isascii() and key.isdigit() and len(key) <= 18:
            found = await self.store.get(int(key))
            if found is not None:
                return await self.get(found["id"])
        found = await self.store.by_reference(key)
        if found is None:
            raise RequisitionError(f"no requisition {key!r}")
        return await self.get(found["id"])

    async def export(
        self,
        req_id: int,
        actor: str,
        output_dir: Path | None = None,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """One signed evidence package per camera with footage, plus the receipt."""
        req = await self.get(req_id)
        if req["status"] not in ("held", "exported", "delivered"):
            raise RequisitionError(f"requisition {req_id} is {req['status']}: nothing to export")
        folder = output_dir or self.export_dir(req_id)
        folder.mkdir(parents=True, exist_ok=True)
        report = progress or (lambda stage, fraction: None)
        files: list[dict[str, Any]] = []
        skipped: dict[str, str] = {}
        cameras = req["cameras"]
        extra = {
            "requisition": {
                "id": req["id"],
                "reference": req["reference"],
                "service": req["service"],
                "officer": req["officer"],
                "legal_frame": req["legal_frame"],
            }
        }
        # every export is a new file: the extraction register lists each one with its
        # SHA-256, so an earlier package must never be replaced under its line
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        for index, camera_id in enumerate(cameras):
            target = await asyncio.to_thread(
                _reserve, folder, f"{_safe(req['reference'])}_{camera_id}_{stamp}"
            )
            name = target.name

            def step(stage: str, fraction: float, index: int = index) -> None:
                report(stage, (index + fraction) / len(cameras))

            try:
                manifest = await export_evidence(
                    self.hub,
                    self.recording,
                    camera_id,
                    req["start"],
                    req["end"],
                    user=actor,
                    reason=f"requisition {req['reference']}: {req['reason']}",
                    output=target,
                    progress=step,
                    extra=extra,
                    # masked unless a lift naming this requisition is in force
                    requisition_id=req["id"],
                )
            except ExportError as err:
                target.unlink(missing_ok=True)  # the reservation, never a package
                skipped[camera_id] = str(err)
                continue
            except BaseException:
                target.unlink(missing_ok=True)
                raise
            digest = await asyncio.to_thread(sha256_file, target)
            size = target.stat().st_size
            seconds = manifest["actual"]["duration"]
            await self.store.add_extraction(
                requisition_id=req_id,
                camera_id=camera_id,
                start=manifest["actual"]["from"],
                end=manifest["actual"]["to"],
                seconds=seconds,
                file=name,
                sha256=digest,
                size=size,
                created_by=actor,
            )
            files.append(
                {
                    "camera_id": camera_id,
                    "file": name,
                    "sha256": digest,
                    "size": size,
                    "seconds": seconds,
                    "from": manifest["actual"]["from"],
                    "to": manifest["actual"]["to"],
                    "gaps": len(manifest["gaps"]),
                    "masks": [m["name"] for m in manifest["privacy_masks"]["masks"]],
                    "lift": manifest["privacy_masks"].get("lift"),
                }
            )
        if not files:
            raise RequisitionError(
                "nothing could be exported: "
                + "; ".join(f"{c}: {why}" for c, why in skipped.items())
            )
        receipt = render_receipt(
            self.hub,
            req,
            files,
            skipped,
            actor,
            hub_name=await hub_name_of(self.hub),
            key=self.recording.signing_key,
        )
        (folder / "receipt.html").write_text(receipt, encoding="utf-8")
        (folder / "requisition.json").write_text(
            json.dumps({**req, "files": files, "skipped": skipped}, indent=2, default=str),
            encoding="utf-8",
        )
        await self.store.transition(req_id, ("held", "exported", "delivered"), "exported")
        await self.hub.store.audit(
            actor,
            "requisition.export",
            f"requisition:{req_id}",
            reference=req["reference"],
            files=[{k: f[k] for k in ("file", "sha256", "size")} for f in files],
            skipped=skipped,
        )
        self._changed(req_id, req["reference"], "exported")
        report("done", 1.0)
        return {
            "folder": str(folder),
            "files": files,
            "skipped": skipped,
            "receipt": "receipt.html",
        }

    def export_dir(self, req_id: int) -> Path:
        return self.hub.data_dir / "exports" / "requisitions" / str(req_id)

    async def deliver(self, req_id: int, actor: str, to: str) -> dict[str, Any]:
        if not to.strip():
            raise RequisitionError("say to whom the package was handed over")
        req = await self.get(req_id)
        if not await self.store.transition(
            req_id, ("exported",), "delivered", delivered_to=to.strip()
        ):
            raise RequisitionError(
                f"requisition {req_id} is {req['status']}: only an exported one is delivered"
            )
        await self.hub.store.audit(
            actor,
            "requisition.deliver",
            f"requisition:{req_id}",
            reference=req["reference"],
            to=to.strip(),
        )
        self._changed(req_id, req["reference"], "delivered")
        return await self.get(req_id)

    async def close(self, req_id: int, actor: str, outcome: str) -> dict[str, Any]:
        if outcome not in OUTCOMES:
            raise RequisitionError(f"outcome must be one of {', '.join(OUTCOMES)}")
        req = await self.get(req_id)
        if not await self.store.transition(
            req_id,
            ("requested", "held", "exported", "delivered"),
            "closed",
            outcome=outcome,
            closed_at=time.time(),
        ):
            raise RequisitionError(f"requisition {req_id} is already closed")
        released = await self.hub.store.retention.release("requisition", str(req_id), actor)
        # what the release hands back to retention, and what is already past its age
        ctx = await self.retention.context()
        past_age = {}
        for camera_id in req["cameras"]:
            rules = ctx.retention_of(camera_id)
            entry = await self.hub.store.retention.expired_summary(
                camera_id, ctx.now - rules.retention, 0
            )
            if entry is not None:
                past_age[camera_id] = entry["segments"]
        await self.hub.store.audit(
            actor,
            "requisition.close",
            f"requisition:{req_id}",
            reference=req["reference"],
            outcome=outcome,
            holds_released=released["holds"],
            past_age_segments=past_age,
        )
        self._changed(req_id, req["reference"], "closed")
        self.retention.wake()
        result = await self.get(req_id)
        result["released"] = {**released, "past_age_segments": past_age}
        return result

    async def register_csv(self) -> str:
        """The register of requisitions and extractions (see ``register.py``)."""
        return await register_csv(self.hub)

    def _changed(self, req_id: int, reference: str, status: str) -> None:
        self.hub.bus.fire(
            RequisitionChanged(requisition_id=req_id, reference=reference, status=status)
        )


def _reserve(folder: Path, stem: str) -> Path:
    """Claim a file name no earlier export used, atomically (``O_EXCL``), so that two
    exports at once, even from two processes, never write the same package."""
    for n in range(1, 10_000):
        candidate = folder / (f"{stem}.zip" if n == 1 else f"{stem}-{n}.zip")
        try:
            with candidate.open("x"):
                return candidate
        except FileExistsError:
            continue
    raise RequisitionError(f"no free file name for {stem} in {folder}")


def _safe(reference: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", reference).strip("-")[:60] or "requisition"
