"""Trust anchors for ``csuhub verify``: the keys whose signature makes a package *intact*.

A package's signature only proves that whoever holds the key in its
``public_key.pem`` signed it; a forger ships their own key. So the verifier
never trusts the embedded key by itself: the signer's fingerprint must be
one of the anchors given on the command line (``--key``, ``--fingerprint``,
``--data``: the hub's own key) or, when none is given, one of the local
trust store's (``csuhub keys trust|list|untrust``).

The store is a small JSON file, per user: ``$CSUHUB_TRUST_STORE``, else
``$XDG_CONFIG_HOME/csuhub/trusted_keys.json`` (``~/.config/...``). It is
written atomically; an unreadable store is an error, never an empty store
(failing closed would still be safe, but silently ignoring the user's anchors
would be confusing).
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from csuhub.recording.signing import fingerprint, load_private, load_public, parse_fingerprint

MAX_KEY_FILE = 64 * 1024
MAX_STORE_FILE = 1024 * 1024


def open_regular(path: Path | str) -> BinaryIO:
    """Open an outside file (a package, a key, the trust store) only if it is a regular file.

    ``open()`` on a FIFO waits for a writer for ever, and ``/dev/zero`` or
    ``/dev/urandom`` never end (zipfile reads them to the end looking for its
    records): a verifier handed one must answer "unreadable", not hang or fill
    memory. So the file is opened without blocking and refused, with what it
    is instead, unless it is a regular file. Raises ``OSError`` with a
    ``strerror`` a person can read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(0, f"{_kind(mode)}, not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"


class TrustError(Exception):
    """An anchor that cannot be used (missing key file, bad fingerprint, bad store)."""


@dataclass(frozen=True, slots=True)
class Anchor:
    """A trusted signer; ``source`` says why it is trusted, for the report."""

    fingerprint: str
    source: str


def store_path() -> Path:
    explicit = os.environ.get("CSUHUB_TRUST_STORE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "csuhub" / "trusted_keys.json"


def key_file_anchor(path: Path) -> Anchor:
    """``--key FILE``: an Ed25519 public key in PEM (``csuhub keys public``)."""
    try:
        with open_regular(path) as handle:
            pem = handle.read(MAX_KEY_FILE + 1)
    except FileNotFoundError:
        raise TrustError(f"{path}: no such key file") from None
    except OSError as err:
        raise TrustError(f"{path}: cannot read: {err.strerror}") from None
    if len(pem) > MAX_KEY_FILE:
        raise TrustError(f"{path}: too large for a public key")
    try:
        key = load_public(pem)
    except ValueError as err:
        raise TrustError(f"{path}: {err}") from None
    return Anchor(fingerprint(key), f"--key {path}")


def fingerprint_anchor(text: str) -> Anchor:
    try:
        return Anchor(parse_fingerprint(text), "--fingerprint")
    except ValueError as err:
        raise TrustError(str(err)) from None


def hub_anchor(data_dir: Path) -> Anchor:
    """``--data DIR``: the key of the hub whose data directory this is."""
    try:
        key = load_private(data_dir)
    except (OSError, ValueError) as err:
        raise TrustError(f"{data_dir}: the hub's signing key cannot be read ({err})") from None
    if key is None:
        raise TrustError(f"{data_dir}: no signing key there (a hub makes it when it first starts)")
    return Anchor(fingerprint(key), f"the hub's own key ({data_dir})")


def resolve(spec: str) -> tuple[str, str]:
    """``keys trust|untrust`` take a key file or a fingerprint: (fingerprint, label)."""
    path = Path(spec)
    if path.exists():
        anchor = key_file_anchor(path)
        return anchor.fingerprint, path.name
    if spec.strip().startswith("SHA256:"):
        return fingerprint_anchor(spec).fingerprint, ""
    raise TrustError(f"{spec}: neither a key file nor a SHA256: fingerprint")


class TrustStore:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or store_path()

    def entries(self) -> list[dict[str, Any]]:
        try:
            with open_regular(self.path) as handle:
                raw = handle.read(MAX_STORE_FILE + 1)
            if len(raw) > MAX_STORE_FILE:
                raise OSError(0, f"larger than {MAX_STORE_FILE} bytes")
            text = raw.decode("utf-8")
        except FileNotFoundError:
            return []
        except OSError as err:
            raise TrustError(f"trust store {self.path} cannot be read: {err.strerror}") from None
        except UnicodeDecodeError as err:
            raise TrustError(f"trust store {self.path} cannot be read: {err}") from None
        try:
            data = json.loads(text)
            entries = data["keys"]
            if not isinstance(entries, list):
                raise TypeError
            for entry in entries:
                if not isinstance(entry, dict) or not isinstance(entry.get("label", ""), str):
                    raise TypeError
                if parse_fingerprint(str(entry["fingerprint"])) != entry["fingerprint"]:
                    raise ValueError
        except (ValueError, TypeError, KeyError, RecursionError):
            raise TrustError(
                f"trust store {self.path} is damaged (fix or remove it; "
                "it only holds fingerprints you added with csuhub keys trust)"
            ) from None
        return entries

    def anchors(self) -> list[Anchor]:
        return [
            Anchor(e["fingerprint"], f"trust store ({e.get('label') or 'no label'})")
            for e in self.entries()
        ]

    def add(self, fp: str, label: str) -> bool:
        """False if it was already trusted (its label is then updated)."""
        entries = self.entries()
        for entry in entries:
            if entry["fingerprint"] == fp:
                entry["label"] = label or entry.get("label", "")
                self._save(entries)
                return False
        entries.append({"fingerprint": fp, "label": label, "added": time.time()})
        self._save(entries)
        return True

    def remove(self, fp: str) -> bool:
        entries = self.entries()
        kept = [e for e in entries if e["fingerprint"] != fp]
        if len(kept) == len(entries):
            return False
        self._save(kept)
        return True

    def _save(self, entries: list[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".trusted_keys-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"keys": entries}, handle, indent=2)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
