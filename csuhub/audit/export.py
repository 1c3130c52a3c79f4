"""The audit export for the ethics committee: CSV or JSON, with the hash columns.

Every hashed field is exported as stored, with ``prev_hash`` and ``hash``, so
the committee can recompute each entry's hash and the links between entries
of the export without the hub (docs/audit.md shows how). The JSON export is
exact; in the CSV an empty cell is a null (the hub stores no empty strings in
the nullable fields), ``ts`` is the shortest text that reads back as the same
double, and ``time_utc`` is a readable copy that no hash covers.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from csuhub.audit.chain import COLUMNS

#: the CSV's columns: the stored ones, then a readable time
CSV_COLUMNS = (*COLUMNS, "time_utc")
_INTS = ("id", "ref")
FORMATS = ("csv", "json")


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def write_csv(entries: Iterable[dict[str, Any]], out: TextIO) -> int:
    # CRLF rows (RFC 4180): with "\n" alone a value holding a bare "\r" goes unquoted
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for entry in entries:
        row = ["" if entry[c] is None else entry[c] for c in COLUMNS]
        row[1] = repr(float(entry["ts"]))
        writer.writerow([*row, _utc(entry["ts"])])
        count += 1
    return count


def read_csv(text: str) -> list[dict[str, Any]]:
    """Entries back from :func:`write_csv`, typed as the hash needs them. ``text``
    as written: a file read without ``newline=""`` has had a carriage return
    inside a value turned into a line feed, and that entry no longer verifies."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
        raise ValueError(f"not an audit export: columns must be {', '.join(CSV_COLUMNS)}")
    entries = []
    for row in reader:
        entry: dict[str, Any] = {c: (row[c] if row[c] != "" else None) for c in COLUMNS}
        for name in _INTS:
            if entry[name] is not None:
                entry[name] = int(entry[name])
        entry["ts"] = float(row["ts"])
        entries.append(entry)
    return entries


def write_json(entries: Iterable[dict[str, Any]], out: TextIO, start: float, end: float) -> int:
    """One JSON document, written as the entries come (a year of audit fits in no
    memory budget as a list)."""
    head = {"from": start, "to": end, "from_utc": _utc(start), "to_utc": _utc(end)}
    out.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "entries": [')
    count = 0
    for entry in entries:
        out.write(("," if count else "") + "\n" + json.dumps(entry, ensure_ascii=False))
        count += 1
    out.write(f'\n], "count": {count}}}\n')
    return count


def read_json(text: str) -> list[dict[str, Any]]:
    data = json.loads(text)
    entries = data["entries"] if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError("not an audit export: no entries")
    return entries
