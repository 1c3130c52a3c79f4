"""Hashing files as they are written (an export's cut) and whole: the same
digests as :mod:`hashlib`, from one small buffer per thread."""

from __future__ import annotations

import hashlib
import threading
import tracemalloc
import zlib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from csuhub.hashing import HASH_CHUNK, sha256_file
from csuhub.recording.cutting import hash_following


def _done() -> threading.Event:
    done = threading.Event()
    done.set()
    return done


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=3 * HASH_CHUNK), st.integers(0, 64))
def test_following_hashes_the_bytes_after_the_offset(data: bytes, offset: int) -> None:
    import tempfile

    with tempfile.NamedTemporaryFile() as handle:
        handle.write(data)
        handle.flush()
        digest, crc, size = hash_following(Path(handle.name), offset, _done())
        rest = data[offset:]
        assert (digest, crc, size) == (
            hashlib.sha256(rest).hexdigest(),
            zlib.crc32(rest),
            len(rest),
        )
        assert sha256_file(Path(handle.name)) == hashlib.sha256(data).hexdigest()


def test_following_a_package_allocates_no_large_buffer(tmp_path: Path) -> None:
    """Each export followed its cut with a fresh 4 MiB buffer, freed after in the
    pool thread's arena: the soak's hub kept 4 MiB more resident per export.
    Now the thread's own 256 KiB buffer serves every call."""
    package = tmp_path / "package.zip"
    package.write_bytes(b"\x00" * (2 * 1024 * 1024))
    hash_following(package, 0, _done())  # this thread's buffer, made once
    tracemalloc.start()
    try:
        hash_following(package, 0, _done())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024, peak
