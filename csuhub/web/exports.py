"""Exporting a range of one camera as a signed evidence package, over HTTP.

``csuhub export`` does this on the hub's machine; the panel's playback page
needs it from a browser, for an operator with ``export.create`` (not a
requisition: an export of a range, with a stated reason). The package is the
same (``csuhub.recording.export``: the same cut, masks, manifest, signature
and audit entries, ``recording.export`` started then ended or failed).

Why the package is sent in the answer and not kept on the hub: a copy of
footage on the hub's disk outside the recording index would escape the
retention sweeps (CSI L252-5: one month at most). It is built in a private
folder of the data directory, opened, unlinked, and streamed from the open
file: once the answer starts, no copy is left on disk, even if the hub dies
while sending. A requisition's packages are kept, by contrast, because the
extraction register lists them (``web/retention.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from aiohttp import web

from csuhub.recording.export import ExportError, OutputError, export_evidence
from csuhub.recording.signing import fingerprint, load_or_create
from csuhub.timeutil import TimeError, check_epoch, parse_time
from csuhub.web.auditing import REASON_KEY, audited_below
from csuhub.web.auth import PRINCIPAL_KEY, camera_visible
from csuhub.web.declare import endpoint
from csuhub.web.requests import DISCONNECTS, hub_of, input_error, json_body, json_error
from csuhub.web.schemas import CAMERA_ID, TIME_VALUE, binary, error
from csuhub.web.validation import MAX_REASON, InputError, check_reason, is_slug

routes = web.RouteTableDef()

#: the longest range one request exports (as playback plays): a longer one is a
#: requisition's or ``csuhub export``'s, which do not hold a browser waiting
MAX_EXPORT = 3 * 3600.0
#: a private export folder older than this is a dead export's leftover
LEFTOVER_AGE = 6 * 3600.0
#: the header that names the package's signer, for the page to show
SIGNER_HEADER = "X-Csuhub-Signer"
#: exports running at once per hub (each cuts, masks and signs: CPU and disk)
MAX_RUNNING = 2
#: seconds a refused export is told to wait (503 Retry-After)
BUSY_RETRY = 30
#: per hub (tests run several in one process), forgotten with it
_GATES: weakref.WeakKeyDictionary[Any, asyncio.Semaphore] = weakref.WeakKeyDictionary()
_FIELDS = ("camera", "from", "to", "reason")

EXPORT_BODY = {
    "type": "object",
    "required": list(_FIELDS),
    "additionalProperties": False,
    "properties": {
        "camera": CAMERA_ID.schema,
        "from": TIME_VALUE,
        "to": TIME_VALUE,
        "reason": {"type": "string", "minLength": 1, "maxLength": MAX_REASON, "pattern": r"\S"},
    },
}


@dataclass(frozen=True, slots=True)
class ExportAsk:
    """What a client asked to export: checked, times as epoch seconds."""

    camera: str
    start: float
    end: float
    reason: str


def _time(value: Any, field: str, tz: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InputError(f"{field}: a time is required (ISO 8601 or epoch seconds)")
    try:
        if isinstance(value, str):
            return parse_time(value, tz)
        return check_epoch(float(value), value)
    except TimeError as err:
        raise InputError(f"{field}: {err}") from None


def parse_export(body: Mapping[str, Any], tz: str) -> ExportAsk:
    """The export a body asks for, or an ``InputError`` naming the field."""
    unknown = sorted(str(k)[:40] for k in body if k not in _FIELDS)
    if unknown:
        raise InputError(f"unknown field(s): {', '.join(unknown)}")
    for field in _FIELDS:
        if field not in body:
            raise InputError(f"{field}: required")
    camera = body["camera"]
    if not isinstance(camera, str) or not is_slug(camera):
        raise InputError("camera: a camera id is required")
    start = _time(body["from"], "from", tz)
    end = _time(body["to"], "to", tz)
    if end <= start:
        raise InputError("to: the end of the range must be after its start")
    if end - start > MAX_EXPORT:
        raise InputError(
            f"to: export at most {MAX_EXPORT / 3600:.0f} h at once "
            "(a longer range: a requisition, or csuhub export)"
        )
    reason = body["reason"]
    if not isinstance(reason, str):
        raise InputError("reason: text is required")
    try:
        reason = check_reason(reason)
    except InputError as err:
        raise InputError(f"reason: {err}") from None
    return ExportAsk(camera, start, end, reason)


def sweep_leftovers(exports: Path, now: float) -> list[Path]:
    """Remove the private folders of exports that never finished (the hub died
    while cutting): footage must not stay there out of the retention sweeps'
    reach. A folder younger than ``LEFTOVER_AGE`` may be a running export's."""
    gone = []
    for folder in exports.glob(".sending-*"):
        try:
            old = now - folder.lstat().st_mtime > LEFTOVER_AGE
        except FileNotFoundError:
            continue
        if old and folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)
            gone.append(folder)
    return gone


@routes.post("/api/exports")
@endpoint(
    "export.create",
    tags=("recordings",),
    audited="recording.export",
    body=EXPORT_BODY,
    body_required=True,
    responses={
        200: binary(
            "The signed evidence package (zip); the X-Csuhub-Signer header gives the "
            "signer's fingerprint. The hub keeps no copy.",
            "application/zip",
        ),
        400: error("The body is refused (the field says which)"),
        404: error("No such camera in the caller's scope, or no footage in the range"),
        409: error("The footage refuses the export (a segment altered on disk, none usable)"),
        503: error("Two exports already run on this hub (Retry-After)"),
    },
)
async def export_range(request: web.Request) -> web.StreamResponse:
    """Export a range of one camera as a signed evidence package, with a stated reason."""
    hub = hub_of(request)
    try:
        ask = parse_export(await json_body(request), hub.config.hub["timezone"])
    except InputError as err:
        raise input_error(err) from None
    request[REASON_KEY] = ask.reason
    if not await camera_visible(request, ask.camera):
        raise json_error("no such camera", web.HTTPNotFound)
    if not await hub.store.segments(ask.camera, ask.start, ask.end, limit=1):
        raise json_error("no footage in that range", web.HTTPNotFound)
    gate = _gate(hub)
    if gate.locked():  # a cut, mask and sign job each: a few at once, not as many as asked
        busy = json_error(
            "the hub is busy with other exports: try again shortly", web.HTTPServiceUnavailable
        )
        busy.headers["Retry-After"] = str(BUSY_RETRY)
        raise busy
    async with gate:
        return await _export(request, hub, ask)


async def _export(request: web.Request, hub: Any, ask: ExportAsk) -> web.StreamResponse:
    key = hub.recording.signing_key or await asyncio.to_thread(load_or_create, hub.data_dir)
    signer = fingerprint(key)  # before the package is opened: nothing left to fail after
    exports = hub.data_dir / "exports"
    await asyncio.to_thread(exports.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread(sweep_leftovers, exports, time.time())
    work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=".sending-", dir=exports))
    try:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(ask.start))
        name = f"{ask.camera}_{stamp}.zip"
        audited_below(request)  # export_evidence writes the started and ending entries
        try:
            await export_evidence(
                hub,
                hub.recording,
                ask.camera,
                ask.start,
                ask.end,
                user=request[PRINCIPAL_KEY].name,
                reason=ask.reason,
                output=work / name,
            )
        except OutputError as err:
            raise json_error(f"export failed: {err}", web.HTTPInternalServerError) from None
        except ExportError as err:
            raise json_error(f"export refused: {err}", web.HTTPConflict) from None
        handle = await asyncio.to_thread((work / name).open, "rb")
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)  # the open file is all that is left
    return await _send(request, handle, name, signer)


def _gate(hub: Any) -> asyncio.Semaphore:
    found = _GATES.get(hub)
    if found is None:
        found = _GATES[hub] = asyncio.Semaphore(MAX_RUNNING)
    return found


async def _send(
    request: web.Request, handle: BinaryIO, name: str, signer: str
) -> web.StreamResponse:
    with contextlib.closing(handle):
        size = await asyncio.to_thread(lambda: handle.seek(0, 2))
        await asyncio.to_thread(handle.seek, 0)
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/zip",
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store",
                SIGNER_HEADER: signer,
            }
        )
        response.content_length = size
        await response.prepare(request)
        try:
            while chunk := await asyncio.to_thread(handle.read, 256 * 1024):
                await response.write(chunk)
            await response.write_eof()
        except DISCONNECTS:  # the browser left: the package is gone with its file
            pass
    return response
