"""The fragmented-MP4 byte stream ffmpeg writes to its stdout, cut into what
a browser's Media Source Extensions take: one init segment and fragments.

Why a parser of our own: the hub must know where each ``moof``+``mdat`` pair
ends (a viewer is only ever sent whole fragments), which fragments begin
with a keyframe (a new or lagging viewer starts there), and the codec string
``MediaSource.isTypeSupported`` asks about (``avc1.64001f``), all from bytes
that arrive in pipe-sized chunks cut anywhere. Only headers are read; the
``mdat`` payload is passed on as it is, never copied more than once.

Everything here came from a camera through ffmpeg: every size is checked, a
box may not exceed :data:`MAX_BOX`, and anything malformed raises
:class:`Fmp4Error`, never another exception.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

#: a box bigger than this is not a live fragment (a 4K I-frame is a few MB)
MAX_BOX = 32 * 1024 * 1024
#: ``moov`` (the init segment) is small; more than this is not ffmpeg's
MAX_INIT = 1024 * 1024

_HEAD = struct.Struct(">I4s")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")

#: ISO/IEC 14496-12 8.8.3.1: sample_is_non_sync_sample
NON_SYNC = 0x00010000
#: tfhd flags
_TFHD_BASE_OFFSET = 0x000001
_TFHD_DESC_INDEX = 0x000002
_TFHD_DURATION = 0x000008
_TFHD_SIZE = 0x000010
_TFHD_FLAGS = 0x000020
#: trun flags
_TRUN_OFFSET = 0x000001
_TRUN_FIRST_FLAGS = 0x000004
_TRUN_DURATION = 0x000100
_TRUN_SIZE = 0x000200
_TRUN_FLAGS = 0x000400

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"moof", b"traf"}


class Fmp4Error(ValueError):
    """The stream is not a fragmented MP4 the hub can pass on; says why."""


@dataclass(frozen=True, slots=True)
class Box:
    kind: bytes
    data: bytes  # the whole box, header included


@dataclass(frozen=True, slots=True)
class CodecInfo:
    """What a browser needs to know before it creates its SourceBuffer."""

    #: RFC 6381 string: ``avc1.64001f``, ``hvc1.1.6.L93.B0``
    codec: str
    width: int
    height: int

    @property
    def mime(self) -> str:
        return f'video/mp4; codecs="{self.codec}"'

    @property
    def h265(self) -> bool:
        return self.codec.startswith(("hvc1", "hev1"))


@dataclass(frozen=True, slots=True)
class Fragment:
    """One ``moof`` and its ``mdat``, as sent to viewers."""

    data: bytes
    #: its first sample is a sync sample: a decoder can start here
    keyframe: bool
    samples: int


class BoxReader:
    """Top-level boxes out of chunks cut anywhere: ``feed`` returns each box
    once its last byte has arrived."""

    def __init__(self, max_box: int = MAX_BOX) -> None:
        self.max_box = max_box
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> list[Box]:
        buffer = self._buffer
        buffer += chunk
        found: list[Box] = []
        pos, end = 0, len(buffer)
        while (head := _box_head(buffer, pos, end, self.max_box)) and pos + head[1] <= end:
            found.append(Box(head[0], bytes(buffer[pos : pos + head[1]])))
            pos += head[1]
        if pos:
            del buffer[:pos]
        return found

    @property
    def pending(self) -> int:
        """Bytes of a box not complete yet."""
        return len(self._buffer)


class Segmenter:
    """Boxes into the init segment (``ftyp`` + ``moov``) and fragments.

    ``feed`` returns ``("init", bytes, CodecInfo)`` once, then
    ``("fragment", Fragment)`` items. Boxes ffmpeg may add between fragments
    (``sidx``, ``free``, ``styp``) are dropped; a fragment before the init
    segment, or a second ``moov``, is an error. A ``moof`` and the ``mdat``
    right after it leave as one slice of the pipe's bytes: one copy per
    fragment, whatever the chunking.
    """

    def __init__(self, max_box: int = MAX_BOX) -> None:
        self.max_box = max_box
        self.init: bytes | None = None
        self.info: CodecInfo | None = None
        self._buffer = bytearray()
        self._ftyp: bytes | None = None
        self._defaults: dict[int, int] = {}

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def feed(self, chunk: bytes) -> list[tuple[str, object]]:
        # parse the chunk itself when nothing is pending (the usual case: ffmpeg
        # flushes whole fragments): a fragment is then one slice of it, or the
        # chunk itself; only a tail is kept in the buffer
        buffer = self._buffer
        if buffer:
            buffer += chunk
            data: bytes | bytearray = buffer
        else:
            data = chunk
        out: list[tuple[str, object]] = []
        pos = 0
        end = len(data)
        while True:
            head = _box_head(data, pos, end, self.max_box)
            if head is None or pos + head[1] > end:
                break
            kind, size = head
            if kind == b"moof":
                # wait for the mdat after it: they leave together
                after = _box_head(data, pos + size, end, self.max_box)
                if after is None or pos + size + after[1] > end:
                    break
                if after[0] != b"mdat":
                    raise Fmp4Error(f"a moof followed by {_name(after[0])}, not its mdat")
                if self.init is None:
                    raise Fmp4Error("a fragment before the init segment")
                whole = _slice(data, pos, pos + size + after[1])
                keyframe, samples = fragment_flags(whole[:size], self._defaults)
                out.append(("fragment", Fragment(whole, keyframe, samples)))
                pos += size + after[1]
                continue
            item = self._box(kind, _slice(data, pos, pos + size))
            if item is not None:
                out.append(item)
            pos += size
        if data is buffer:
            if pos:
                del buffer[:pos]
        elif pos < end:
            buffer += memoryview(chunk)[pos:]
        return out

    def _box(self, kind: bytes, data: bytes) -> tuple[str, object] | None:
        if kind == b"ftyp":
            if self.init is not None:
                raise Fmp4Error("a second ftyp after the init segment")
            self._ftyp = data
            return None
        if kind == b"moov":
            if self.init is not None:
                raise Fmp4Error("a second moov in one live stream")
            if len(data) > MAX_INIT:
                raise Fmp4Error("the moov is too big for an init segment")
            self.info = codec_info(data)
            self._defaults = trex_defaults(data)
            self.init = (self._ftyp or b"") + data
            return ("init", self.init, self.info)
        if kind == b"mdat":
            raise Fmp4Error("an mdat without its moof")
        return None  # sidx, free, styp...: nothing a viewer needs


def _slice(data: bytes | bytearray, start: int, stop: int) -> bytes:
    """``data[start:stop]`` as ``bytes`` with one copy at most (none for a
    whole ``bytes``; a ``bytearray`` slice would be copied twice)."""
    if isinstance(data, bytes):
        return data[start:stop]
    with memoryview(data) as view:
        return bytes(view[start:stop])


def _box_head(
    buffer: bytes | bytearray, pos: int, end: int, max_box: int
) -> tuple[bytes, int] | None:
    """(type, size) of the box at ``pos``; None until its header is complete."""
    if end - pos < 8:
        return None
    size, kind = _HEAD.unpack_from(buffer, pos)
    head = 8
    if size == 1:
        if end - pos < 16:
            return None
        (size,) = _U64.unpack_from(buffer, pos + 8)
        head = 16
    elif size == 0:
        raise Fmp4Error(f"box {_name(kind)} runs to the end of a live stream")
    if size < head:
        raise Fmp4Error(f"box {_name(kind)} has an impossible size {size}")
    if size > max_box:
        raise Fmp4Error(f"box {_name(kind)} of {size} bytes is over the limit")
    if not _printable(kind):
        raise Fmp4Error(f"not a box type: {bytes(kind)!r}")
    return bytes(kind), size


def children(data: bytes, start: int = 8) -> list[Box]:
    """The boxes inside a container box's bytes (``start``: after its header)."""
    found: list[Box] = []
    pos = start
    end = len(data)
    while pos < end:
        if end - pos < 8:
            raise Fmp4Error("a box header cut short inside its parent")
        size, kind = _HEAD.unpack_from(data, pos)
        head = 8
        if size == 1:
            if end - pos < 16:
                raise Fmp4Error("a 64-bit box header cut short")
            (size,) = _U64.unpack_from(data, pos + 8)
            head = 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            raise Fmp4Error(f"box {_name(kind)} overruns its parent")
        found.append(Box(bytes(kind), data[pos : pos + size]))
        pos += size
    return found


def find(data: bytes, *path: bytes) -> Box | None:
    """The first box along ``path`` under a container's bytes."""
    box: Box | None = None
    current = data
    for kind in path:
        box = next((b for b in children(current) if b.kind == kind), None)
        if box is None:
            return None
        current = box.data
    return box


def _video_trak(moov: bytes) -> bytes:
    for trak in (b for b in children(moov) if b.kind == b"trak"):
        hdlr = find(trak.data, b"mdia", b"hdlr")
        if hdlr is not None and hdlr.data[16:20] == b"vide":
            return trak.data
    raise Fmp4Error("no video track in the init segment")


def codec_info(moov: bytes) -> CodecInfo:
    """The video track's codec string and size, from its sample entry."""
    stsd = find(_video_trak(moov), b"mdia", b"minf", b"stbl", b"stsd")
    if stsd is None or len(stsd.data) < 16:
        raise Fmp4Error("no sample description in the video track")
    entries = children(stsd.data, 16)  # header, version+flags, entry count
    if not entries:
        raise Fmp4Error("an empty sample description")
    entry = entries[0]
    if len(entry.data) < 86:
        raise Fmp4Error(f"a {_name(entry.kind)} sample entry cut short")
    width, height = struct.unpack_from(">HH", entry.data, 32)
    config = {b.kind: b.data for b in children(entry.data, 86)}
    name = _name(entry.kind)
    if entry.kind in (b"avc1", b"avc3"):
        avcc = config.get(b"avcC")
        if avcc is None or len(avcc) < 12:
            raise Fmp4Error("an avc1 sample entry without its avcC")
        return CodecInfo(f"{name}.{avcc[9]:02x}{avcc[10]:02x}{avcc[11]:02x}", width, height)
    if entry.kind in (b"hvc1", b"hev1"):
        hvcc = config.get(b"hvcC")
        if hvcc is None or len(hvcc) < 8 + 13:
            raise Fmp4Error("an hvc1 sample entry without its hvcC")
        return CodecInfo(f"{name}.{hevc_string(hvcc[8:])}", width, height)
    raise Fmp4Error(f"video codec {name!r} cannot be played in a browser")


def hevc_string(hvcc: bytes) -> str:
    """ISO/IEC 14496-15 annex E: ``<space><profile>.<compat>.<tier><level>.<constraints>``
    from an HEVCDecoderConfigurationRecord."""
    first = hvcc[1]
    space = ("", "A", "B", "C")[first >> 6]
    tier = "H" if first & 0x20 else "L"
    profile = first & 0x1F
    (compat,) = _U32.unpack_from(hvcc, 2)
    reversed_compat = int(f"{compat:032b}"[::-1], 2)
    constraints = bytearray(hvcc[6:12])
    while constraints and constraints[-1] == 0:
        constraints.pop()
    parts = [f"{space}{profile}", f"{reversed_compat:x}", f"{tier}{hvcc[12]}"]
    parts += [f"{b:X}" for b in constraints]
    return ".".join(parts)


def trex_defaults(moov: bytes) -> dict[int, int]:
    """Each track's default sample flags from ``mvex/trex``."""
    mvex = find(moov, b"mvex")
    if mvex is None:
        return {}
    found: dict[int, int] = {}
    for trex in (b for b in children(mvex.data) if b.kind == b"trex"):
        if len(trex.data) < 32:
            raise Fmp4Error("a trex box cut short")
        track, flags = (
            struct.unpack_from(">I", trex.data, 12)[0],
            _U32.unpack_from(trex.data, 28)[0],
        )
        found[track] = flags
    return found


def fragment_flags(moof: bytes, defaults: dict[int, int]) -> tuple[bool, int]:
    """(does the fragment start with a sync sample, how many samples it has),
    from the first track fragment's ``tfhd`` and ``trun``."""
    traf = find(moof, b"traf")
    if traf is None:
        raise Fmp4Error("a moof without a traf")
    boxes = {b.kind: b.data for b in children(traf.data)}
    tfhd, trun = boxes.get(b"tfhd"), boxes.get(b"trun")
    if tfhd is None or trun is None or len(tfhd) < 16 or len(trun) < 16:
        raise Fmp4Error("a traf without its tfhd and trun")
    tf_flags = _U32.unpack_from(tfhd, 8)[0] & 0xFFFFFF
    track = _U32.unpack_from(tfhd, 12)[0]
    flags = defaults.get(track, 0)
    pos = 16
    for bit, width in (
        (_TFHD_BASE_OFFSET, 8),
        (_TFHD_DESC_INDEX, 4),
        (_TFHD_DURATION, 4),
        (_TFHD_SIZE, 4),
    ):
        if tf_flags & bit:
            pos += width
    if tf_flags & _TFHD_FLAGS:
        if pos + 4 > len(tfhd):
            raise Fmp4Error("a tfhd cut short")
        flags = _U32.unpack_from(tfhd, pos)[0]
    tr_flags = _U32.unpack_from(trun, 8)[0] & 0xFFFFFF
    count = _U32.unpack_from(trun, 12)[0]
    pos = 16 + (4 if tr_flags & _TRUN_OFFSET else 0)
    if tr_flags & _TRUN_FIRST_FLAGS:
        if pos + 4 > len(trun):
            raise Fmp4Error("a trun cut short")
        flags = _U32.unpack_from(trun, pos)[0]
    elif tr_flags & _TRUN_FLAGS and count:
        pos += 4 * sum(1 for bit in (_TRUN_DURATION, _TRUN_SIZE) if tr_flags & bit)
        if pos + 4 > len(trun):
            raise Fmp4Error("a trun cut short")
        flags = _U32.unpack_from(trun, pos)[0]
    return (count > 0 and not flags & NON_SYNC), count


def _printable(kind: bytes | bytearray) -> bool:
    return all(0x20 <= c < 0x7F for c in kind)


def _name(kind: bytes | bytearray) -> str:
    return bytes(kind).decode("latin-1") if _printable(kind) else repr(bytes(kind))
