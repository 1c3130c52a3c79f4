"""Evidence export: one MP4 for [from, to], with a signed manifest, in one zip.

How the cut works (documented for the court): the segments covering the range
are joined with ffmpeg's concat demuxer and stream copy (no re-encoding, so
the pictures are the camera's own). ``inpoint`` on the first segment and
``outpoint`` on the last trim the range; with stream copy the start snaps to
the keyframe at or before ``from`` (at most one GOP earlier, typically 1-2 s),
and the end to the last packet before ``to``. The manifest gives both the
requested and the actual range; the actual one is measured on the output.

Before cutting, every source segment's SHA-256 is recomputed and compared
with the index: a segment altered on disk stops the export, by name.

The package: ``video.mp4``, ``manifest.json`` (camera, authorisation,
requested and actual ranges, gaps, source segments with hashes, output hash,
ffmpeg version, user, reason, time), ``manifest.sig`` (Ed25519 over the
manifest's bytes), ``public_key.pem`` and ``LISEZMOI.txt``.
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
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from csuhub import __version__
from csuhub.recording.concat import OutsideRoot, concat_args, concat_list
from csuhub.recording.continuity import continuity
from csuhub.recording.manager import sha256_file
from csuhub.recording.signing import load_or_create, load_public, public_pem

if TYPE_CHECKING:
    from csuhub.hub import Hub

FORMAT = "csuhub-evidence/1"
Progress = Callable[[str, float], None]


class ExportError(Exception):
    pass


_VERSIONS: dict[str, str] = {}


async def ffmpeg_version(binary: str) -> str:
    if binary in _VERSIONS:
        return _VERSIONS[binary]
    proc = await asyncio.create_subprocess_exec(
        binary, "-version", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    out, _ = await proc.communicate()
    first = out.decode(errors="replace").splitlines()[:1]
    _VERSIONS[binary] = first[0] if first else "unknown"
    return _VERSIONS[binary]


async def export_evidence(
    hub: Hub,
    camera_id: str,
    start: float,
    end: float,
    *,
    user: str,
    reason: str,
    output: Path,
    progress: Progress | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the package at ``output`` (atomically); returns the manifest."""
    if end <= start:
        raise ExportError("the end of the range must be after its start")
    if not reason.strip():
        raise ExportError("an export needs a stated reason (it is recorded)")
    report = progress or (lambda stage, fraction: None)
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ExportError("ffmpeg is not installed")
    camera = await hub.store.get_camera(camera_id)
    if camera is None:
        raise ExportError(f"no camera {camera_id!r}")
    segments = [s for s in await hub.store.segments(camera_id, start, end) if s.status == "ok"]
    if not segments:
        raise ExportError(f"no footage of {camera_id} between those times")
    root = hub.recording.storage_root()
    loop = asyncio.get_running_loop()
    for seg in segments:
        if not (root / seg.path).resolve().is_relative_to(root):
            raise ExportError(f"segment {seg.id} points outside the storage root")
    # the sources are verified while ffmpeg cuts (both read the same, cached, files);
    # a mismatch discards the cut
    verifying = loop.run_in_executor(None, _verify_sources, root, segments)

    with tempfile.TemporaryDirectory(prefix="csuhub-export-", dir=output.parent) as tmp:
        work = Path(tmp)
        try:
            script = concat_list(root, segments, start, end)
        except OutsideRoot as err:
            raise ExportError(str(err)) from None
        (work / "list.ffconcat").write_text(script)
        covered_start = max(start, segments[0].start)
        covered_end = min(end, segments[-1].end)
        package = work / "package.zip"
        archive = zipfile.ZipFile(package, "w", compression=zipfile.ZIP_STORED)
        done = threading.Event()
        copying: asyncio.Future[tuple[str, int]] | None = None
        try:
            # ffmpeg writes the cut to a file in one pass (fragmented MP4: no faststart
            # rewrite); then one pass copies it into the zip while hashing it
            video = work / "video.mp4"
            video.touch()
            # the zip copy follows the file while ffmpeg writes it (fragmented MP4 is
            # written front to back), so copying and hashing overlap the cut
            copying = loop.run_in_executor(None, _store_hashed, archive, video, done)
            try:
                code, err, duration = await _cut_to(
                    video,
                    ffmpeg,
                    work / "list.ffconcat",
                    covered_end - covered_start,
                    lambda f: report("cutting", 0.3 + 0.6 * f),
                )
            finally:
                done.set()
            sources = await verifying
            report("verifying sources", 0.9)
            if code != 0:
                raise ExportError(f"ffmpeg failed to cut the range: {err.strip()[-300:]}")
            if duration <= 0:
                raise ExportError("the cut produced no video")
            output_sha, size = await copying
            content = sum(min(end, seg.end) - max(start, seg.start) for seg in segments)
            preroll = max(0.0, duration - content)  # the keyframe snap before 'from'
            gaps = await continuity(hub.store, camera_id, start, end)
            manifest: dict[str, Any] = {
                "format": FORMAT,
                "csuhub_version": __version__,
                "hub": hub.name,
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
                "cut": "concat demuxer, stream copy; the start snaps to the keyframe at or "
                "before the requested time; the video is continuous: the gaps listed here are "
                "absent from it, not filled",
                "gaps": gaps["gaps"],
                "recorded_percent": gaps["percent"],
                "sources": sources,
                "output": {"file": "video.mp4", "sha256": output_sha, "size": size},
                "ffmpeg": await ffmpeg_version(ffmpeg),
                "exported_by": user,
                "reason": reason,
                "exported_at": time.time(),
                **(extra or {}),
            }
            key = load_or_create(hub.data_dir)
            report("packaging", 0.95)
            readme = README.format(camera=camera.id, user=user)
            await loop.run_in_executor(None, _finish_package, archive, manifest, key, readme)
        finally:
            done.set()
            if copying is not None:  # the copy thread holds the zip entry open
                await asyncio.gather(copying, return_exceptions=True)
            archive.close()
        package.replace(output)
    await hub.store.audit(
        user,
        "recording.export",
        camera_id,
        reason=reason,
        requested=[start, end],
        output_sha256=output_sha,
        package=str(output),
        **(extra or {}),
    )
    report("done", 1.0)
    return manifest


README = """Paquet de preuve vidéo csuhub / csuhub video evidence package

Caméra / camera : {camera}
Exporté par / exported by : {user}

Contenu : video.mp4 (extrait sans ré-encodage), manifest.json (provenance,
empreintes SHA-256), manifest.sig (signature Ed25519 du manifeste),
public_key.pem (clé publique du CSU).

Vérifier hors ligne / verify offline :  csuhub verify <paquet>.zip
"""


def _verify_sources(root: Path, segments: list[Any]) -> list[dict[str, Any]]:
    sources = []
    for seg in segments:
        try:
            digest = sha256_file((root / seg.path).resolve())
        except FileNotFoundError:
            raise ExportError(f"segment file missing: {seg.path}") from None
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


async def _cut_to(
    video: Path, ffmpeg: str, listing: Path, expected: float, progress: Callable[[float], None]
) -> tuple[int, str, float]:
    """Run the concat cut; returns (exit code, errors, duration from ffmpeg's progress)."""
    proc = await asyncio.create_subprocess_exec(
        *concat_args(ffmpeg, listing, str(video), "-progress", "pipe:1", "-y"),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    out_time = 0.0
    while line := await proc.stdout.readline():
        text = line.decode(errors="replace").strip()
        if text.startswith("out_time_us="):
            value = text.split("=", 1)[1]
            if value.isdigit():
                out_time = int(value) / 1e6
                if expected > 0:
                    progress(min(1.0, out_time / expected))
    errors = (await proc.stderr.read()).decode(errors="replace")
    await proc.wait()
    return proc.returncode or 0, errors, out_time


def _store_hashed(archive: zipfile.ZipFile, video: Path, done: threading.Event) -> tuple[str, int]:
    """Copy the video into the zip and hash it in the same pass, following it as it grows."""
    digest = hashlib.sha256()
    size = 0
    with video.open("rb") as src, archive.open("video.mp4", "w", force_zip64=True) as dst:
        while True:
            finished = done.is_set()
            chunk = src.read(4 * 1024 * 1024)
            if chunk:
                digest.update(chunk)
                dst.write(chunk)
                size += len(chunk)
            elif finished:
                break  # ffmpeg had exited before this empty read: the file is complete
            else:
                done.wait(0.005)
    return digest.hexdigest(), size


def _finish_package(
    archive: zipfile.ZipFile, manifest: dict[str, Any], key: Any, readme: str
) -> None:
    manifest_bytes = json.dumps(
        manifest, indent=2, sort_keys=True, ensure_ascii=False, default=str
    ).encode("utf-8")
    archive.writestr("manifest.json", manifest_bytes)
    archive.writestr("manifest.sig", base64.b64encode(key.sign(manifest_bytes)))
    archive.writestr("public_key.pem", public_pem(key))
    archive.writestr("LISEZMOI.txt", readme)


@dataclass
class Verification:
    ok: bool
    problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] | None = None


def verify_package(path: Path, trusted_key: bytes | None = None) -> Verification:
    """Check the signature and every hash, offline. Names the file that fails."""
    problems: list[str] = []
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as err:
        return Verification(False, [f"{path}: not a readable zip ({err})"])
    with archive:
        names = set(archive.namelist())
        for required in ("video.mp4", "manifest.json", "manifest.sig", "public_key.pem"):
            if required not in names:
                problems.append(f"{required}: missing from the package")
        if problems:
            return Verification(False, problems)
        manifest_bytes = archive.read("manifest.json")
        key_pem = archive.read("public_key.pem")
        if trusted_key is not None and key_pem.strip() != trusted_key.strip():
            problems.append("public_key.pem: not the trusted key given with --key")
        try:
            public = load_public(key_pem)
            public.verify(
                base64.b64decode(archive.read("manifest.sig"), validate=True), manifest_bytes
            )
        except Exception:
            problems.append(
                "manifest.json: the signature does not match (manifest or manifest.sig altered)"
            )
        try:
            manifest = json.loads(manifest_bytes)
        except ValueError:
            return Verification(False, [*problems, "manifest.json: not valid JSON"])
        expected = manifest.get("output", {}).get("sha256")
        digest = hashlib.sha256()
        with archive.open("video.mp4") as handle:
            while chunk := handle.read(1024 * 1024):
                digest.update(chunk)
        if digest.hexdigest() != expected:
            problems.append("video.mp4: SHA-256 does not match the manifest (video altered)")
        extra = names - {
            "video.mp4",
            "manifest.json",
            "manifest.sig",
            "public_key.pem",
            "LISEZMOI.txt",
            "receipt.html",
        }
        for name in sorted(extra):
            problems.append(f"{name}: not part of a csuhub package")
        if manifest.get("format") != FORMAT:
            problems.append(f"manifest.json: unknown format {manifest.get('format')!r}")
    return Verification(not problems, problems, manifest)
