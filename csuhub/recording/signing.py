"""The hub's Ed25519 key for signing evidence packages, and its fingerprint.

Generated on first start under ``<data_dir>/keys/`` (private key 0600). Every
package carries the public key, so its signature can be checked offline; but
a key that travels inside the package proves nothing about who made it (a
forger ships their own). What ties a package to *this* hub is the
fingerprint, which reaches the police and the court by another channel: the
requisition receipt, the package's LISEZMOI, ``csuhub keys show``.

The fingerprint is ``SHA256:`` followed by the SHA-256 of the 32-byte raw
Ed25519 public key in unpadded base64 (43 characters), the form OpenSSH made
familiar (OpenSSH hashes its own key encoding, so the values differ). Anyone
can recompute it without csuhub::

    openssl pkey -pubin -in hub.pub -outform DER | tail -c 32 \\
        | openssl dgst -sha256 -binary | base64 | tr -d =
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

KEY_NAME = "export_ed25519.pem"
FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")


def key_path(data_dir: Path) -> Path:
    return data_dir / "keys" / KEY_NAME


def load_private(data_dir: Path) -> Ed25519PrivateKey | None:
    """The hub's key if it exists: read-only commands must not create one."""
    path = key_path(data_dir)
    if not path.exists():
        return None
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def load_or_create(data_dir: Path) -> Ed25519PrivateKey:
    existing = load_private(data_dir)
    if existing is not None:
        return existing
    path = key_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return key


def _public(key: Ed25519PrivateKey | Ed25519PublicKey) -> Ed25519PublicKey:
    return key.public_key() if isinstance(key, Ed25519PrivateKey) else key


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    return _public(key).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public(pem: bytes) -> Ed25519PublicKey:
    """Raises ``ValueError`` for anything but one Ed25519 public key in PEM."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as err:
        raise ValueError(f"not a PEM public key ({err})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def fingerprint(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    raw = _public(key).public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    digest = base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def parse_fingerprint(text: str) -> str:
    """A fingerprint as typed or pasted (padding tolerated); ``ValueError`` otherwise."""
    value = text.strip().rstrip("=")
    if not FINGERPRINT.fullmatch(value):
        raise ValueError(
            f"{text.strip()[:80]!r} is not a key fingerprint (SHA256: and 43 base64 characters)"
        )
    return value
