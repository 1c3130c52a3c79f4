"""The in-process MP4 reader that decides whether a segment holds footage."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csuhub.recording.mp4info import MediaInfo, Mp4Error, media_info, read_info


@pytest.fixture(scope="module")
def segment(tmp_path_factory: pytest.TempPathFactory, ffmpeg_bin: str) -> bytes:
    """A segment as the ffmpeg backend writes it: 3 s at 10 fps, fragmented."""
    out = tmp_path_factory.mktemp("mp4") / "seg.mp4"
    subprocess.run(
        [
            ffmpeg_bin,
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x90:rate=10",
            "-t",
            "3",
            "-c:v",
            "libx264",
            "-g",
            "10",
            "-f",
            "mp4",
            "-movflags",
            "+frag_keyframe+empty_moov+default_base_moof",
            "-frag_duration",
            "500000",
            str(out),
        ],
        check=True,
    )
    return out.read_bytes()


def _top_boxes(data: bytes) -> list[tuple[str, int, int]]:
    boxes, pos = [], 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        boxes.append((data[pos + 4 : pos + 8].decode(), pos, size))
        pos += size
    return boxes


def test_a_whole_segment(segment: bytes, tmp_path: Path) -> None:
    path = tmp_path / "s.mp4"
    path.write_bytes(segment)
    info = media_info(path)
    assert info == MediaInfo(video_samples=30, duration=3.0)
    assert info.playable


def test_header_only_file_has_no_footage(segment: bytes) -> None:
    """What a full disk leaves: ftyp and an empty moov (885 bytes seen), 0 packets."""
    first_moof = next(pos for kind, pos, _ in _top_boxes(segment) if kind == "moof")
    info = read_info(io.BytesIO(segment[:first_moof]))
    assert info.video_samples == 0 and not info.playable


def test_a_fragment_cut_short_is_not_counted(segment: bytes) -> None:
    """kill -9 mid-write: the last fragment's mdat is incomplete, its samples are not there."""
    boxes = _top_boxes(segment)
    mdats = [(pos, size) for kind, pos, size in boxes if kind == "mdat"]
    pos, size = mdats[1]
    whole = read_info(io.BytesIO(segment[: mdats[0][0] + mdats[0][1]]))
    cut = read_info(io.BytesIO(segment[: pos + size // 2]))
    assert cut == whole and 0 < whole.video_samples < 30


def test_not_mp4_at_all() -> None:
    with pytest.raises(Mp4Error):
        read_info(io.BytesIO(b"this is a text file, not a video at all"))
    with pytest.raises(Mp4Error):
        read_info(io.BytesIO(b""))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=8),
    st.one_of(st.none(), st.integers(min_value=0)),
)
def test_any_damage_gives_an_answer_or_mp4error(
    segment: bytes,
    flips: list[tuple[int, int]],
    cut: int | None,
) -> None:
    """Byte flips and truncation anywhere: a MediaInfo with sane numbers, or Mp4Error;
    never another exception (the hub indexes the file as damaged then)."""
    mutated = bytearray(segment)
    for where, value in flips:
        mutated[where % len(mutated)] = value
    if cut is not None:
        del mutated[cut % (len(mutated) + 1) :]
    try:
        info = read_info(io.BytesIO(bytes(mutated)))
    except Mp4Error:
        return
    assert info.video_samples >= 0 and info.duration >= 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_random_bytes(blob: bytes) -> None:
    try:
        read_info(io.BytesIO(blob))
    except Mp4Error:
        pass
