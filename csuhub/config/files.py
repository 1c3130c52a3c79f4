"""Reading a configuration file's bytes without ever hanging or reading without bound.

The site file, its includes and ``secrets.yaml`` must be regular files: a FIFO
would make ``csuhub check`` wait for a writer for ever and a device would be
read to an end that never comes. A file that is not UTF-8 is reported at the
line and column of its first bad byte.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from csuhub.config.nodes import Mark, YamlError

#: Larger site files are certainly a mistake (or an attack).
MAX_DOCUMENT_BYTES = 4 * 1024 * 1024


def read_text(path: Path) -> str:
    """The UTF-8 text of a regular file of at most ``MAX_DOCUMENT_BYTES``.

    Raises ``OSError`` when unreadable (CLI exit 2) and ``YamlError`` when too
    large or not UTF-8.
    """
    raw = _read_regular(path, MAX_DOCUMENT_BYTES + 1)
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise YamlError(
            f"file larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB; refused",
            Mark(str(path), 1, 1),
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise YamlError(
            f"byte 0x{raw[err.start]:02X} is not UTF-8; save the file as UTF-8",
            _byte_mark(raw, err.start, str(path)),
        ) from None


def not_regular(mode: int) -> str | None:
    """What a non-regular file is ("a FIFO"), or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _read_regular(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of a regular file.

    Opened non-blocking and checked before reading: a FIFO given as a site
    file (or an include, or secrets.yaml) would otherwise make ``check`` wait
    for a writer for ever, and a device would be read to an end that never comes.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    try:
        kind = not_regular(os.fstat(fd).st_mode)
        if kind == "a directory":
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        if kind is not None:
            raise OSError(errno.EINVAL, f"is {kind}, not a regular file", str(path))
        chunks: list[bytes] = []
        size = 0
        while size < limit:
            chunk = os.read(fd, min(1 << 20, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _byte_mark(raw: bytes, offset: int, file: str) -> Mark:
    """Line and column (in characters, like every other mark) of byte ``offset``.

    Everything before the first bad byte is valid UTF-8, so the column counts
    the characters an editor shows, not bytes.
    """
    line_start = raw.rfind(b"\n", 0, offset) + 1
    column = len(raw[line_start:offset].decode("utf-8", "replace")) + 1
    return Mark(file, raw.count(b"\n", 0, offset) + 1, column)
