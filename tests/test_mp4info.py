"""The in-process MP4 reader that decides whether a segment holds footage."""

from __future__ import annotations

import hashlib
import io
import itertools
import struct
import subprocess
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csuhub.hashing import sha256_file, sha256_handle
from csuhub.recording.mp4info import (
    MAX_BOXES,
    MAX_META_BOX,
    BoxScanner,
    MediaInfo,
    Mp4Error,
    _fragment,
    _Movie,
    _movie,
    inspect_segment,
    media_info,
    read_info,
)


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


def _seek_walk(data: bytes) -> MediaInfo:
    """The box walk as it was before it followed the hash (a seek and a read per
    box, the file's size known first): the reference the scanner must agree with."""
    file_size, pos, walked = len(data), 0, 0
    movie: _Movie | None = None
    pending: dict[int, tuple[int, int]] | None = None
    totals: dict[int, tuple[int, int]] = {}
    while pos + 8 <= file_size:
        head = data[pos : pos + 16]
        size, kind, header = struct.unpack_from(">I", head)[0], head[4:8].decode("latin-1"), 8
        if size == 1:
            if len(head) < 16:
                raise Mp4Error("box shorter than its fields")
            size, header = struct.unpack_from(">Q", head, 8)[0], 16
        elif size == 0:
            size = file_size - pos
        if size < header:
            raise Mp4Error("impossible size")
        complete = pos + size <= file_size
        if kind in ("moov", "moof"):
            if not complete:
                break
            if size > MAX_META_BOX:
                raise Mp4Error("too big")
            payload = data[pos + header : pos + size]
            if kind == "moov":
                movie = _movie(payload)
            elif movie is None:
                raise Mp4Error("a fragment before the movie header")
            else:
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
        frag_samples, frag_ticks = totals.get(track_id, (0, 0))
        count, ticks = frag_samples + track.samples, frag_ticks + track.ticks
        if track.handler == "vide" and count and track.timescale > 0:
            samples += count
            seconds = max(seconds, ticks / track.timescale)
    return MediaInfo(video_samples=samples, duration=seconds)


def _outcome(read: object) -> object:
    try:
        return read()  # type: ignore[operator]
    except Mp4Error:
        return Mp4Error


def _scan_in(data: bytes, cuts: list[int]) -> MediaInfo:
    """The scanner fed ``data`` split at ``cuts`` (through one reused buffer, as the hash
    feeds it: the scanner must keep nothing of a chunk)."""
    scanner, buffer = BoxScanner(), bytearray(len(data))
    view = memoryview(buffer)
    bounds = [0, *sorted({c % (len(data) + 1) for c in cuts}), len(data)]
    for start, end in itertools.pairwise(bounds):
        buffer[: end - start] = data[start:end]
        scanner.feed(view[: end - start])
        buffer[: end - start] = bytes(end - start)  # reused: scribbled over
    return scanner.finish()


def _header_damage(segment: bytes) -> st.SearchStrategy[bytes]:
    """The segment's first boxes with bytes of their headers (sizes, types, the
    64-bit size) set to edge values, then maybe cut: where a walker's rules differ."""
    starts, pos = [], 0
    while pos + 8 <= len(segment) and len(starts) < 8:
        starts.append(pos)
        pos += int.from_bytes(segment[pos : pos + 4], "big")
    values = st.one_of(st.sampled_from([0, 1, 2, 0x7F, 0xFF]), st.integers(0, 255))
    flip = st.tuples(st.sampled_from(starts), st.integers(0, 23), values)

    def damage(flips: list[tuple[int, int, int]], cut: int | None) -> bytes:
        data = bytearray(segment[: starts[-1]])
        for start, offset, value in flips:
            if start + offset < len(data):
                data[start + offset] = value
        if cut is not None:
            del data[cut % (len(data) + 1) :]
        return bytes(data)

    return st.builds(damage, st.lists(flip, min_size=1, max_size=3), st.none() | st.integers(0))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_the_scanner_agrees_with_a_seek_per_box_whatever_the_chunks(
    segment: bytes, data: st.DataObject, cuts: list[int]
) -> None:
    """Damaged headers, truncation, chunks split anywhere (a header across two reads,
    one byte at a time): the same answer, or Mp4Error on both sides."""
    damaged = data.draw(_header_damage(segment))
    expected = _outcome(lambda: _seek_walk(damaged))
    assert _outcome(lambda: _scan_in(damaged, cuts)) == expected
    assert _outcome(lambda: read_info(io.BytesIO(damaged))) == expected


def test_boxes_with_a_64_bit_size_or_to_the_end_of_the_file(segment: bytes) -> None:
    """Sizes a muxer may write (1: a 64-bit size follows; 0: to the end of the
    file) are read as such; a 64-bit size of 0 is impossible, not "to the end"."""
    boxes = {kind: (pos, size) for kind, pos, size in reversed(_top_boxes(segment))}
    pos, size = boxes["mdat"]
    large = (
        segment[:pos]
        + struct.pack(">I4sQ", 1, b"mdat", size + 8)
        + segment[pos + 8 : pos + size]
        + segment[pos + size :]
    )
    assert _scan_in(large, [pos + 3, pos + 12]) == _seek_walk(large) == media_info_of(segment)
    last = _top_boxes(segment)[-1]
    to_end = segment[: last[1]] + b"\0\0\0\0free" + b"x" * 100
    assert _scan_in(to_end, [len(to_end) - 50]) == media_info_of(segment)
    zero = segment[:pos] + struct.pack(">I4sQ", 1, b"mdat", 0) + segment[pos + 16 :]
    with pytest.raises(Mp4Error, match="impossible size"):
        _scan_in(zero, [])


def media_info_of(data: bytes) -> MediaInfo:
    return read_info(io.BytesIO(data))


def test_an_oversized_movie_box_is_refused_once_whole(segment: bytes) -> None:
    """A moov/moof claiming more than MAX_META_BOX is not collected: refused when the
    file holds all of it, ignored (cut short) when it ends inside it."""
    moov = next(pos for kind, pos, _ in _top_boxes(segment) if kind == "moov")
    claim = MAX_META_BOX + 1
    head = segment[:moov] + struct.pack(">I4s", claim, b"moov")
    whole = head + bytes(claim - 8)
    with pytest.raises(Mp4Error, match="moov box of"):
        _scan_in(whole, [len(whole) // 2])
    with pytest.raises(Mp4Error, match="no movie header"):
        _scan_in(head + bytes(100), [])


def test_hashing_a_segment_reads_it_once_and_gives_hashlib_s_digest(
    segment: bytes, tmp_path: Path
) -> None:
    """inspect_segment: size, the SHA-256 hashlib gives, and the media, from one read
    of the file (chunks of one buffer per thread, several threads at once)."""
    path = tmp_path / "s.mp4"
    # a free box after the fragments: the file spans several chunks, the media is the same
    blob = segment + struct.pack(">I4s", 8 + 600_000, b"free") + bytes(600_000)
    path.write_bytes(blob)
    expected = (len(blob), hashlib.sha256(blob).hexdigest(), media_info_of(segment))
    results: list[tuple[int, str, MediaInfo | None]] = []

    def work() -> None:
        for _ in range(20):
            results.append(inspect_segment(path))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 60
    assert sha256_file(path) == expected[1]


def test_the_hash_shows_every_chunk_in_order(tmp_path: Path) -> None:
    """Files of 0 bytes, less than a chunk, a chunk and more: the observer sees the
    file's bytes exactly, and the digest is hashlib's."""
    for size in (0, 1, 256 * 1024, 256 * 1024 + 1, 3 * 256 * 1024 + 17):
        blob = hashlib.sha256(str(size).encode()).digest() * (size // 32 + 1)
        blob = blob[:size]
        path = tmp_path / f"{size}.bin"
        path.write_bytes(blob)
        seen = bytearray()
        with path.open("rb") as handle:
            digest, count = sha256_handle(handle, seen.extend)
        assert (digest, count, bytes(seen)) == (hashlib.sha256(blob).hexdigest(), size, blob)
