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
from collections.abc import Awaitable, Callable
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
    UnknownCamera,
)
from csuhub.requisitions.receipt import render_receipt
from csuhub.requisitions.register import register_csv
from csuhub.requisitions.scope import requisition_scope
from csuhub.requisitions.story import Story
from csuhub.security.context import acting
from csuhub.security.permissions import Principal
from csuhub.store.requisitions import DuplicateReference

if TYPE_CHECKING:
    from csuhub.recording.manager import RecordingManager
    from csuhub.retention.manager import RetentionManager
    from csuhub.services import HubServices

Progress = Callable[[str, float], None]
#: the caller's camera scope: may it see this camera?
Visible = Callable[[str], Awaitable[bool]]


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

    async def create(
        self,
        payload: dict[str, Any],
        actor: str | Principal,
        visible: Visible | None = None,
    ) -> dict[str, Any]:
        """Register the requisition and hold its footage. ``visible`` is the
        caller's camera scope: a camera outside it is refused as unknown."""
        who = acting(actor)
        reason = payload.get("reason")
        story = Story(self.hub.store, who, "requisition.create", None, _text(reason, 2000))
        async with story.told():
            return await self._create(story, payload, visible)

    async def _create(
        self, story: Story, payload: dict[str, Any], visible: Visible | None
    ) -> dict[str, Any]:
        named = {"reference": _text(payload.get("reference"), 100)}
        try:
            fields = CREATE_SCHEMA(payload)
        except vol.MultipleInvalid as err:
            raise await story.refuse(
                "; ".join(
                    f"{'.'.join(str(p) for p in e.path) or 'requisition'}: {e.msg}"
                    for e in err.errors
                ),
                **named,
            ) from None
        if fields["end"] <= fields["start"]:
            raise await story.refuse("the end of the range must be after its start", **named)
        if fields["end"] - fields["start"] > MAX_RANGE:
            raise await story.refuse(
                "a requisition covers at most 31 days; register several", **named
            )
        fields["cameras"] = list(dict.fromkeys(fields["cameras"]))
        hidden = [c for c in fields["cameras"] if visible is not None and not await visible(c)]
        known = {row.id for row in await self.hub.store.list_cameras()}
        known |= set(await self.hub.store.recorded_cameras())
        unknown = [c for c in fields["cameras"] if c not in known or c in hidden]
        if unknown:
            # out of scope and unknown read the same to the caller; the audit tells them apart
            raise await story.refuse(
                f"unknown camera(s): {', '.join(unknown)}",
                UnknownCamera,
                **named,
                out_of_scope=hidden,
            )
        entry = story.entry(
            {
                "reference": fields["reference"],
                "service": fields["service"],
                "officer": fields["officer"],
                "legal_frame": fields["legal_frame"],
                "cameras": fields["cameras"],
                "range": [fields["start"], fields["end"]],
            }
        )
        try:
            req_id, held = await self.store.create(fields, story.who.name, entry)
        except DuplicateReference:
            raise await story.refuse(
                f"a requisition with reference {fields['reference']!r} is already registered",
                RequisitionConflict,
                **named,
            ) from None
        story.done()
        scope = await self.scope(fields["cameras"], fields["start"], fields["end"])
        for camera_id, entry_scope in scope.items():
            entry_scope["held_segments"] = held[camera_id]["segments"]
            entry_scope["held_bytes"] = held[camera_id]["bytes"]
        await self.store.set_scope(req_id, scope)
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
        actor: str | Principal,
        output_dir: Path | None = None,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """One signed evidence package per camera with footage, plus the receipt.

        Audited when it starts (a crash mid-export leaves that entry), then with
        the status change that ends it, or as failed."""
        story = Story(self.hub.store, acting(actor), "requisition.export", f"requisition:{req_id}")
        async with story.told():
            req = await self._get(story, req_id)
            story.reason = req["reason"]
            if req["status"] not in ("held", "exported", "delivered"):
                raise await story.refuse(
                    f"requisition {req_id} is {req['status']}: nothing to export",
                    status=req["status"],
                )
            await story.start(
                reference=req["reference"],
                cameras=req["cameras"],
                range=[req["start"], req["end"]],
            )
            return await self._export(req, story, output_dir, progress)

    async def _export(
        self,
        req: dict[str, Any],
        story: Story,
        output_dir: Path | None,
        progress: Progress | None,
    ) -> dict[str, Any]:
        req_id = req["id"]
        actor = story.who.name
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
        entry = story.entry(
            {
                "reference": req["reference"],
                "files": [{k: f[k] for k in ("file", "sha256", "size")} for f in files],
                "skipped": skipped,
            }
        )
        if not await self.store.transition(
            req_id, ("held", "exported", "delivered"), "exported", entry=entry
        ):
            raise RequisitionError(f"requisition {req_id} was closed during its export")
        story.done()
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

    async def deliver(self, req_id: int, actor: str | Principal, to: str) -> dict[str, Any]:
        story = Story(self.hub.store, acting(actor), "requisition.deliver", f"requisition:{req_id}")
        async with story.told():
            if not to.strip():
                raise await story.refuse("say to whom the package was handed over")
            req = await self._get(story, req_id)
            params = {"reference": req["reference"], "to": to.strip()}
            if not await self.store.transition(
                req_id,
                ("exported",),
                "delivered",
                entry=story.entry(params),
                delivered_to=to.strip(),
            ):
                raise await story.refuse(
                    f"requisition {req_id} is {req['status']}: only an exported one is delivered",
                    status=req["status"],
                )
            story.done()
        self._changed(req_id, req["reference"], "delivered")
        return await self.get(req_id)

    async def close(self, req_id: int, actor: str | Principal, outcome: str) -> dict[str, Any]:
        who = acting(actor)
        target = f"requisition:{req_id}"
        story = Story(self.hub.store, who, "requisition.close", target)
        async with story.told():
            if outcome not in OUTCOMES:
                raise await story.refuse(
                    f"outcome must be one of {', '.join(OUTCOMES)}", asked=_text(outcome, 40)
                )
            req = await self._get(story, req_id)
            params = {"reference": req["reference"], "outcome": outcome}
            if not await self.store.transition(
                req_id,
                ("requested", "held", "exported", "delivered"),
                "closed",
                entry=story.entry(params),
                outcome=outcome,
                closed_at=time.time(),
            ):
                raise await story.refuse(
                    f"requisition {req_id} is already closed", status=req["status"]
                )
            story.done()
        released = await self.hub.store.retention.release("requisition", str(req_id), who.name)
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
        await self.hub.store.audit_event(
            who,
            "requisition.release",
            target,
            reference=req["reference"],
            holds_released=released["holds"],
            past_age_segments=past_age,
        )
        self._changed(req_id, req["reference"], "closed")
        self.retention.wake()
        result = await self.get(req_id)
        result["released"] = {**released, "past_age_segments": past_age}
        return result

    async def _get(self, story: Story, req_id: int) -> dict[str, Any]:
        """The requisition a step is on (as :meth:`get`); none is a refusal of the step."""
        found = await self.store.get(req_id)
        if found is None:
            raise await story.refuse(f"no requisition {req_id}")
        found["extractions"] = await self.store.extractions(req_id)
        return found

    async def register_csv(self, requisitions: list[dict[str, Any]] | None = None) -> str:
        """The register of requisitions and extractions (see ``register.py``)."""
        return await register_csv(self.hub, requisitions)

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


def _text(value: Any, limit: int) -> str | None:
    """A field of a refused request as the audit keeps it: text, bounded."""
    return (value.strip()[:limit] or None) if isinstance(value, str) else None


def _safe(reference: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", reference).strip("-")[:60] or "requisition"
