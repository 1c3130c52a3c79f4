"""What a segment file really holds: its video samples and their duration, in-process.

A segment is indexed ``ok`` only if it holds at least one whole video sample:
a full disk leaves files of a few hundred bytes (``ftyp`` and an empty
``moov``) that ffmpeg still lists as segments, and a ``kill -9`` leaves a
last fragment cut short. Asking ffprobe would cost a process per segment;
reading the box headers costs a few hundred small reads, and the index needs
the file's hash pass anyway.

The reader walks the ISO BMFF box tree (``moov`` for the tracks, ``moof``
fragments for fragmented MP4, ``stsz``/``stts`` for plain MP4). A fragment
counts only when the ``mdat`` that follows it is complete on disk. Every
size comes from the file, so every size is checked against its parent: a
malformed file gives :class:`Mp4Error`, never an exception of another kind.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

#: ``moov``/``moof`` boxes are read whole; bigger than this is not a segment we wrote
MAX_META_BOX = 32 * 1024 * 1024
#: top-level boxes walked at most (a 60 s segment of 0.5 s fragments has ~250)
MAX_BOXES = 200_000


class Mp4Error(ValueError):
    """The file is not an MP4 this reader can vouch for; the message says where."""


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """Whole video samples in the file and their total duration (seconds)."""

    video_samples: int
    duration: float

    @property
    def playable(self) -> bool:
        return self.video_samples > 0 and self.duration > 0


@dataclass
class _Track:
    handler: str = ""
    timescale: int = 0
    default_duration: int = 0
    samples: int = 0  # plain MP4: from stsz
    ticks: int = 0  # plain MP4: from stts


@dataclass
class _Movie:
    tracks: dict[int, _Track] = field(default_factory=dict)


def _u32(data: bytes, offset: int) -> int:
    if offset + 4 > len(data):
        raise Mp4Error("box shorter than its fields")
    return int(struct.unpack_from(">I", data, offset)[0])


def _u64(data: bytes, offset: int) -> int:
    if offset + 8 > len(data):
        raise Mp4Error("box shorter than its fields")
    return int(struct.unpack_from(">Q", data, offset)[0])


def _children(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[str, bytes]]:
    """The boxes inside ``data[start:end]``, each (type, payload); sizes are checked."""
    end = len(data) if end is None else end
    boxes: list[tuple[str, bytes]] = []
    pos = start
    while pos + 8 <= end:
        size = _u32(data, pos)
        kind = data[pos + 4 : pos + 8].decode("latin-1")
        header = 8
        if size == 1:
            size = _u64(data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise Mp4Error(f"box {kind!r} overruns its parent")
        boxes.append((kind, data[pos + header : pos + size]))
        pos += size
        if len(boxes) > MAX_BOXES:
            raise Mp4Error("too many boxes")
    return boxes


def _find(data: bytes, kind: str) -> bytes | None:
    return next((payload for name, payload in _children(data) if name == kind), None)


def _movie(moov: bytes) -> _Movie:
    movie = _Movie()
    for kind, payload in _children(moov):
        if kind == "trak":
            track_id, track = _track(payload)
            movie.tracks[track_id] = track
        elif kind == "mvex":
            for sub, trex in _children(payload):
                if sub == "trex":
                    track = movie.tracks.setdefault(_u32(trex, 4), _Track())
                    track.default_duration = _u32(trex, 12)
    return movie


def _track(trak: bytes) -> tuple[int, _Track]:
    tkhd = _find(trak, "tkhd")
    mdia = _find(trak, "mdia")
    if tkhd is None or mdia is None:
        raise Mp4Error("a track without tkhd or mdia")
    track_id = _u32(tkhd, 20 if tkhd[:1] == b"\x01" else 12)
    track = _Track()
    mdhd = _find(mdia, "mdhd")
    hdlr = _find(mdia, "hdlr")
    if mdhd is None or hdlr is None:
        raise Mp4Error("a track without mdhd or hdlr")
    track.timescale = _u32(mdhd, 20 if mdhd[:1] == b"\x01" else 12)
    track.handler = hdlr[8:12].decode("latin-1")
    minf = _find(mdia, "minf")
    stbl = _find(minf, "stbl") if minf is not None else None
    if stbl is not None:
        stsz = _find(stbl, "stsz")
        if stsz is not None:
            track.samples = _u32(stsz, 8)
        stts = _find(stbl, "stts")
        if stts is not None:
            entries = _u32(stts, 4)
            if 8 + 8 * entries > len(stts):
                raise Mp4Error("stts shorter than its entry count")
            for index in range(entries):
                track.ticks += _u32(stts, 8 + 8 * index) * _u32(stts, 12 + 8 * index)
    return track_id, track


def _fragment(moof: bytes, movie: _Movie) -> dict[int, tuple[int, int]]:
    """Per track of one ``moof``: (samples, ticks)."""
    found: dict[int, tuple[int, int]] = {}
    for kind, traf in _children(moof):
        if kind != "traf":
            continue
        track_id, default = 0, 0
        samples, ticks = 0, 0
        for sub, payload in _children(traf):
            flags = _u32(payload, 0) & 0xFFFFFF if sub in ("tfhd", "trun") else 0
            if sub == "tfhd":
                track_id = _u32(payload, 4)
                track = movie.tracks.get(track_id)
                default = track.default_duration if track else 0
                pos = 8 + (8 if flags & 0x01 else 0) + (4 if flags & 0x02 else 0)
                if flags & 0x08:
                    default = _u32(payload, pos)
            elif sub == "trun":
                count = _u32(payload, 4)
                pos = 8 + (4 if flags & 0x01 else 0) + (4 if flags & 0x04 else 0)
                per_sample = 4 * bin(flags & 0xF00).count("1")
                if pos + count * per_sample > len(payload):
                    raise Mp4Error("trun shorter than its sample count")
                samples += count
                if flags & 0x100:
                    ticks += sum(_u32(payload, pos + i * per_sample) for i in range(count))
                else:
                    ticks += count * default
        total = found.get(track_id, (0, 0))
        found[track_id] = (total[0] + samples, total[1] + ticks)
    return found


def read_info(handle: BinaryIO) -> MediaInfo:
    """The video samples of an open MP4 file; :class:`Mp4Error` if it is not one."""
    handle.seek(0, 2)
    file_size = handle.tell()
    pos = 0
    movie: _Movie | None = None
    pending: dict[int, tuple[int, int]] | None = None  # a moof waiting for its mdat
    totals: dict[int, tuple[int, int]] = {}
    walked = 0
    while pos + 8 <= file_size:
        handle.seek(pos)
        head = handle.read(16)
        size = _u32(head, 0)
        kind = head[4:8].decode("latin-1")
        header = 8
        if size == 1:
            size = _u64(head, 8)
            header = 16
        elif size == 0:
            size = file_size - pos
        if size < header:
            raise Mp4Error(f"box {kind!r} at byte {pos} has an impossible size")
        complete = pos + size <= file_size
        if kind in ("moov", "moof"):
            if not complete:
                break  # cut short (killed, disk full): what follows is not there
            if size > MAX_META_BOX:
                raise Mp4Error(f"{kind} box of {size} bytes")
            handle.seek(pos + header)
            payload = handle.read(size - header)
            if kind == "moov":
                movie = _movie(payload)
            else:
                if movie is None:
                    raise Mp4Error("a fragment before the movie header")
                pending = _fragment(payload, movie)
        elif kind == "mdat":
            if pending is not None and complete:
                for track_id, (samples, ticks) in pending.items():
                    total = totals.get(track_id, (0, 0))
                    totals[track_id] = (total[0] + samples, total[1] + ticks)
            pending = None
            if not complete:
                break
        pos += size
        walked += 1
        if walked > MAX_BOXES:
            raise Mp4Error("too many boxes")
    if movie is None:
        raise Mp4Error("no movie header (moov)")
    samples, seconds = 0, 0.0
    for track_id, track in movie.tracks.items():
        if track.handler != "vide":
            continue
        frag_samples, frag_ticks = totals.get(track_id, (0, 0))
        count = frag_samples + track.samples
        ticks = frag_ticks + track.ticks
        if count and track.timescale > 0:
            samples += count
            seconds = max(seconds, ticks / track.timescale)
    return MediaInfo(video_samples=samples, duration=seconds)


def media_info(path: Path) -> MediaInfo:
    """:func:`read_info` on a file (blocking: call it off the event loop)."""
    with path.open("rb") as handle:
        return read_info(handle)
