"""The live fMP4 parser (csuhub.live.fmp4) on real ffmpeg output: whatever
the pipe's chunk boundaries, the same init segment and fragments; keyframes
where ffmpeg put them; codec strings for H.264 and H.265; garbage raises
only the parser's own error."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csuhub.live.fmp4 import (
    MAX_BOX,
    BoxReader,
    CodecInfo,
    Fmp4Error,
    Fragment,
    Segmenter,
    hevc_string,
)


def _encode(ffmpeg: str, codec: list[str]) -> bytes:
    return subprocess.run(
        [
            ffmpeg,
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x96:rate=10",
            "-t",
            "3",
            *codec,
            "-pix_fmt",
            "yuv420p",
            "-g",
            "10",
            "-f",
            "mp4",
            "-movflags",
            "+frag_keyframe+empty_moov+default_base_moof",
            "-frag_duration",
            "300000",
            "pipe:1",  # as live: no mfra index at the end
        ],
        check=True,
        timeout=60,
        stdout=subprocess.PIPE,
    ).stdout


@pytest.fixture(scope="module")
def h264(ffmpeg_bin: str) -> bytes:
    return _encode(
        ffmpeg_bin,
        ["-c:v", "libx264", "-preset", "ultrafast"],
    )


@pytest.fixture(scope="module")
def h265(ffmpeg_bin: str) -> bytes:
    return _encode(
        ffmpeg_bin,
        [
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-tag:v",
            "hvc1",
            "-x265-params",
            "log-level=0",
        ],
    )


def _parse(data: bytes, cuts: list[int]) -> tuple[bytes | None, CodecInfo | None, list[Fragment]]:
    segmenter = Segmenter()
    fragments: list[Fragment] = []
    init: bytes | None = None
    info: CodecInfo | None = None
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        for item in segmenter.feed(data[start:cut]):
            if item[0] == "init":
                init, info = item[1], item[2]  # type: ignore[assignment,misc]
            else:
                fragments.append(item[1])  # type: ignore[arg-type]
        start = max(start, cut)
    return init, info, fragments


def test_a_real_stream_cuts_into_init_and_keyframe_fragments(h264: bytes) -> None:
    init, info, fragments = _parse(h264, [])
    assert init is not None and init.startswith(h264[:28]) and b"moov" in init
    assert info == CodecInfo("avc1.42c00a", 160, 96)
    assert info.mime == 'video/mp4; codecs="avc1.42c00a"'
    # ultrafast: constrained baseline (42 c0), level 1.0 (0a); 3 s at 10 fps,
    # a keyframe each 10 frames, fragments of at most 0.3 s
    assert sum(f.samples for f in fragments) == 30
    keyframes = [i for i, f in enumerate(fragments) if f.keyframe]
    assert len(keyframes) == 3 and keyframes[0] == 0
    assert all(f.samples <= 3 for f in fragments)
    # every fragment is one moof and its mdat, together the rest of the stream but
    # its closing index (mfra, which the parser passes over)
    assert all(f.data[4:8] == b"moof" for f in fragments)
    mfra = int.from_bytes(h264[-4:], "big")
    assert h264[-mfra + 4 : -mfra + 8] == b"mfra"
    assert len(init) + sum(len(f.data) for f in fragments) + mfra == len(h264)


def test_h265_is_named_for_is_type_supported(h265: bytes) -> None:
    _, info, fragments = _parse(h265, [])
    assert info is not None and info.h265
    assert info.codec.startswith("hvc1.1.6.L")  # Main profile, compat flags 0x6 reversed
    assert fragments[0].keyframe


def test_hevc_string_from_a_known_record() -> None:
    # Main 10, tier high, level 5.1 (153), one constraint byte (0x90)
    record = bytes([1, 0x22, 0x40, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 153])
    assert hevc_string(record) == "2.2.H153.90"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_chunking_gives_the_same_boxes(h264: bytes, data: st.DataObject) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(h264)), max_size=40))
    assert _parse(h264, cuts) == _parse(h264, [])


@settings(max_examples=300, deadline=None)
@given(garbage=st.binary(max_size=600), cut=st.integers(0, 600))
def test_garbage_raises_only_the_parsers_error(garbage: bytes, cut: int) -> None:
    segmenter = Segmenter()
    try:
        segmenter.feed(garbage[:cut])
        segmenter.feed(garbage[cut:])
    except Fmp4Error:
        pass


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_a_damaged_real_stream_raises_only_the_parsers_error(
    h264: bytes, data: st.DataObject
) -> None:
    """Bytes flipped inside real headers (sizes, flags, sample entries)."""
    damaged = bytearray(h264)
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, min(len(damaged) - 1, 1200)))
        damaged[at] = data.draw(st.integers(0, 255))
    try:
        _parse(bytes(damaged), data.draw(st.lists(st.integers(0, len(damaged)), max_size=5)))
    except Fmp4Error:
        pass


def test_limits_and_order() -> None:
    with pytest.raises(Fmp4Error, match="over the limit"):
        BoxReader().feed((MAX_BOX + 1).to_bytes(4, "big") + b"mdat")
    with pytest.raises(Fmp4Error, match="runs to the end"):
        BoxReader().feed(b"\0\0\0\0mdat")
    with pytest.raises(Fmp4Error, match="not a box type"):
        BoxReader().feed(b"\0\0\0\x10\x01\x02\x03\x04" + b"\0" * 8)
    with pytest.raises(Fmp4Error, match="before the init"):
        Segmenter().feed(b"\0\0\0\x08moof\0\0\0\x08mdat")
    with pytest.raises(Fmp4Error, match="not its mdat"):
        Segmenter().feed(b"\0\0\0\x08moof\0\0\0\x08free")
    # an incomplete box waits for its bytes
    reader = BoxReader()
    assert reader.feed(b"\0\0\0\x10free\0\0") == [] and reader.pending == 10
    assert [b.kind for b in reader.feed(b"\0" * 6)] == [b"free"]
