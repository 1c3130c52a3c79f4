"""The audit chain: how an entry is hashed, and how a run of entries is checked.

Pure functions, no SQL: the store writes with :func:`entry_hash` and
``csuhub audit verify`` walks rows through :func:`verify_rows`. The encoding
is the one docs/audit.md specifies for the ethics committee to re-implement:
the UTF-8 bytes of a compact JSON array (no whitespace, non-ASCII kept as is)
of the fields in :data:`HASHED` order, ``hash`` = lowercase hex SHA-256 of
those bytes. An array, not an object with sorted keys, because it is as easy
to reproduce and half the work to encode (verify must stay close to a bare
SHA-256 loop, issue 12's performance target).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: the hashed fields, in the order they are encoded
HASHED = (
    "id",
    "ts",
    "actor",
    "role",
    "via",
    "source",
    "action",
    "target",
    "details",
    "reason",
    "outcome",
    "ref",
    "class",
    "prev_hash",
)
#: what ``verify_rows`` expects per row: the hashed fields, then the stored hash
COLUMNS = (*HASHED, "hash")
#: the ``prev_hash`` of the first entry
GENESIS = "0" * 64

_sha256 = hashlib.sha256


def _make_encode() -> Callable[[Sequence[Any]], str]:
    """The compact encoder. json's C encoder built once, not per call as
    ``JSONEncoder.encode`` does: a quarter of verify's time per entry."""
    slow = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - an interpreter without json's C speedups
        return slow
    fast = make(None, None, json.encoder.encode_basestring, None, ":", ",", False, False, False)

    def encode(values: Sequence[Any]) -> str:
        return "".join(fast(values, 0))

    return encode


_encode = _make_encode()


def canonical(values: Sequence[Any]) -> bytes:
    """The hashed bytes of one entry: ``values`` in :data:`HASHED` order."""
    return _encode(list(values)).encode("utf-8")


def entry_hash(values: Sequence[Any]) -> str:
    return _sha256(canonical(values)).hexdigest()


def hash_of(entry: Mapping[str, Any]) -> str:
    """The hash an entry given as a mapping (an export's row) must carry."""
    return entry_hash([entry[name] for name in HASHED])


def details_text(params: Mapping[str, Any]) -> str:
    """The stored ``details`` column: compact JSON with sorted keys. The hash covers
    this text as a string, so a verifier never has to re-encode the parameters."""
    return json.dumps(dict(params), sort_keys=True, separators=(",", ":"), default=str)


@dataclass
class Break:
    """The first entry where the chain fails, and how."""

    id: int | None
    kind: str  # content, link, unchained, anchor, truncated, missing
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "message": self.message}


@dataclass
class VerifyReport:
    entries: int = 0
    head_id: int | None = None
    head_hash: str | None = None
    anchors_checked: int = 0
    broken: Break | None = None
    #: entries written before the chain existed and not chained yet
    unchained_legacy: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.broken is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head": {"id": self.head_id, "hash": self.head_hash},
            "anchors_checked": self.anchors_checked,
            "broken": None if self.broken is None else self.broken.as_dict(),
            "unchained_legacy": self.unchained_legacy,
            "notes": self.notes,
        }


Progress = Callable[[int], None]


def verify_rows(
    rows: Iterable[Sequence[Any]],
    anchors: Mapping[int, str] | None = None,
    progress: Progress | None = None,
    every: int = 100_000,
) -> VerifyReport:
    """Walk ``rows`` (tuples in :data:`COLUMNS` order, by id) and stop at the first
    break: an edited entry no longer matches its hash (``content``); a deleted,
    inserted or reordered one breaks the link of the entry after it (``link``); a
    tail cut after an anchor misses the anchored entry (``truncated``)."""
    report = VerifyReport()
    pending = dict(anchors or {})
    expected = GENESIS
    count = 0
    sha = _sha256
    encode = _encode
    last_id: int | None = None
    for row in rows:
        rid = row[0]
        prev = row[13]
        stored = row[14]
        if stored is None:
            report.broken = Break(rid, "unchained", f"entry {rid} carries no hash")
            break
        if prev != expected:
            report.broken = Break(
                rid,
                "link",
                f"entry {rid} does not follow the entry before it (one was deleted, "
                "inserted or moved before it)",
            )
            break
        if sha(encode(row[:14]).encode("utf-8")).hexdigest() != stored:
            report.broken = Break(rid, "content", f"entry {rid} was changed after it was written")
            break
        if pending:
            anchored = pending.pop(rid, None)
            if anchored is not None:
                report.anchors_checked += 1
                if anchored != stored:
                    report.broken = Break(
                        rid, "anchor", f"entry {rid} is not the entry its anchor recorded"
                    )
                    break
        expected = stored
        last_id = rid
        count += 1
        if progress is not None and count % every == 0:
            progress(count)
    report.entries = count
    report.head_id = last_id
    report.head_hash = expected if last_id is not None else None
    if report.broken is None and pending:
        first = min(pending)
        cut = last_id is None or first > last_id
        report.broken = Break(
            first,
            "truncated" if cut else "missing",
            f"anchored entry {first} is missing: entries were removed "
            f"(the chain ends at {last_id})",
        )
    return report
