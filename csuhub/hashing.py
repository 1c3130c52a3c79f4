"""SHA-256 of files, read in chunks: the digest every segment, package and
extraction carries (the evidence chain), computed one way everywhere."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

#: big enough that the per-call overhead vanishes, small enough to stay in cache
HASH_CHUNK = 1024 * 1024


def sha256_handle(handle: BinaryIO) -> str:
    """SHA-256 of the rest of an open file; leaves it at the end (so ``tell()`` is
    its size, and a caller can read the same open file again without a reopen)."""
    digest = hashlib.sha256()
    while chunk := handle.read(HASH_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    """SHA-256 of a whole file. Blocking: call it from a thread."""
    with path.open("rb") as handle:
        return sha256_handle(handle)
