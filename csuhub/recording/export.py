"""Evidence export: one MP4 for [from, to], with a signed manifest, in one zip.

How the cut works (documented for the court): the segments covering the range
are joined with ffmpeg's concat demuxer and stream copy (no re-encoding, so
the pictures are the camera's own), except through privacy masks: re-encoded
(``privacy_masks`` in the manifest says with which; ``docs/masks.md``).
``inpoint`` on the first segment and ``outpoint`` on the last trim the range;
with stream copy the start snaps to the keyframe at or before ``from`` (at
most one GOP earlier, typically 1-2 s), and the end to the last packet before
``to``. The manifest gives the requested range and the actual one (measured).

Before cutting, every source segment's SHA-256 is recomputed and compared
with the index: a segment altered on disk stops the export, by name.

ffmpeg writes the cut (fragmented MP4, front to back) straight into the zip,
after ``video.mp4``'s local header, while a thread hashes it (SHA-256 for the
manifest, CRC-32 for the zip) from the page cache: the footage is written
once (``csuhub.recording.package``).

The package: ``video.mp4``, ``manifest.json`` (camera, authorisation,
requested and actual ranges, gaps, source segments with hashes, output hash,
ffmpeg version, hub, user, reason, time, the signer's fingerprint, and the
SHA-256 and size of every other member), ``manifest.sig`` (Ed25519 over the
manifest's bytes), ``public_key.pem`` and ``LISEZMOI.txt`` (which prints the
fingerprint). Checking it is ``csuhub.recording.verify``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from csuhub import __version__
from csuhub.hashing import sha256_file
from csuhub.masks.apply import MaskingFailed, export_cut_args
from csuhub.masks.policy import export_plan, lift_held
from csuhub.recording.concat import concat_list
from csuhub.recording.continuity import continuity
from csuhub.recording.cutting import cut_to, hash_following
from csuhub.recording.layout import OutsideRoot, resolve_segment
from csuhub.recording.package import PackageWriter, readme_text
from csuhub.recording.signing import fingerprint, load_or_create, public_pem
from csuhub.recording.verify import (
    FORMAT,
    MANIFEST,
    PUBLIC_KEY,
    README,
    SIGNATURE,
    VIDEO,
    Verification,
    verify_package,
)
from csuhub.security.context import acting

if TYPE_CHECKING:
    from csuhub.recording.manager import RecordingManager
    from csuhub.services import HubServices
    from csuhub.supervisor import ProcessGroup

__all__ = ["ExportError", "OutputError", "Verification", "export_evidence", "verify_package"]

Progress = Callable[[str, float], None]


class ExportError(Exception):
    """The export was refused or failed; nothing was left at the output path."""


class OutputError(ExportError):
    """The output path cannot be written (missing or read-only folder, disk full)."""


_VERSIONS: dict[str, str] = {}


async def ffmpeg_version(processes: ProcessGroup, binary: str) -> str:
    if binary in _VERSIONS:
        return _VERSIONS[binary]
    # through the hub's process group, like every child: it dies with the hub (even
    # by kill -9) and is reaped at stop, so no transport outlives the event loop
    proc = await processes.spawn(
        [binary, "-version"], stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        out, _ = await proc.communicate()
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await asyncio.shield(proc.wait())
        raise
    first = out.decode(errors="replace").splitlines()[:1]
    _VERSIONS[binary] = first[0] if first else "unknown"
    return _VERSIONS[binary]


async def export_evidence(
    hub: HubServices,
    recording: RecordingManager,
    camera_id: str,
    start: float,
    end: float,
    *,
    user: str,
    reason: str,
    output: Path,
    progress: Progress | None = None,
    extra: dict[str, Any] | None = None,
    hub_name: str | None = None,
    requisition_id: int | None = None,
) -> dict[str, Any]:
    """Build the package at ``output`` (atomically: nothing is left there on failure);
    returns the manifest. ``hub_name`` overrides the hub's name (``hub_name_of``).
    The camera's privacy masks are painted in unless ``requisition_id`` names a
    requisition a lift in force unmasks this camera for.

    Audited when it starts (the range, the reason), then as ended or failed
    (``ref`` to the start): a crash mid-export leaves the start on record."""
    if end <= start:
        raise ExportError("the end of the range must be after its start")
    if not reason.strip():
        raise ExportError("an export needs a stated reason (it is recorded)")
    who = acting(user)
    started = await hub.store.audit_event(
        who,
        "recording.export",
        camera_id,
        reason=reason,
        outcome="started",
        requested=[start, end],
        package=str(output),
        **(extra or {}),
    )
    try:
        manifest = await _export(
            hub,
            recording,
            camera_id,
            start,
            end,
            user=user,
            reason=reason,
            output=output,
            progress=progress,
            extra=extra,
            hub_name=hub_name,
            requisition_id=requisition_id,
        )
    except BaseException as err:
        await hub.store.audit_event(
            who,
            "recording.export",
            camera_id,
            reason=reason,
            outcome="failed",
            ref=started,
            error=(str(err) or type(err).__name__)[:300],
        )
        raise
    masking = manifest["privacy_masks"]
    await hub.store.audit_event(
        who,
        "recording.export",
        camera_id,
        reason=reason,
        ref=started,
        output_sha256=manifest["output"]["sha256"],
        masked=masking["applied"],
        masks=[m["name"] for m in masking["masks"]],
        lift=(masking.get("lift") or {}).get("id"),
    )
    (progress or (lambda stage, fraction: None))("done", 1.0)
    return manifest


async def _export(
    hub: HubServices,
    recording: RecordingManager,
    camera_id: str,
    start: float,
    end: float,
    *,
    user: str,
    reason: str,
    output: Path,
    progress: Progress | None,
    extra: dict[str, Any] | None,
    hub_name: str | None,
    requisition_id: int | None,
) -> dict[str, Any]:
    report = progress or (lambda stage, fraction: None)
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ExportError("ffmpeg is not installed")
    if not output.parent.is_dir():
        raise OutputError(f"cannot write {output}: {output.parent} is not a directory")
    camera = await hub.store.get_camera(camera_id)
    if camera is None:
        raise ExportError(f"no camera {camera_id!r}")
    segments = [s for s in await hub.store.segments(camera_id, start, end) if s.status == "ok"]
    if not segments:
        raise ExportError(f"no footage of {camera_id} between those times")
    hub_name = hub_name or await hub_name_of(hub)
    try:  # masks unknown (a --data export before the hub ever recorded them): refuse
        plan = await export_plan(hub, camera_id, requisition_id)
    except MaskingFailed as err:
        raise ExportError(str(err)) from None
    root = recording.storage_root()
    loop = asyncio.get_running_loop()
    try:  # checks every segment's path against the storage root, before any is read
        script = concat_list(root, segments, start, end)
    except OutsideRoot as err:
        raise ExportError(str(err)) from None
    # the sources are verified while ffmpeg cuts (both read the same, cached, files);
    # a mismatch discards the cut
    verifying = loop.run_in_executor(None, _verify_sources, root, segments)

    try:  # the package is made in a folder beside the output and renamed into place
        with tempfile.TemporaryDirectory(prefix="csuhub-export-", dir=output.parent) as tmp:
            work = Path(tmp)
            (work / "list.ffconcat").write_text(script)
            try:
                command, masking = await export_cut_args(
                    hub.processes,
                    plan,
                    ffmpeg,
                    work / "list.ffconcat",
                    resolve_segment(root, segments[0].path),
                    work,
                    "pipe:1",
                    "-progress",
                    "pipe:2",
                )
            except (MaskingFailed, OutsideRoot) as err:  # never exported unmasked instead
                await asyncio.gather(verifying, return_exceptions=True)
                raise ExportError(f"the footage cannot be masked: {err}") from None
            covered_start = max(start, segments[0].start)
            covered_end = min(end, segments[-1].end)
            package = work / "package.zip"
            handle = package.open("wb")
            writer = PackageWriter(handle)
            done = threading.Event()
            hashing: asyncio.Future[tuple[str, int, int]] | None = None
            try:
                # ffmpeg writes the cut (fragmented MP4: front to back, no faststart
                # rewrite) straight into the package, after video.mp4's local header;
                # a thread follows it, hashing (SHA-256, CRC-32) as it grows
                offset = writer.begin("video.mp4")
                handle.flush()
                hashing = loop.run_in_executor(None, hash_following, package, offset, done)
                try:
                    code, err, duration = await cut_to(
                        hub.processes,
                        handle.fileno(),
                        ffmpeg,
                        work / "list.ffconcat",
                        covered_end - covered_start,
                        lambda f: report("cutting", 0.3 + 0.6 * f),
                        command,
                    )
                finally:
                    done.set()
                sources = await verifying
                report("verifying sources", 0.9)
                if code != 0:
                    raise ExportError(f"ffmpeg failed to cut the range: {err.strip()[-300:]}")
                if duration <= 0:
                    raise ExportError("the cut produced no video")
                output_sha, crc, size = await hashing
                handle.seek(0, 2)  # ffmpeg moved the shared file offset, not our object's
                if handle.tell() != offset + size:
                    raise ExportError("the cut's size changed while it was hashed")
                writer.end(crc, size)
                content = sum(min(end, seg.end) - max(start, seg.start) for seg in segments)
                preroll = max(0.0, duration - content)  # the keyframe snap before 'from'
                gaps = await continuity(hub.store, camera_id, start, end)
                manifest: dict[str, Any] = {
                    "format": FORMAT,
                    "csuhub_version": __version__,
                    "hub": hub_name,
                    "camera": {
                        "id": camera.id,
                        "name": camera.name,
                        "location": camera.location,
                        "authorization": {
                            "reference": camera.authorization_ref,
                            "issued": camera.authorization_issued,
                            "expires": camera.authorization_expires,
                        },
                    },
                    "requested": {"from": start, "to": end},
                    "actual": {
                        "from": covered_start - preroll,
                        "to": covered_end,
                        "duration": duration,
                    },
                    "cut": "concat demuxer, "
                    + ("masks painted, re-encoded" if masking["applied"] else "stream copy")
                    + "; the start snaps to the keyframe at or before the requested time; the "
                    "video is continuous: the gaps listed here are absent from it, not filled",
                    "privacy_masks": masking,
                    "gaps": gaps["gaps"],
                    "recorded_percent": gaps["percent"],
                    "sources": sources,
                    "output": {"file": "video.mp4", "sha256": output_sha, "size": size},
                    "ffmpeg": await ffmpeg_version(hub.processes, ffmpeg),
                    "exported_by": user,
                    "reason": reason,
                    "exported_at": time.time(),
                    **(extra or {}),
                }
                key = recording.signing_key or load_or_create(hub.data_dir)
                report("packaging", 0.95)
                signer = fingerprint(key)
                readme = readme_text(hub_name, camera.id, user, signer, masking["applied"])
                pem = public_pem(key)
                manifest["signer"] = signer
                manifest["members"] = {
                    VIDEO: {"sha256": output_sha, "size": size},
                    README: {"sha256": hashlib.sha256(readme).hexdigest(), "size": len(readme)},
                    PUBLIC_KEY: {"sha256": hashlib.sha256(pem).hexdigest(), "size": len(pem)},
                }
                await loop.run_in_executor(
                    None, _finish_package, writer, manifest, key, {README: readme, PUBLIC_KEY: pem}
                )
            finally:
                done.set()
                if hashing is not None:  # the hashing thread reads the package
                    await asyncio.gather(hashing, return_exceptions=True)
                handle.close()
            if not await lift_held(hub, plan):  # a lift ended mid-cut did not cover it all
                raise ExportError(
                    f"mask lift {plan.lift['id'] if plan.lift else '?'} ended during the "
                    "export: the unmasked cut is discarded"
                )
            package.replace(output)
    except OSError as err:  # unwritable folder, disk full...: the folder is gone with it
        await asyncio.gather(verifying, return_exceptions=True)
        raise OutputError(f"cannot write {output}: {err.strerror or err}") from None
    return manifest


async def hub_name_of(hub: HubServices) -> str:
    """The name the manifest gives the hub: its configured ``hub.name``; a hub made
    without its site file (the CLI with ``--data`` only) takes the name it last
    started under, from the audit trail, rather than csuhub's default name."""
    if hub.source != "<none>":
        return hub.name
    return await hub.store.audit_trail.last_target("hub.start") or hub.name


def _verify_sources(root: Path, segments: list[Any]) -> list[dict[str, Any]]:
    sources = []
    for seg in segments:
        try:
            digest = sha256_file(resolve_segment(root, seg.path))
        except FileNotFoundError:
            raise ExportError(f"segment file missing: {seg.path}") from None
        except OutsideRoot as err:  # checked by concat_list already: a link moved since
            raise ExportError(str(err)) from None
        if seg.sha256 and digest != seg.sha256:
            raise ExportError(
                f"segment {seg.path} does not match its recorded SHA-256: "
                "it was altered after recording"
            )
        sources.append(
            {
                "id": seg.id,
                "path": seg.path,
                "start": seg.start,
                "end": seg.end,
                "sha256": digest,
                "size": seg.size,
            }
        )
    return sources


def _finish_package(
    writer: PackageWriter, manifest: dict[str, Any], key: Any, members: dict[str, bytes]
) -> None:
    manifest_bytes = json.dumps(
        manifest, indent=2, sort_keys=True, ensure_ascii=False, default=str
    ).encode("utf-8")
    for name, data in members.items():
        writer.add(name, data)
    writer.add(MANIFEST, manifest_bytes)
    writer.add(SIGNATURE, base64.b64encode(key.sign(manifest_bytes)))
    writer.close()
