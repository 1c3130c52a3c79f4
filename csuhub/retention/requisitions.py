"""Judicial requisitions: hold at once, report the scope exactly, export, hand over, close.

Status flow: ``requested`` → ``held`` (in the same transaction as the
registration: no instant where registered footage is unheld) → ``exported``
→ ``delivered`` → ``closed`` (with the outcome). Closing releases the legal
hold: the footage is subject to normal retention again, and what is already
past its age goes at the next sweep (the audit says how much).
"""

from __future__ import annotations

import asyncio
import csv
import html
import io
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import voluptuous as vol

from csuhub.config import validators as cv
from csuhub.events import RequisitionChanged
from csuhub.hashing import sha256_file
from csuhub.recording.export import ExportError, export_evidence, hub_name_of
from csuhub.recording.signing import fingerprint, load_or_create
from csuhub.store.requisitions import DuplicateReference
from csuhub.timeutil import TimeError, check_epoch, iso

if TYPE_CHECKING:
    from csuhub.hub import Hub

LEGAL_FRAMES = {
    "flagrant_delit": "flagrant délit",
    "enquete_preliminaire": "enquête préliminaire",
    "information_judiciaire": "information judiciaire",
}
OUTCOMES = ("helped", "not_helped", "unknown")
STATUSES = ("requested", "held", "exported", "delivered", "closed")
#: Two recorded segments closer than this are one continuous range.
JOIN = 1.5
Progress = Callable[[str, float], None]


class RequisitionError(Exception):
    """Bad input or a forbidden transition; the message is for the user."""


class RequisitionConflict(RequisitionError):
    """The request is valid but clashes with the register (a reference already used)."""


def _epoch(value: float) -> float:
    """A time the register can print (1970..9999); 1e15 was stored, then failed every listing."""
    try:
        return check_epoch(value)
    except TimeError as err:
        raise vol.Invalid(str(err)) from None


CREATE_SCHEMA = vol.Schema(
    {
        vol.Required("reference"): vol.All(str, vol.Strip, vol.Length(min=1, max=100)),
        vol.Required("service"): vol.All(str, vol.Strip, vol.Length(min=1, max=200)),
        vol.Required("officer"): vol.All(str, vol.Strip, vol.Length(min=1, max=200)),
        vol.Required("legal_frame"): vol.In(
            sorted(LEGAL_FRAMES), msg=f"must be one of {', '.join(sorted(LEGAL_FRAMES))}"
        ),
        vol.Required("cameras"): vol.All(cv.ensure_list, [cv.slug], vol.Length(min=1)),
        vol.Required("start"): vol.All(vol.Coerce(float), _epoch),
        vol.Required("end"): vol.All(vol.Coerce(float), _epoch),
        vol.Required("reason"): vol.All(str, vol.Strip, vol.Length(min=1, max=2000)),
    },
    extra=vol.PREVENT_EXTRA,
)


def _merge(spans: list[tuple[float, float]]) -> list[list[float]]:
    merged: list[list[float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + JOIN:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def _holes(start: float, end: float, present: list[list[float]]) -> list[tuple[float, float]]:
    holes = []
    cursor = start
    for lo, hi in present:
        if lo > cursor + JOIN:
            holes.append((cursor, min(lo, end)))
        cursor = max(cursor, hi)
    if cursor < end - JOIN:
        holes.append((cursor, end))
    return holes


def _explain(
    hole: tuple[float, float], gaps: list[Any], destroyed: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Split a missing range into what is known of it: destroyed (by which policy,
    when), never recorded (a gap and its reason), or not recorded (no trace)."""
    pieces: list[dict[str, Any]] = []
    lo, hi = hole
    marks: list[tuple[float, float, dict[str, Any]]] = []
    for gap in gaps:
        marks.append((gap.start, gap.end, {"why": "not_recorded", "reason": gap.reason}))
    for row in destroyed:
        marks.append(
            (
                row["footage_start"],
                row["footage_end"],
                {
                    "why": "destroyed",
                    "policy": row["policy"],
                    "destroyed_at": row["last_destroyed_at"],
                },
            )
        )
    marks.sort(key=lambda m: m[0])
    cursor = lo
    for start, end, what in marks:
        start, end = max(start, cursor), min(end, hi)
        if end <= start:
            continue
        if start > cursor:
            pieces.append({"from": cursor, "to": start, "why": "not_recorded", "reason": "unknown"})
        pieces.append({"from": start, "to": end, **what})
        cursor = end
    if cursor < hi:
        pieces.append({"from": cursor, "to": hi, "why": "not_recorded", "reason": "unknown"})
    return pieces


class Requisitions:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    @property
    def store(self) -> Any:
        return self.hub.store.requisitions

    async def scope(self, cameras: list[str], start: float, end: float) -> dict[str, Any]:
        """Per camera, exactly which ranges exist (and are held) and which do not, and why."""
        out: dict[str, Any] = {}
        for camera_id in cameras:
            spans = await self.store.coverage(camera_id, start, end)
            present = _merge([(max(s, start), min(e, end)) for s, e, ok in spans if ok])
            holes = _holes(start, end, present)
            missing: list[dict[str, Any]] = []
            if holes:
                gaps = await self.hub.store.gaps(camera_id, start, end)
                destroyed = await self.hub.store.retention.destructions(camera_id, start, end)
                for hole in holes:
                    missing.extend(_explain(hole, gaps, destroyed))
            seconds = sum(hi - lo for lo, hi in present)
            out[camera_id] = {
                "available": [{"from": lo, "to": hi} for lo, hi in present],
                "missing": missing,
                "available_seconds": seconds,
                "percent": 100.0 * seconds / (end - start) if end > start else 0.0,
            }
        return out

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
        if fields["end"] - fields["start"] > 31 * 86400:
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
                    camera_id,
                    req["start"],
                    req["end"],
                    user=actor,
                    reason=f"requisition {req['reference']}: {req['reason']}",
                    output=target,
                    progress=step,
                    extra=extra,
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
                }
            )
        if not files:
            raise RequisitionError(
                "nothing could be exported: "
                + "; ".join(f"{c}: {why}" for c, why in skipped.items())
            )
        receipt = render_receipt(
            self.hub, req, files, skipped, actor, hub_name=await hub_name_of(self.hub)
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
        ctx = await self.hub.retention.context()
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
        self.hub.retention.wake()
        result = await self.get(req_id)
        result["released"] = {**released, "past_age_segments": past_age}
        return result

    async def register_csv(self) -> str:
        """The register of requisitions and extractions, one line per extraction
        (and one per requisition without any), for an audit or the CNIL."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(
            [
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
            ]
        )
        tz = self.hub.config.hub.get("timezone", "Europe/Paris")
        extractions: dict[int, list[dict[str, Any]]] = {}
        for row in await self.store.extractions():
            extractions.setdefault(row["requisition_id"], []).append(row)
        for req in await self.store.list():
            base = [
                req["id"],
                req["reference"],
                req["service"],
                req["officer"],
                req["legal_frame"],
                " ".join(req["cameras"]),
                _iso(req["start"], tz),
                _iso(req["end"], tz),
                req["status"],
                req["outcome"] or "",
                _iso(req["created_at"], tz),
                req["created_by"],
                req["delivered_to"] or "",
                _iso(req["closed_at"], tz),
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
                            _iso(ext["created_at"], tz),
                            ext["created_by"],
                        ]
                    )
        return buffer.getvalue()

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


def _iso(epoch: float | None, tz: str) -> str:
    return "" if epoch is None else iso(epoch, tz)


def render_receipt(
    hub: Hub,
    req: dict[str, Any],
    files: list[dict[str, Any]],
    skipped: dict[str, str],
    actor: str,
    *,
    hub_name: str | None = None,
) -> str:
    """The handover receipt: one A4 page, printable, signed by hand by both parties.
    It prints the signing key's fingerprint: the channel by which the court learns
    which key to trust, outside the packages themselves."""
    tz = hub.config.hub.get("timezone", "Europe/Paris")
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(f['camera_id'])}</td><td>{e(_iso(f['from'], tz))}</td>"
        f"<td>{e(_iso(f['to'], tz))}</td><td>{f['seconds']:.0f}&nbsp;s</td>"
        f"<td>{e(f['file'])}</td><td class=h>{e(f['sha256'])}</td></tr>"
        for f in files
    )
    missing = "".join(f"<li>{e(camera)} : {e(why)}</li>" for camera, why in sorted(skipped.items()))
    scope_notes = ""
    for camera_id, entry in sorted((req.get("scope") or {}).items()):
        for piece in entry.get("missing", []):
            why = "détruit" if piece["why"] == "destroyed" else "non enregistré"
            detail = piece.get("policy") or piece.get("reason") or ""
            scope_notes += (
                f"<li>{e(camera_id)} : {e(_iso(piece['from'], tz))} → "
                f"{e(_iso(piece['to'], tz))} — {why} ({e(str(detail))})</li>"
            )
    frame = LEGAL_FRAMES.get(req["legal_frame"], req["legal_frame"])
    return RECEIPT.format(
        hub=e(hub_name or hub.name),
        reference=e(req["reference"]),
        service=e(req["service"]),
        officer=e(req["officer"]),
        frame=e(frame),
        reason=e(req["reason"]),
        start=e(_iso(req["start"], tz)),
        end=e(_iso(req["end"], tz)),
        rows=rows,
        missing=f"<h2>Sans extrait</h2><ul>{missing}</ul>" if missing else "",
        scope=f"<h2>Périmètre non disponible</h2><ul>{scope_notes}</ul>" if scope_notes else "",
        actor=e(actor),
        now=e(_iso(time.time(), tz)),
        fingerprint=e(_signer(hub)),
    )


def _signer(hub: Hub) -> str:
    """The fingerprint of the key the packages were signed with: printed on the
    receipt, the channel by which the court learns which key to trust."""
    key = hub.recording.signing_key or load_or_create(hub.data_dir)
    return fingerprint(key)


RECEIPT = """<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8">
<title>Remise d'extraction — {reference}</title>
<style>
@page {{ size: A4; margin: 15mm; }}
body {{ font: 11pt/1.4 "DejaVu Sans", Arial, sans-serif; color: #000; background: #fff; }}
h1 {{ font-size: 16pt; margin: 0 0 4mm; }} h2 {{ font-size: 12pt; margin: 6mm 0 2mm; }}
table {{ width: 100%; border-collapse: collapse; }}
th, td {{ border: 1px solid #000; padding: 1.5mm; text-align: left; vertical-align: top; }}
td.h {{ font-family: monospace; font-size: 7.5pt; word-break: break-all; }}
dl {{ display: grid; grid-template-columns: 45mm 1fr; gap: 1mm 4mm; margin: 0; }}
p.h {{ font-family: monospace; font-size: 10pt; }}
dt {{ font-weight: bold; }} dd {{ margin: 0; }}
.sign {{ display: grid; grid-template-columns: 1fr 1fr; gap: 10mm; margin-top: 12mm; }}
.sign div {{ border-top: 1px solid #000; padding-top: 2mm; height: 25mm; }}
tr, li, .sign {{ break-inside: avoid; }}
@media screen {{ body {{ max-width: 190mm; margin: 10mm auto; }} }}
</style></head><body>
<h1>Procès-verbal de remise d'extraction vidéo</h1>
<dl>
<dt>Centre</dt><dd>{hub}</dd>
<dt>Réquisition n°</dt><dd>{reference}</dd>
<dt>Service requérant</dt><dd>{service}</dd>
<dt>Officier</dt><dd>{officer}</dd>
<dt>Cadre juridique</dt><dd>{frame}</dd>
<dt>Motif</dt><dd>{reason}</dd>
<dt>Période demandée</dt><dd>{start} → {end}</dd>
</dl>
<h2>Extraits remis</h2>
<table><thead><tr><th>Caméra</th><th>Début</th><th>Fin</th><th>Durée</th><th>Fichier</th>
<th>SHA-256</th></tr></thead><tbody>{rows}</tbody></table>
{missing}{scope}
<p>Chaque fichier est un paquet de preuve signé (Ed25519) par la clé du centre dont
l'empreinte est :</p>
<p class=h><strong>{fingerprint}</strong></p>
<p>Vérification hors ligne : <code>csuhub verify &lt;fichier&gt;.zip --fingerprint
{fingerprint}</code> (code de sortie 0 : intact et signé par cette clé). Une clé jointe
au paquet ne prouve rien seule : seule cette empreinte, remise sur ce procès-verbal,
rattache les fichiers au centre.</p>
<p>Extraction réalisée par {actor}, le {now}.</p>
<div class="sign"><div>Remis par (opérateur du CSU)<br>nom, date, signature</div>
<div>Reçu par (officier requérant)<br>nom, date, signature</div></div>
</body></html>
"""
