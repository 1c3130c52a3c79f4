"""The evidence package's zip writer: readable by zipfile and by Info-ZIP's unzip."""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path

import pytest

from csuhub.recording.package import PackageWriter


def build(fp: io.BufferedIOBase | io.BytesIO, video: bytes) -> None:
    writer = PackageWriter(fp)  # type: ignore[arg-type]
    offset = writer.begin("video.mp4")
    assert offset == fp.tell()
    fp.write(video)  # as ffmpeg does: straight into the file, after the header
    writer.end(zlib.crc32(video), len(video))
    writer.add("manifest.json", b'{"camera": "cam-a"}')
    writer.add("LISEZMOI.txt", "Caméra / camera".encode())
    writer.close()


def test_members_round_trip_through_zipfile_with_their_crcs() -> None:
    video = os.urandom(300_000)
    buffer = io.BytesIO()
    build(buffer, video)
    buffer.seek(0)
    with zipfile.ZipFile(buffer) as archive:
        assert archive.namelist() == ["video.mp4", "manifest.json", "LISEZMOI.txt"]
        assert archive.testzip() is None
        assert archive.read("video.mp4") == video
        assert archive.read("LISEZMOI.txt").decode() == "Caméra / camera"
        info = archive.getinfo("video.mp4")
        assert (info.header_offset, info.file_size, info.compress_type) == (
            0,
            len(video),
            zipfile.ZIP_STORED,
        )
        assert info.external_attr >> 16 == 0o100644


def test_a_wrong_crc_is_caught_by_readers() -> None:
    buffer = io.BytesIO()
    writer = PackageWriter(buffer)
    writer.begin("video.mp4")
    buffer.write(b"footage")
    writer.end(zlib.crc32(b"altered"), 7)
    writer.close()
    buffer.seek(0)
    with zipfile.ZipFile(buffer) as archive:
        assert archive.testzip() == "video.mp4"


def test_misuse_is_refused() -> None:
    writer = PackageWriter(io.BytesIO())
    for name in ("../escape", "/abs", "a\\b"):
        with pytest.raises(ValueError, match="unsafe member name"):
            writer.begin(name)
    writer.begin("video.mp4")
    with pytest.raises(RuntimeError, match="still being written"):
        writer.begin("other")
    with pytest.raises(RuntimeError, match="never ended"):
        writer.close()


def test_info_zip_unzip_reads_and_checks_it(tmp_path: Path) -> None:
    unzip = shutil.which("unzip")
    assert unzip, "unzip is installed by scripts/install.sh --test"
    package = tmp_path / "pkg.zip"
    video = os.urandom(100_000)
    with package.open("wb") as handle:
        build(handle, video)
    result = subprocess.run([unzip, "-t", str(package)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No errors detected" in result.stdout
    out = tmp_path / "out"
    subprocess.run([unzip, "-q", str(package), "-d", str(out)], check=True)
    assert (out / "video.mp4").read_bytes() == video


def test_local_headers_carry_crc_and_sizes_for_streaming_readers() -> None:
    """No data descriptors: a reader that walks local headers front to back (Java's
    ZipInputStream refuses STORED members with descriptors) finds everything."""
    video = os.urandom(50_000)
    buffer = io.BytesIO()
    build(buffer, video)
    raw = buffer.getvalue()
    signature, _, flags, method, _, _, crc, csize, usize, nlen, xlen = struct.unpack_from(
        "<IHHHHHIIIHH", raw, 0
    )
    assert (signature, method, flags & 0x08) == (0x04034B50, 0, 0)
    assert crc == zlib.crc32(video) and (csize, usize) == (0xFFFFFFFF, 0xFFFFFFFF)
    header_id, _, size64, csize64 = struct.unpack_from("<HHQQ", raw, 30 + nlen)
    assert (header_id, size64, csize64) == (1, len(video), len(video))
    following = 30 + nlen + xlen + len(video)
    assert struct.unpack_from("<I", raw, following)[0] == 0x04034B50


def test_announcing_a_size_that_was_not_written_is_refused() -> None:
    buffer = io.BytesIO()
    writer = PackageWriter(buffer)
    writer.begin("video.mp4")
    buffer.write(b"12345")
    with pytest.raises(RuntimeError, match="6 bytes announced"):
        writer.end(zlib.crc32(b"123456"), 6)
