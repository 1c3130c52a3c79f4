"""The evidence package's zip, written front to back with a member streamed in place.

Why not only ``zipfile``: an export's video is hundreds of MB, and ``zipfile``
can only take a member's bytes through Python, which means ffmpeg writes the
cut once to a temporary file and Python copies it into the zip. Here ffmpeg
writes the video straight into the package at its place (stdout is the
package's file descriptor), and a reader thread hashes it as it grows: one
write of the footage instead of two.

The format is plain APPNOTE 6.3: STORED members (video does not compress),
each a local header with ZIP64 sizes followed by its bytes, then a central
directory with ZIP64 fields, a ZIP64 end record and locator, and the classic
end record. A streamed member's local header is written first with zero CRC
and sizes and completed in place once its bytes are all there (the package is
a seekable file), so there are no data descriptors: streaming readers (Java's
``ZipInputStream``) can read it too. ``zipfile`` (and so ``csuhub verify``),
unzip, 7-Zip and Windows read it. Writing only: reading stays with
``zipfile``, but ``local_header`` and ``central_directory`` are also how the
verifier rebuilds every byte of the container that is not a member's content,
so a package whose zip structure was rewritten or altered is caught.

The package's LISEZMOI (``readme_text``) is here too: it says, in French and
English, what the video is (the camera's own stream, or re-encoded through
privacy masks) and how to check the package without csuhub.
"""

from __future__ import annotations

import struct
import time
import zlib
from dataclasses import dataclass
from typing import BinaryIO

LOCAL = 0x04034B50
CENTRAL = 0x02014B50
END64 = 0x06064B50
LOCATOR64 = 0x07064B50
END = 0x06054B50

VERSION = 45  # ZIP64
MADE_BY = (3 << 8) | VERSION  # Unix, so the permissions below mean something
FLAGS = 0x0800  # UTF-8 names
STORED = 0
FILE_MODE = 0o100644 << 16
ZIP64_EXTRA = 0x0001
MASK32 = 0xFFFFFFFF


def local_header(member: Member) -> bytes:
    """30 bytes, the name, and a ZIP64 extra field (sizes): always the same length,
    so a header can be rewritten in place once the member's bytes are known."""
    extra = struct.pack("<HHQQ", ZIP64_EXTRA, 16, member.size, member.size)
    return (
        struct.pack(
            "<IHHHHHIIIHH",
            LOCAL,
            VERSION,
            FLAGS,
            STORED,
            *member.when,
            member.crc,
            MASK32,
            MASK32,
            len(member.name),
            len(extra),
        )
        + member.name
        + extra
    )


def dos_time(when: float) -> tuple[int, int]:
    t = time.localtime(when)
    year = max(t.tm_year, 1980)
    return (
        (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2),
        ((year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday,
    )


@dataclass(slots=True)
class Member:
    name: bytes
    offset: int
    when: tuple[int, int]
    crc: int = 0
    size: int = 0


class PackageWriter:
    """Writes members in order to ``fp`` (opened ``wb``); nothing is ever rewritten."""

    def __init__(self, fp: BinaryIO) -> None:
        self.fp = fp
        self.members: list[Member] = []
        self._open: Member | None = None

    def begin(self, name: str) -> int:
        """Write ``name``'s local header (CRC and sizes to come: see ``end``); returns
        the offset where its bytes start."""
        if self._open is not None:
            raise RuntimeError(f"{self._open.name.decode()} is still being written")
        if "\\" in name or name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"unsafe member name {name!r}")
        member = Member(name.encode("utf-8"), self.fp.tell(), dos_time(time.time()))
        self.fp.write(local_header(member))
        self._open = member
        return self.fp.tell()

    def end(self, crc: int, size: int) -> None:
        """Close the open member, whose ``size`` bytes (CRC-32 ``crc``) follow its
        header: the header is completed in place."""
        member = self._open
        if member is None:
            raise RuntimeError("no member is open")
        member.crc, member.size = crc & MASK32, size
        after = self.fp.tell()
        if after != self._data_start(member) + size:
            raise RuntimeError(f"{member.name.decode()}: {size} bytes announced, not written")
        self.fp.seek(member.offset)
        self.fp.write(local_header(member))
        self.fp.seek(after)
        self.members.append(member)
        self._open = None

    @staticmethod
    def _data_start(member: Member) -> int:
        return member.offset + 30 + len(member.name) + 20

    def add(self, name: str, data: bytes) -> None:
        self.begin(name)
        self.fp.write(data)
        self.end(zlib.crc32(data), len(data))

    def close(self) -> None:
        """Write the central directory and the end records (ZIP64 and classic)."""
        if self._open is not None:
            raise RuntimeError(f"{self._open.name.decode()} was never ended")
        self.fp.write(central_directory(self.members, self.fp.tell()))
        self.fp.flush()


def central_directory(members: list[Member], start: int) -> bytes:
    """The central directory at ``start`` and the end records, exactly as written: the
    verifier rebuilds them to check that a package's container is the one csuhub wrote."""
    parts: list[bytes] = []
    for m in members:
        extra = struct.pack("<HHQQQ", ZIP64_EXTRA, 24, m.size, m.size, m.offset)
        parts.append(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                CENTRAL,
                MADE_BY,
                VERSION,
                FLAGS,
                STORED,
                *m.when,
                m.crc,
                MASK32,
                MASK32,
                len(m.name),
                len(extra),
                0,
                0,
                0,
                FILE_MODE,
                MASK32,
            )
            + m.name
            + extra
        )
    directory = b"".join(parts)
    end64 = start + len(directory)
    count = len(members)
    size = len(directory)
    return (
        directory
        + struct.pack("<IQHHIIQQQQ", END64, 44, MADE_BY, VERSION, 0, 0, count, count, size, start)
        + struct.pack("<IIQI", LOCATOR64, 0, end64, 1)
        + struct.pack(
            "<IHHHHIIH",
            END,
            0,
            0,
            min(count, 0xFFFF),
            min(count, 0xFFFF),
            min(size, MASK32),
            MASK32,
            0,
        )
    )


#: what video.mp4 is, in the package's LISEZMOI
VIDEO_AS_CUT = "extrait sans ré-encodage / cut without re-encoding"
VIDEO_MASKED = (
    "ré-encodé avec les masques de confidentialité (CSI L251-3), voir privacy_masks\n"
    "dans le manifeste / re-encoded with the privacy masks, see privacy_masks"
)


def readme_text(hub: str, camera: str, user: str, fingerprint: str, masked: bool) -> bytes:
    """The package's LISEZMOI.txt: what it holds and how to check it, for whoever
    receives it without csuhub."""
    video = VIDEO_MASKED if masked else VIDEO_AS_CUT
    return README_TEXT.format(
        hub=hub, camera=camera, user=user, fingerprint=fingerprint, video=video
    ).encode("utf-8")


README_TEXT = """Paquet de preuve vidéo csuhub / csuhub video evidence package

Centre / hub : {hub}
Caméra / camera : {camera}
Exporté par / exported by : {user}
Empreinte de la clé du centre / hub key fingerprint :
    {fingerprint}

Contenu : video.mp4 ({video}), manifest.json (provenance,
empreintes SHA-256 de chaque fichier, y compris ce LISEZMOI), manifest.sig
(signature Ed25519 du manifeste), public_key.pem (clé publique du CSU).

Vérifier hors ligne / verify offline :
    csuhub verify <paquet>.zip --fingerprint {fingerprint}

La signature ne prouve l'origine que si l'empreinte ci-dessus est comparée à
celle que le centre communique par un autre canal (procès-verbal de remise,
courrier) : une clé jointe au paquet, seule, ne prouve rien.
The signature proves the origin only once the fingerprint above is checked
against the one the hub gives through another channel (handover receipt,
letter): a key shipped inside the package proves nothing by itself.
"""
