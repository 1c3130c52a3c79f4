"""Recordings: timeline, gaps, continuity report, playback, frames, segment files.

Every view of footage needs a stated reason (``?reason=``) and is audited
(who, which camera, which range, why) before any byte is sent: viewing must be
accountable. Playback is audited when it starts and again when it ends (with
the bytes sent). Files are served only from the storage root.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
import time
import weakref
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aiohttp import web

from csuhub.masks.apply import MaskingFailed, MaskingTimeout, export_cut_args, masked_frame
from csuhub.masks.policy import picture_plan, playback_plan
from csuhub.recording.concat import concat_list
from csuhub.recording.continuity import (
    RecorderNow,
    continuity,
    known_camera,
    open_segment,
    recorder_of,
)
from csuhub.recording.layout import OutsideRoot, resolve_segment
from csuhub.timeutil import TimeError, parse_time
from csuhub.web.auditing import ended, entry, started, stated_reason
from csuhub.web.auth import require_visible
from csuhub.web.cache import Kept, request_version
from csuhub.web.declare import Param, endpoint
from csuhub.web.requests import (
    DISCONNECTS,
    file_response,
    hub_of,
    json_error,
    path_id,
    path_slug,
)
from csuhub.web.schemas import (
    CAMERA_ID,
    CONTINUITY,
    REASON,
    TIME_TEXT,
    TIMELINE,
    binary,
    error,
    json_answer,
    time_param,
)

_LOGGER = logging.getLogger(__name__)
routes = web.RouteTableDef()
MAX_PLAY = 3 * 3600.0
#: seconds one frame may take to decode before its ffmpeg is killed
FRAME_TIMEOUT = 20.0


_UNKNOWN = error("No such camera, or no footage there")


def _range_params(span: str) -> tuple[Param, Param]:
    return (
        time_param("from", f"start of the range (default: 'to' minus {span})"),
        time_param("to", "end of the range, after 'from' (default: now)"),
    )


def _camera(request: web.Request) -> str:
    return path_slug(request, "camera_id", "camera")


def _range(request: web.Request, default_span: float = 3600.0) -> tuple[float, float]:
    hub = hub_of(request)
    tz = hub.config.hub["timezone"]
    try:
        end = parse_time(request.query["to"], tz) if "to" in request.query else time.time()
        start = (
            parse_time(request.query["from"], tz) if "from" in request.query else end - default_span
        )
    except TimeError as err:
        raise json_error(str(err)) from None
    if end <= start:
        raise json_error("'to' must be after 'from'")
    return start, end


@routes.get("/api/recordings/{camera_id}")
@endpoint(
    "playback.view",
    camera="camera_id",
    tags=("recordings",),
    params=(CAMERA_ID, *_range_params("1 h")),
    responses={200: json_answer("The segments and gaps of the range", TIMELINE)},
)
async def timeline(request: web.Request) -> web.Response:
    """A camera's timeline: its segments in a range, the gaps and why, the percentage recorded."""
    hub = hub_of(request)
    camera = _camera(request)
    start, end = _range(request)
    recorder = recorder_of(hub, camera)
    key = ("timeline", camera, start, end)
    version = await _closed_version(request, recorder, end)
    body = await _kept_answer(hub, key, camera, version)
    if body is not None:
        return _json_bytes(body)
    footage = 0 if version is None else await hub.store.segment_index.footage_version(camera)
    await _known(request, camera)
    segments = await hub.store.segments(camera, start, end, limit=20_000)
    report = await continuity(hub.store, camera, start, end, recorder=recorder)
    body = json.dumps(
        {
            "camera_id": camera,
            "from": start,
            "to": end,
            "segments": [s.as_dict() for s in segments],
            "gaps": report["gaps"],
            "percent": report["percent"],
            "measured_s": report["measured_s"],
            "in_progress_s": report["in_progress_s"],
            "future_s": report["future_s"],
        }
    ).encode()
    if version is not None:
        _kept(hub).put(key, version, _Answer(footage, body), len(body))
    return _json_bytes(body)


@routes.get("/api/recordings/{camera_id}/gaps")
@endpoint(
    "playback.view",
    camera="camera_id",
    tags=("recordings",),
    params=(CAMERA_ID, *_range_params("24 h")),
    responses={200: json_answer("The continuity report of the range", CONTINUITY)},
)
async def gaps(request: web.Request) -> web.Response:
    """The continuity report of a range: what was recorded, what is missing and why."""
    hub = hub_of(request)
    camera = _camera(request)
    start, end = _range(request, 86400.0)
    recorder = recorder_of(hub, camera)
    key = ("gaps", camera, start, end)
    version = await _closed_version(request, recorder, end)
    body = await _kept_answer(hub, key, camera, version)
    if body is not None:
        report = json.loads(body)  # "now" is the request's; nothing else depends on it
        report["now"] = time.time()
        return web.json_response(report)
    footage = 0 if version is None else await hub.store.segment_index.footage_version(camera)
    await _known(request, camera)
    report = await continuity(hub.store, camera, start, end, recorder=recorder)
    if version is not None:
        body = json.dumps(report).encode()
        _kept(hub).put(key, version, _Answer(footage, body), len(body))
    return web.json_response(report)


@dataclass(frozen=True, slots=True)
class _Answer:
    """A closed range's answer as sent, and its camera's footage version then."""

    footage: int
    body: bytes


#: Closed ranges' timelines and continuity reports, by hub.
_KEPT: weakref.WeakKeyDictionary[Any, Kept[_Answer]] = weakref.WeakKeyDictionary()


def _kept(hub: Any) -> Kept[_Answer]:
    found = _KEPT.get(hub)
    if found is None:
        found = _KEPT[hub] = Kept(entries=256, size=64 << 20)
    return found


async def _kept_answer(hub: Any, key: tuple[Any, ...], camera: str, version: Any) -> bytes | None:
    """The kept answer while the database is unchanged; after other writes (other
    cameras recording), while the camera's footage version is: one indexed read
    instead of the range's segments, gaps and destructions."""
    if version is None:
        return None
    kept = _kept(hub)
    found = kept.peek(key)
    if found is None:
        return None
    tagged, answer = found
    if tagged == version:
        return answer.body
    # read after the probe behind ``version`` ran: the same count then means
    # no write to this camera's footage between the answer and that probe
    if await hub.store.segment_index.footage_version(camera) != answer.footage:
        return None
    kept.put(key, version, answer, len(answer.body))
    return answer.body


async def _closed_version(request: web.Request, recorder: RecorderNow, end: float) -> Any:
    """The database version the answer for a range ending at ``end`` is kept
    under, or None when the range reaches the present: there the answer moves
    with the clock (future time, the open segment of a running recorder)."""
    now = time.time()
    live = open_segment(now, None, replace(recorder, running=True))
    if end > now or (live is not None and end > live[0]):
        return None
    return await request_version(request, hub_of(request).store)


def _json_bytes(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json", charset="utf-8")


async def _known(request: web.Request, camera: str) -> None:
    """An unknown camera is a 404, not a confident "0 % recorded"; a forgotten
    camera whose footage or register entries remain is still known."""
    if not await known_camera(hub_of(request).store, camera):
        raise json_error("no such camera", web.HTTPNotFound)


@routes.get("/api/recordings/{camera_id}/play.mp4")
@endpoint(
    "playback.view",
    camera="camera_id",
    tags=("recordings",),
    audited="recording.view",
    params=(CAMERA_ID, *_range_params("60 s"), REASON),
    responses={
        200: binary("Fragmented MP4, remuxed from the segments of the range", "video/mp4"),
        403: error("The permission is missing, or a segment lies outside the storage root"),
        404: _UNKNOWN,
    },
)
async def play(request: web.Request) -> web.StreamResponse:
    """Any range (at most 3 h), across segments, as fragmented MP4 remuxed on the fly."""
    hub = hub_of(request)
    camera = _camera(request)
    start, end = _range(request, 60.0)
    stated_reason(request)
    if end - start > MAX_PLAY:
        raise json_error(f"play at most {MAX_PLAY / 3600:.0f} h at once")
    segments = [s for s in await hub.store.segments(camera, start, end) if s.status == "ok"]
    if not segments:
        raise json_error("no footage in that range", web.HTTPNotFound)
    root = hub.recording.storage_root()
    try:
        script = concat_list(root, segments, start, end)
    except OutsideRoot:
        raise json_error("segment outside the storage root", web.HTTPForbidden) from None
    if request.method == "HEAD":  # the headers of what GET would send; no ffmpeg, no view
        return web.Response(headers={"Content-Type": "video/mp4", "Cache-Control": "no-store"})
    plan = await playback_plan(hub, camera)  # privacy masks; no lift unmasks played footage
    # before any byte: the playback, its range and its reason (a crash cannot erase it)
    await started(request, "recording.view", camera, start=start, end=end, masked=bool(plan.apply))
    ffmpeg = shutil.which("ffmpeg") or "ffmpeg"
    # the list goes in a file: read from a pipe, its entries would be taken as pipe: URLs;
    # the mask image, if any, beside it in a private folder
    work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="csuhub-play-"))
    try:
        listing = work / "play.ffconcat"
        await asyncio.to_thread(listing.write_text, script, "utf-8")
        try:  # a masked camera is re-encoded through its mask, or not shown at all
            args, _ = await export_cut_args(
                hub.processes,
                plan,
                ffmpeg,
                listing,
                resolve_segment(root, segments[0].path),
                work,
                "pipe:1",
            )
        except (MaskingFailed, MaskingTimeout, OSError) as err:
            await ended(request, "recording.view", camera, "failed", error=str(err)[:200])
            raise json_error(
                "the footage cannot be masked, so it is not shown", web.HTTPServiceUnavailable
            ) from None
        return await _stream(request, args, camera)
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)


async def _stream(request: web.Request, args: list[str], camera: str) -> web.StreamResponse:
    """ffmpeg's fragmented MP4 to the client, and the playback's ending entry."""
    hub = hub_of(request)
    sent = 0
    proc = await hub.processes.spawn(
        args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    assert proc.stdout is not None
    response = web.StreamResponse(
        headers={"Content-Type": "video/mp4", "Cache-Control": "no-store"}
    )
    try:
        await response.prepare(request)
        while chunk := await proc.stdout.read(256 * 1024):
            await response.write(chunk)
            sent += len(chunk)
        await response.write_eof()
        await ended(request, "recording.view", camera, "ok", bytes=sent)
    except DISCONNECTS:  # the player was closed or seeked elsewhere: normal
        _LOGGER.debug("play %s: the client left", camera)
        await ended(request, "recording.view", camera, "ok", bytes=sent, client_left=True)
    finally:
        await hub.processes.terminate(proc)
    return response


@routes.get("/api/recordings/{camera_id}/frame.jpg")
@endpoint(
    "playback.view",
    camera="camera_id",
    tags=("recordings",),
    audited="recording.frame",
    params=(
        CAMERA_ID,
        Param("t", TIME_TEXT, required=True, description="the moment of the frame"),
        REASON,
    ),
    responses={
        200: binary("The picture", "image/jpeg"),
        403: error("The permission is missing, or the segment lies outside the storage root"),
        404: _UNKNOWN,
        504: error("No picture could be decoded in time"),
    },
)
async def frame(request: web.Request) -> web.Response:
    """One JPEG at time ``t`` (timeline thumbnails)."""
    hub = hub_of(request)
    camera = _camera(request)
    stated_reason(request)
    try:
        at = parse_time(request.query.get("t", ""), hub.config.hub["timezone"])
    except TimeError as err:
        raise json_error(str(err)) from None
    found = [s for s in await hub.store.segments(camera, at, at + 0.001) if s.status == "ok"]
    if not found:
        raise json_error("no footage at that time", web.HTTPNotFound)
    seg = found[0]
    root = hub.recording.storage_root()
    try:
        path = resolve_segment(root, seg.path)
    except OutsideRoot:
        raise json_error("segment outside the storage root", web.HTTPForbidden) from None
    plan = await picture_plan(hub, camera)  # privacy masks, unless a lift is in force
    try:  # a picture that cannot be masked is not shown (csuhub.masks.apply)
        image = await masked_frame(
            hub.processes, path, at - seg.start, plan.apply, timeout=FRAME_TIMEOUT
        )
    except MaskingTimeout:
        raise json_error("no picture could be decoded in time", web.HTTPGatewayTimeout) from None
    except MaskingFailed:
        raise json_error("no picture could be decoded at that time", web.HTTPNotFound) from None
    lift = plan.lift["id"] if plan.lift else None
    await entry(request, "recording.frame", camera, at=at, masked=bool(plan.apply), lift=lift)
    return web.Response(
        body=image, content_type="image/jpeg", headers={"Cache-Control": "no-store"}
    )


@routes.get("/api/segments/{segment_id}.mp4")
@endpoint(
    "playback.view",
    tags=("recordings",),
    audited="recording.segment",
    params=(
        Param(
            "segment_id",
            {"type": "string", "pattern": "^[0-9]{1,19}$"},
            where="path",
            description="a segment id (as the timeline lists them)",
        ),
        REASON,
    ),
    responses={
        200: binary("The segment's file", "video/mp4"),
        206: binary("Part of it (one byte range)", "video/mp4"),
        403: error("The permission is missing, or the file lies outside the storage root"),
        404: error("No such segment, or its camera is outside the caller's scope"),
        410: error("The segment's file is missing"),
        416: error("The byte range cannot be satisfied"),
    },
)
async def segment_file(request: web.Request) -> web.StreamResponse:
    """A segment as stored, with HTTP range support, only from the storage root."""
    hub = hub_of(request)
    seg = await hub.store.segment(path_id(request, "segment_id", "segment"))
    if seg is None:
        raise json_error("no such segment", web.HTTPNotFound)
    await require_visible(request, seg.camera_id)
    stated_reason(request)
    root = hub.recording.storage_root()
    try:
        path = resolve_segment(root, seg.path)
    except OutsideRoot:
        raise json_error("segment outside the storage root", web.HTTPForbidden) from None
    if not path.exists():
        raise json_error("the segment's file is missing", web.HTTPGone)
    plan = await playback_plan(hub, seg.camera_id)
    if plan.masks:  # the file as stored is unmasked, and no lift opens it: use play.mp4
        raise json_error(
            "this camera has privacy masks: play its footage through play.mp4, which applies them",
            web.HTTPConflict,
        )
    await entry(
        request,
        "recording.segment",
        seg.camera_id,
        segment=seg.id,
        start=seg.start,
        end=seg.end,
        range=request.headers.get("Range"),
    )
    return await file_response(request, path, "video/mp4")
