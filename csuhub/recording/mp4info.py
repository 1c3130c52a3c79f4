"""What a segment file really holds: its video samples and their duration, in-process.

A segment is indexed ``ok`` only if it holds at least one whole video sample:
a full disk leaves files of a few hundred bytes (``ftyp`` and an empty
``moov``) that ffmpeg still lists as segments, and a ``kill -9`` leaves a
last fragment cut short. Asking ffprobe would cost a process per segment,
and a walk of its own (a seek and a read per box) about a fifth of the
hash: :class:`BoxScanner` follows the chunks the SHA-256 reads instead, so
:func:`inspect_segment` reads each segment file once, for both.

The reader walks the ISO BMFF box tree (``moov`` for the tracks, ``moof``
fragments for fragmented MP4, ``stsz``/``stts`` for plain MP4). A fragment
counts only when the ``mdat`` that follows it is complete on disk. Every
size comes from the file, so every size is checked against its parent: a
malformed file gives :class:`Mp4Error`, never an exception of another kind.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from csuhub.hashing import sha256_handle

_LOGGER = logging.getLogger(__name__)

#: ``moov``/``moof`` boxes are read whole; bigger than this is not a segment we wrote
MAX_META_BOX = 32 * 1024 * 1024
#: top-level boxes walked at most (a 60 s segment of 0.5 s fragments has ~250)
#: ``moov``/``moof`` bytes a :class:`BoxScanner` queues before reading them
QUEUE_BYTES = 1024 * 1024
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


_U32 = struct.Struct(">I").unpack_from
_U64 = struct.Struct(">Q").unpack_from
#: a box's 32-bit size and type
_BOX_HEAD = struct.Struct(">I4s").unpack_from
#: a full box's version and flags, then its first field
_U32X2 = struct.Struct(">II").unpack_from


def _u32(data: bytes, offset: int) -> int:
    if offset + 4 > len(data):
        raise Mp4Error("box shorter than its fields")
    return int(_U32(data, offset)[0])


def _u64(data: bytes, offset: int) -> int:
    if offset + 8 > len(data):
        raise Mp4Error("box shorter than its fields")
    return int(_U64(data, offset)[0])


def _children(data: bytes) -> list[tuple[bytes, bytes]]:
    """The boxes inside ``data``, each (type, payload); sizes are checked."""
    end = len(data)
    boxes: list[tuple[bytes, bytes]] = []
    pos = 0
    while pos + 8 <= end:
        size, kind = _BOX_HEAD(data, pos)  # in bounds: pos + 8 <= end
        header = 8
        if size == 1:
            size = _u64(data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise Mp4Error(f"box {kind.decode('latin-1')!r} overruns its parent")
        boxes.append((kind, data[pos + header : pos + size]))
        pos += size
        if len(boxes) > MAX_BOXES:
            raise Mp4Error("too many boxes")
    return boxes


def _find(data: bytes, kind: bytes) -> bytes | None:
    return next((payload for name, payload in _children(data) if name == kind), None)


def _movie(moov: bytes) -> _Movie:
    movie = _Movie()
    for kind, payload in _children(moov):
        if kind == b"trak":
            track_id, track = _track(payload)
            movie.tracks[track_id] = track
        elif kind == b"mvex":
            for sub, trex in _children(payload):
                if sub == b"trex":
                    track = movie.tracks.setdefault(_u32(trex, 4), _Track())
                    track.default_duration = _u32(trex, 12)
    return movie


def _track(trak: bytes) -> tuple[int, _Track]:
    tkhd = _find(trak, b"tkhd")
    mdia = _find(trak, b"mdia")
    if tkhd is None or mdia is None:
        raise Mp4Error("a track without tkhd or mdia")
    track_id = _u32(tkhd, 20 if tkhd[:1] == b"\x01" else 12)
    track = _Track()
    mdhd = _find(mdia, b"mdhd")
    hdlr = _find(mdia, b"hdlr")
    if mdhd is None or hdlr is None:
        raise Mp4Error("a track without mdhd or hdlr")
    track.timescale = _u32(mdhd, 20 if mdhd[:1] == b"\x01" else 12)
    track.handler = hdlr[8:12].decode("latin-1")
    minf = _find(mdia, b"minf")
    stbl = _find(minf, b"stbl") if minf is not None else None
    if stbl is not None:
        stsz = _find(stbl, b"stsz")
        if stsz is not None:
            track.samples = _u32(stsz, 8)
        stts = _find(stbl, b"stts")
        if stts is not None:
            entries = _u32(stts, 4)
            if 8 + 8 * entries > len(stts):
                raise Mp4Error("stts shorter than its entry count")
            for index in range(entries):
                track.ticks += _u32(stts, 8 + 8 * index) * _u32(stts, 12 + 8 * index)
    return track_id, track


def _fragment(moof: bytes, movie: _Movie) -> dict[int, tuple[int, int]]:
    """Per track of one ``moof``: (samples, ticks).

    Every segment has a few dozen fragments, so the fields are unpacked
    directly: a field past its box's end is ``struct.error``, turned into
    :class:`Mp4Error` like any other short box."""
    try:
        return _fragment_fields(moof, movie)
    except struct.error as err:
        raise Mp4Error("box shorter than its fields") from err


def _fragment_fields(moof: bytes, movie: _Movie) -> dict[int, tuple[int, int]]:
    found: dict[int, tuple[int, int]] = {}
    u32 = _U32
    for kind, traf in _children(moof):
        if kind != b"traf":
            continue
        track_id, default = 0, 0
        samples, ticks = 0, 0
        for sub, payload in _children(traf):
            if sub == b"tfhd":
                flags, track_id = _U32X2(payload, 0)
                flags &= 0xFFFFFF
                track = movie.tracks.get(track_id)
                default = track.default_duration if track else 0
                if flags & 0x08:
                    pos = 8 + (8 if flags & 0x01 else 0) + (4 if flags & 0x02 else 0)
                    default = u32(payload, pos)[0]
            elif sub == b"trun":
                flags, count = _U32X2(payload, 0)
                flags &= 0xFFFFFF
                pos = 8 + (4 if flags & 0x01 else 0) + (4 if flags & 0x04 else 0)
                words = (flags & 0xF00).bit_count()
                if pos + count * 4 * words > len(payload):
                    raise Mp4Error("trun shorter than its sample count")
                samples += count
                if flags & 0x100:  # each sample's duration, the first of its fields
                    fields = struct.unpack_from(f">{count * words}I", payload, pos)
                    ticks += sum(fields[::words])
                else:
                    ticks += count * default
        total = found.get(track_id, (0, 0))
        found[track_id] = (total[0] + samples, total[1] + ticks)
    return found


#: what the scanner waits for: a box header's first 8 bytes, its 64-bit size,
#: a ``moov``/``moof`` payload, or the end of a box it does not read
_HEAD, _LARGE, _META, _SKIP = range(4)


class BoxScanner:
    """Follows the top-level boxes of an MP4 file as its bytes stream past.

    The hash reads every byte of a segment anyway; fed the same chunks, this
    collects the few hundred bytes of each ``moov``/``moof`` and steps over
    each ``mdat`` without a read, a seek or a second pass of its own. The
    rules are :func:`read_info`'s (which is this scanner over a file): a box
    the file ends inside is not there, a fragment's samples count once its
    ``mdat`` is whole. Chunks may be split anywhere (a header across two
    reads is joined); nothing fed is kept beyond the call, so the caller may
    reuse its buffer.

    The ``moov``/``moof`` payloads are queued and read together at the end
    (or once they hold :data:`QUEUE_BYTES`), not one by one between the
    hash's chunks, where each ran on caches the hash had just flushed (in the
    hub, the walk cost two to three times its time alone).
    """

    def __init__(self) -> None:
        #: bytes fed so far (the file's size once it is all fed)
        self.offset = 0
        self._state = _HEAD
        self._box = 0  # where the box being read starts
        self._kind = ""
        self._end: int | None = 0  # where it ends (None: at the end of the file)
        self._want = 8  # _HEAD/_LARGE/_META: bytes to gather into _part
        self._part = bytearray()
        self._got = 0
        self._movie: _Movie | None = None
        self._pending: dict[int, tuple[int, int]] | None = None  # a moof awaiting its mdat
        #: what is whole and not yet read, in file order: (``moov``/``moof``, payload),
        #: or (``mdat``, None) for a whole ``mdat``
        self._queue: list[tuple[str, bytes | None]] = []
        self._queued = 0
        self._totals: dict[int, tuple[int, int]] = {}
        self._walked = 0
        self._error: Mp4Error | None = None
        self._done = False  # an error: the rest is hashed, not read

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """The file's next bytes (in order, from the first)."""
        base = self.offset
        size = len(data)
        self.offset = stop = base + size
        if self._done:
            return
        try:
            self._scan(data, base, stop)
        except Mp4Error as err:
            self._error, self._done = err, True

    def _scan(self, data: bytes | bytearray | memoryview, base: int, stop: int) -> None:
        at = base  # file offset of the next unread byte of ``data``
        while True:
            state = self._state
            if state == _SKIP:
                end = self._end
                if end is None or end > stop:
                    return  # the box goes on past this chunk
                self._box_done()
                self._state, self._box, self._want = _HEAD, end, 8
                at = end
                continue
            if not self._got and at + self._want <= stop:
                # all of it in this chunk (the usual case): read in place
                i = at - base
                if state == _META:
                    at += self._want
                    self._meta_done(bytes(data[i : i + self._want]))
                    continue
                size, kind = _BOX_HEAD(data, i)
                if size != 1:
                    at += 8
                    self._opened(size, kind.decode("latin-1"), 8)
                    continue
                # a 64-bit size follows: gathered below
            # gather ``_want`` bytes into _part, across chunks
            take = min(self._want - self._got, stop - at)
            if take <= 0:
                return
            self._part += data[at - base : at - base + take]
            self._got += take
            at += take
            if self._got < self._want:
                return
            part = self._part
            if state == _META:
                self._meta_done(bytes(part))
            elif state == _LARGE:
                self._opened(int.from_bytes(part[8:16], "big"), self._kind, 16)
            elif int.from_bytes(part[0:4], "big") == 1:
                self._state, self._kind, self._want = _LARGE, part[4:8].decode("latin-1"), 16
            else:
                self._opened(int.from_bytes(part[0:4], "big"), part[4:8].decode("latin-1"), 8)

    def _opened(self, size: int, kind: str, header: int) -> None:
        """A box's header is read: collect it (``moov``, ``moof``) or step over it."""
        pos = self._box
        self._kind = kind
        if size == 0 and header == 8:
            end: int | None = None  # to the end of the file
        elif size < header:
            raise Mp4Error(f"box {kind!r} at byte {pos} has an impossible size")
        else:
            end = pos + size
        self._end = end
        if self._got:
            self._part.clear()
            self._got = 0
        if kind in ("moov", "moof") and (end is None or end - pos <= MAX_META_BOX):
            self._state = _META
            self._want = MAX_META_BOX + 1 - header if end is None else end - pos - header
        else:
            self._state = _SKIP

    def _meta_done(self, payload: bytes) -> None:
        if self._end is None:  # to the end of the file, and more than MAX_META_BOX
            raise Mp4Error(f"{self._kind} box of more than {MAX_META_BOX} bytes")
        self._read_meta(payload)
        self._box_done()
        self._state, self._box, self._want = _HEAD, self._end, 8
        if self._got:
            self._part.clear()
            self._got = 0

    def _read_meta(self, payload: bytes) -> None:
        self._queue.append((self._kind, payload))
        self._queued += len(payload)
        if self._queued > QUEUE_BYTES:
            self._read_queue()

    def _read_queue(self) -> None:
        """Read the queued boxes, in file order (an error stops it: the first one in
        the file is the one raised)."""
        queue, self._queue, self._queued = self._queue, [], 0
        for kind, payload in queue:
            if payload is None:  # a whole mdat: the moof before it counts
                if self._pending is not None:
                    totals = self._totals
                    for track_id, (samples, ticks) in self._pending.items():
                        total = totals.get(track_id, (0, 0))
                        totals[track_id] = (total[0] + samples, total[1] + ticks)
                self._pending = None
            elif kind == "moov":
                self._movie = _movie(payload)
            elif self._movie is None:
                raise Mp4Error("a fragment before the movie header")
            else:
                self._pending = _fragment(payload, self._movie)

    def _box_done(self) -> None:
        """The box is whole on disk."""
        kind = self._kind
        if kind == "mdat":
            self._queue.append((kind, None))
        elif kind in ("moov", "moof") and self._state == _SKIP:
            raise Mp4Error(f"{kind} box of {(self._end or 0) - self._box} bytes")
        self._walked += 1
        if self._walked > MAX_BOXES:
            raise Mp4Error("too many boxes")

    def finish(self) -> MediaInfo:
        """What the file holds, once all of it was fed; :class:`Mp4Error` if it is
        not an MP4 this reader can vouch for."""
        if not self._done:
            try:
                self._finish()
            except Mp4Error as err:
                self._error, self._done = err, True
        # what was queued came before any error of the walk: its own error first
        self._read_queue()
        if self._error is not None:
            raise self._error
        self._done = True
        movie = self._movie
        if movie is None:
            raise Mp4Error("no movie header (moov)")
        samples, seconds = 0, 0.0
        for track_id, track in movie.tracks.items():
            if track.handler != "vide":
                continue
            frag_samples, frag_ticks = self._totals.get(track_id, (0, 0))
            count = frag_samples + track.samples
            ticks = frag_ticks + track.ticks
            if count and track.timescale > 0:
                samples += count
                seconds = max(seconds, ticks / track.timescale)
        return MediaInfo(video_samples=samples, duration=seconds)

    def _finish(self) -> None:
        # a box the file ends inside is not there (killed, disk full); one that
        # runs to the end of the file (size 0) is whole
        if self._state == _LARGE:
            raise Mp4Error("box shorter than its fields")
        if self._end is None:
            if self._state == _META:
                self._read_meta(bytes(self._part))
            self._box_done()


def read_info(handle: BinaryIO) -> MediaInfo:
    """The video samples of an open MP4 file, read from its start; :class:`Mp4Error`
    if it is not one. Reads it whole: where the file is being hashed, feed a
    :class:`BoxScanner` the hash's chunks instead."""
    handle.seek(0)
    scanner = BoxScanner()
    while chunk := handle.read(256 * 1024):
        scanner.feed(chunk)
    return scanner.finish()


def media_info(path: Path) -> MediaInfo:
    """:func:`read_info` on a file (blocking: call it off the event loop)."""
    with path.open("rb") as handle:
        return read_info(handle)


def inspect_segment(path: str | Path) -> tuple[int, str, MediaInfo | None]:
    """Size, SHA-256 and video content (None if unreadable as MP4), in one read.

    Blocking: runs in the hasher pool. The box walk follows the hash's chunks
    (:class:`~csuhub.recording.mp4info.BoxScanner`): no seek or read of its own.
    """
    scanner = BoxScanner()
    with open(path, "rb", buffering=0) as handle:
        digest, size = sha256_handle(handle, scanner.feed)
    try:
        info: MediaInfo | None = scanner.finish()
    except Mp4Error as err:
        _LOGGER.debug("%s: %s", path, err)
        info = None
    return size, digest, info
