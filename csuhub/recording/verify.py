"""Offline verification of an evidence package: a pure function of its bytes and the
trust anchors, which never raises.

Why so strict: the package goes to a court, and whatever this says is read as
"the footage is what the hub recorded". So it says **intact** only when all of
this holds:

- the zip opens, and holds each member the signed manifest lists exactly once
  (a missing, extra or duplicated member is named), plus ``manifest.json``
  and ``manifest.sig``;
- ``manifest.sig`` is the canonical base64 of an Ed25519 signature of
  ``manifest.json``'s bytes by the key in ``public_key.pem``;
- every listed member (video, public key, LISEZMOI) has the SHA-256 and size
  the manifest gives;
- the zip container itself is byte for byte the one csuhub writes (rebuilt
  from its members with ``csuhub.recording.package``): nothing hides in
  headers, gaps, comments or trailing bytes;
- and the signer is trusted: its fingerprint is one of the anchors
  (``csuhub.recording.trust``). The embedded key alone is never enough: a
  forger ships their own. A package that is consistent but signed by an
  unknown key is *untrusted*, with the signer's fingerprint, not intact.

The answer is a ``Verification`` whose ``status`` maps to the CLI's exit codes:
intact 0, tampered 1 (one problem per member), unreadable 2 (not a zip, not a
csuhub package, the file cannot be read), untrusted 3.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import re
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from csuhub.recording.package import Member, central_directory, local_header
from csuhub.recording.signing import fingerprint, load_public
from csuhub.recording.trust import Anchor, open_regular

FORMAT = "csuhub-evidence/2"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
VIDEO = "video.mp4"
PUBLIC_KEY = "public_key.pem"
README = "LISEZMOI.txt"
#: what an exporter lists, with hashes, in the manifest (which cannot list itself,
#: and the signature which covers it)
LISTED = (VIDEO, PUBLIC_KEY, README)
ORDER = (VIDEO, README, PUBLIC_KEY, MANIFEST, SIGNATURE)
#: read whole into memory, so bounded: anything larger is not a csuhub member
SMALL = {MANIFEST: 16 * 1024 * 1024, SIGNATURE: 1024, PUBLIC_KEY: 4096}
CONTAINER = "zip structure"
PACKAGE = "package"
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
CHUNK = 1024 * 1024


class Status(StrEnum):
    INTACT = "intact"
    TAMPERED = "tampered"
    UNREADABLE = "unreadable"
    UNTRUSTED = "untrusted"


EXIT_CODES = {Status.INTACT: 0, Status.TAMPERED: 1, Status.UNREADABLE: 2, Status.UNTRUSTED: 3}


@dataclass(frozen=True, slots=True)
class Problem:
    member: str
    message: str

    def __str__(self) -> str:
        return f"{self.member}: {self.message}"


@dataclass
class Verification:
    status: Status
    problems: list[Problem] = field(default_factory=list)
    #: fingerprint of the key whose signature of the manifest holds
    signer: str | None = None
    #: which anchor made the signer trusted
    trusted_by: str | None = None
    #: only once its signature holds: unsigned text is not evidence
    manifest: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status is Status.INTACT

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "exit_code": self.exit_code,
            "ok": self.ok,
            "signer": self.signer,
            "trusted_by": self.trusted_by,
            "problems": [{"member": p.member, "message": p.message} for p in self.problems],
            "manifest": self.manifest,
        }


def verify_package(
    source: Path | str | bytes | BinaryIO, anchors: Sequence[Anchor] = ()
) -> Verification:
    """Check a package (a path, its bytes, or a seekable binary file). Never raises."""
    try:
        if isinstance(source, bytes | bytearray):
            return _verify(io.BytesIO(source), anchors)
        if isinstance(source, Path | str):
            try:
                handle = open_regular(source)
            except OSError as err:
                return _unreadable(f"cannot be read: {err.strerror or err}")
            with handle:
                return _verify(handle, anchors)
        return _verify(source, anchors)
    except Exception as err:  # a bug here, never the input's fault: still no traceback
        return _unreadable(f"internal error while verifying: {type(err).__name__}: {err}")


def _unreadable(message: str) -> Verification:
    return Verification(Status.UNREADABLE, [Problem(PACKAGE, printable(message))])


def _verify(fp: BinaryIO, anchors: Sequence[Anchor]) -> Verification:
    try:
        archive = zipfile.ZipFile(fp)
    except Exception as err:  # every way of not being a zip, as zipfile reports it
        return _unreadable(f"not a zip file, so not a csuhub package ({err})")
    with archive:
        return _Check(archive, fp).run(anchors)


class _Check:
    def __init__(self, archive: zipfile.ZipFile, fp: BinaryIO) -> None:
        self.archive = archive
        self.fp = fp
        self.infos = archive.infolist()
        self.counts = Counter(info.orig_filename for info in self.infos)
        self.single = {
            info.orig_filename: info for info in self.infos if self.counts[info.orig_filename] == 1
        }
        self.problems: list[Problem] = []
        self.parsed: dict[str, Any] | None = None

    def problem(self, member: str, message: str) -> None:
        self.problems.append(Problem(_show(member), printable(message)))

    def run(self, anchors: Sequence[Anchor]) -> Verification:
        if MANIFEST not in self.counts and SIGNATURE not in self.counts:
            return _unreadable("not a csuhub package: a zip without manifest.json or manifest.sig")
        for name, count in self.counts.items():
            if count > 1:
                self.problem(name, f"appears {count} times in the zip: a member was added")
        manifest_bytes = self._small(MANIFEST)
        signature = self._small(SIGNATURE)
        pem = self._small(PUBLIC_KEY)
        key: Ed25519PublicKey | None = None
        if pem is not None:
            try:
                key = load_public(pem)
            except ValueError:
                self.problem(PUBLIC_KEY, "not an Ed25519 public key in PEM")
        signer = fingerprint(key) if key is not None else None
        signed = False
        if manifest_bytes is not None and signature is not None and key is not None:
            signed = self._signature_holds(key, manifest_bytes, signature)
        listed = self._manifest(manifest_bytes, signer)
        self._membership(listed)
        if listed is not None:
            for name, (sha, size) in listed.items():
                self._hash(name, sha, size)
        layout = self._layout()
        if layout:
            self.problem(
                CONTAINER,
                f"not the zip csuhub wrote ({layout}): rewritten by another tool or altered",
            )
        manifest = self.parsed if signed else None
        if self.problems or not signed:
            return Verification(Status.TAMPERED, self.problems, signer if signed else None)
        for anchor in anchors:
            if anchor.fingerprint == signer:
                return Verification(Status.INTACT, [], signer, anchor.source, manifest)
        return Verification(Status.UNTRUSTED, [], signer, None, manifest)

    # -- members ----------------------------------------------------------------

    def _small(self, name: str) -> bytes | None:
        """A small member's bytes (missing or duplicated ones are reported elsewhere)."""
        info = self.single.get(name)
        if info is None or not self._stored(info):
            return None
        cap = SMALL[name]
        if info.file_size > cap:
            self.problem(name, f"{info.file_size} bytes: too large for a {name}")
            return None
        try:
            with self.archive.open(info) as handle:
                data = handle.read(cap + 1)
        except Exception as err:
            self.problem(name, _read_error(err))
            return None
        if len(data) > cap:
            self.problem(name, "larger than its zip header says")
            return None
        return data

    def _stored(self, info: zipfile.ZipInfo) -> bool:
        if info.compress_type != zipfile.ZIP_STORED:
            # and not read: a compressed member could expand without bound
            self.problem(info.orig_filename, "compressed, where csuhub stores members as they are")
            return False
        return True

    def _signature_holds(self, key: Ed25519PublicKey, manifest: bytes, text: bytes) -> bool:
        try:
            signature = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            signature = b""
        # canonical only: base64 has spare bits a flip could change without changing
        # the decoded signature, and the package must be exactly what was signed
        if len(signature) != 64 or base64.b64encode(signature) != text:
            self.problem(SIGNATURE, "not the base64 of an Ed25519 signature")
            return False
        try:
            key.verify(signature, manifest)
        except InvalidSignature:
            self.problem(
                MANIFEST,
                "the signature does not match (manifest.json or manifest.sig altered, or "
                "public_key.pem replaced)",
            )
            return False
        return True

    def _manifest(
        self, data: bytes | None, signer: str | None
    ) -> dict[str, tuple[str, int]] | None:
        """The members the manifest lists, with their SHA-256 and size; None if unusable."""
        if data is None:
            return None
        try:
            parsed = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
            # printable as JSON again (no lone surrogates), as the CLI's --json does
            json.dumps(parsed, ensure_ascii=False).encode("utf-8")
        except (UnicodeError, ValueError, RecursionError):
            self.problem(MANIFEST, "not valid JSON")
            return None
        if not isinstance(parsed, dict):
            self.problem(MANIFEST, f"a JSON {type(parsed).__name__}, not a csuhub manifest")
            return None
        self.parsed = parsed
        found = parsed.get("format")
        if found != FORMAT:
            self.problem(
                MANIFEST,
                f"format {_show(str(found))} is not {FORMAT}, the format this verifier checks",
            )
            return None
        members = parsed.get("members")
        if not isinstance(members, dict):
            self.problem(MANIFEST, "has no 'members' object with their hashes")
            return None
        listed: dict[str, tuple[str, int]] = {}
        for name, entry in members.items():
            if name in (MANIFEST, SIGNATURE):
                self.problem(MANIFEST, f"lists {name}, which the signature covers instead")
                continue
            sha = entry.get("sha256") if isinstance(entry, dict) else None
            size = entry.get("size") if isinstance(entry, dict) else None
            if not (isinstance(sha, str) and SHA256_HEX.fullmatch(sha)) or not (
                type(size) is int and size >= 0
            ):
                self.problem(MANIFEST, f"the entry for {_show(name)} is not a sha256 and a size")
                continue
            listed[name] = (sha, size)
        for required in LISTED:
            if required not in members:
                self.problem(MANIFEST, f"does not list {required}")
        output = parsed.get("output")
        video = listed.get(VIDEO)
        if video is not None and (
            not isinstance(output, dict)
            or output.get("sha256") != video[0]
            or output.get("size") != video[1]
        ):
            self.problem(MANIFEST, "its 'output' does not agree with its entry for video.mp4")
        declared = parsed.get("signer")
        if signer is not None and declared != signer:
            self.problem(PUBLIC_KEY, f"is not the key the manifest names ({_show(str(declared))})")
        return listed

    def _membership(self, listed: dict[str, tuple[str, int]] | None) -> None:
        expected = {MANIFEST, SIGNATURE, *(listed if listed is not None else LISTED)}
        for name in sorted(expected, key=_rank):
            if name not in self.counts:
                self.problem(name, "missing from the package")
        for name in sorted(set(self.counts) - expected, key=_rank):
            self.problem(name, "not listed in the signed manifest: added after signing")

    def _hash(self, name: str, sha: str, size: int) -> None:
        info = self.single.get(name)
        if info is None or not self._stored(info):
            return
        digest = hashlib.sha256()
        length = 0
        try:
            with self.archive.open(info) as handle:
                while chunk := handle.read(CHUNK):
                    digest.update(chunk)
                    length += len(chunk)
        except Exception as err:
            self.problem(name, _read_error(err))
            return
        if length != size:
            self.problem(name, f"{length} bytes where the manifest says {size}: altered")
        elif digest.hexdigest() != sha:
            self.problem(name, "SHA-256 does not match the manifest: altered after signing")

    # -- container --------------------------------------------------------------

    def _layout(self) -> str | None:
        """The first way the container differs from the one csuhub writes, if any."""
        members: list[Member] = []
        offset = 0
        for info in sorted(self.infos, key=lambda i: i.header_offset):
            shown = _show(info.orig_filename)
            if info.header_offset != offset:
                return f"{shown} does not start where the previous member ends"
            try:
                name = info.orig_filename.encode("utf-8")
            except UnicodeEncodeError:
                return f"{shown}: a name csuhub does not write"
            member = Member(name, offset, _dos(info.date_time), info.CRC, info.file_size)
            header = local_header(member)
            self.fp.seek(offset)
            if self.fp.read(len(header)) != header:
                return f"{shown}: its local header differs"
            members.append(member)
            offset += len(header) + info.file_size
        tail = central_directory(members, offset)
        self.fp.seek(offset)
        if self.fp.read(len(tail) + 1) != tail:
            return "its central directory or end records differ"
        return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _dos(date_time: tuple[int, int, int, int, int, int]) -> tuple[int, int]:
    """zipfile's date_time back to the DOS (time, date) words: it kept every bit."""
    year, month, day, hour, minute, second = date_time
    return (hour << 11) | (minute << 5) | (second // 2), ((year - 1980) << 9) | (month << 5) | day


def _read_error(err: Exception) -> str:
    text = str(err)
    if isinstance(err, zipfile.BadZipFile) and "CRC" in text:
        return "its bytes do not match their CRC-32 in the zip: altered"
    if isinstance(err, EOFError):
        return "cut short: the package is truncated"
    return f"cannot be read from the zip ({type(err).__name__}: {text})"


def _rank(name: str) -> tuple[int, str]:
    return (ORDER.index(name) if name in ORDER else len(ORDER), name)


def _show(name: str) -> str:
    """A member name as it can be printed: outside input, so no control characters."""
    shown = name if name.isprintable() and name.strip() == name and name else ascii(name)
    return shown[:200]


def printable(text: str) -> str:
    """Outside text made safe to print: control characters and lone surrogates escaped."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)[:500]
