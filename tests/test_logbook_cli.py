"""``csuhub logbook show|note|export`` on a real data directory, and the
property tests of the logbook's parsers (query, note body, day, CSV cells)."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csuhub.cli import main
from csuhub.logbook.day import DayError, parse_day
from csuhub.logbook.journal import MAX_NOTE, NoteError, parse_note
from csuhub.logbook.masking import mask_number, mask_params
from csuhub.logbook.render import safe_cell
from csuhub.logbook.sentences import SENTENCES, describe
from csuhub.store import DATABASE, Store
from csuhub.store.audit import append_event
from csuhub.web.logbook import QueryError, parse_query

FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _data(tmp_path: Path) -> Path:
    """A data directory with a database, a start and a call with a caller number."""
    data = tmp_path / "data"
    data.mkdir()

    async def build() -> None:
        store = Store(data / DATABASE)
        await store.open()
        try:
            await store.call(_write, "hub", "hub.start", "csu-lille", {"version": "0.1.0"})
            params = {"line": "sip", "call_id": "k", "state": "ringing", "caller": "+33612345678"}
            await store.call(_write, "hub", "call.received", "call:sip/k", params)
        finally:
            await store.close()

    asyncio.run(build())
    return data


def _write(conn: sqlite3.Connection, actor: str, action: str, target: str, params: Any) -> int:
    return append_event(conn, actor, action, target, params=params)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_note_show_correct_export_and_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _data(tmp_path)
    d = ("--data", str(data))
    code, out, _ = _run(capsys, "logbook", "note", "Ronde Wazemmes", "--user", "nina", *d, "--json")
    assert code == 0
    seq = json.loads(out)["seq"]
    code, out, _ = _run(capsys, "logbook", "note", "Ronde Fives", "--corrects", str(seq), *d)
    assert code == 0 and "correction written" in out
    code, out, err = _run(capsys, "logbook", "note", "x", "--corrects", "1000", *d)
    assert code == 2 and "no logbook entry 1000" in err
    code, out, err = _run(capsys, "logbook", "note", "   ", *d)
    assert code == 2 and "empty" in err

    code, out, _ = _run(capsys, "logbook", "show", *d)
    assert code == 0
    assert "Note : Ronde Wazemmes" in out and "corrected by" in out and "Ronde Fives" in out
    assert "csu-lille" in out and "Europe/Paris" in out
    assert "612345678" not in out  # masked at the console too
    code, out, _ = _run(capsys, "logbook", "show", "--show-callers", "--json", *d)
    book = json.loads(out)
    call = next(line for line in book["lines"] if line["action"] == "call.received")
    assert call["params"]["caller"] == "+33612345678"
    note = next(line for line in book["lines"] if line["seq"] == seq)
    assert note["who"] == "nina" and note["corrections"][0]["text"] == "Ronde Fives"

    day = book["day"]
    page = tmp_path / "handover.html"
    code, _, err = _run(
        capsys, "logbook", "export", "--day", day, "--format", "html", "-o", str(page), *d
    )
    assert code == 0 and page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    code, _, err = _run(
        capsys, "logbook", "export", "--day", day, "--format", "html", "-o", str(page), *d
    )
    assert code == 2 and "--force" in err
    code, _, _ = _run(
        capsys, "logbook", "export", "--day", day, "--format", "csv", "-o", str(page), "--force", *d
    )
    assert code == 0 and page.read_text(encoding="utf-8").startswith("seq,time,who")
    for target in (tmp_path, tmp_path / "missing" / "x.csv"):
        code, _, err = _run(
            capsys, "logbook", "export", "--day", day, "--format", "csv", "-o", str(target), *d
        )
        assert code == 2, target
    code, out, _ = _run(capsys, "logbook", "export", "--day", day, "--format", "json", *d)
    assert json.loads(out)["count"] == len(book["lines"])
    code, out, _ = _run(capsys, "logbook", "export", "--day", day, "--format", "csv", *d)
    assert "612345678" not in out
    code, _, err = _run(capsys, "logbook", "show", "--day", "2026-13-01", *d)
    assert code == 2 and "--day" in err
    code, _, err = _run(capsys, "logbook", "show", "--data", str(tmp_path / "nothing"))
    assert code == 2 and "no hub data" in err


def test_audit_verify_from_the_command_line_with_and_after_tampering(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _data(tmp_path)
    d = ("--data", str(data))
    code, out, _ = _run(capsys, "logbook", "note", "Patrouille", *d, "--json")
    assert code == 0
    seq = json.loads(out)["seq"]
    assert _run(capsys, "audit", "verify", *d)[0] == 0
    conn = sqlite3.connect(data / DATABASE)
    conn.execute("DROP TRIGGER audit_log_no_update")
    conn.execute("UPDATE audit_log SET actor='someone-else' WHERE id=?", (seq,))
    conn.commit()
    conn.close()
    code, out, _ = _run(capsys, "audit", "verify", *d, "--json")
    assert code == 1
    broken = json.loads(out)["broken"]
    assert (broken["id"], broken["kind"]) == (seq, "content")


# -- properties ---------------------------------------------------------------------

KEYS = st.sampled_from(["day", "format", "lang", "days", "", "Day", "format\x00"])
VALUES = st.one_of(
    st.text(max_size=20),
    st.dates(min_value=dt.date(1, 1, 1)).map(dt.date.isoformat),
    st.sampled_from(["json", "html", "csv", "fr", "en", "pdf", "2026-10-25", "2026-02-30"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(KEYS, VALUES), max_size=4))
def test_the_query_parser_accepts_exactly_what_it_documents(pairs: list[tuple[str, str]]) -> None:
    try:
        query = parse_query(pairs, "Europe/Paris", now=1_800_000_000.0)
    except QueryError as err:
        assert str(err)
        return
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)) and set(keys) <= {"day", "format", "lang"}
    found = dict(pairs)
    assert query.format == found.get("format", "json") and query.lang == found.get("lang", "fr")
    if "day" in found:
        assert query.day.isoformat() == found["day"]


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=dt.date(1970, 1, 1), max_value=dt.date(9998, 12, 31)))
def test_every_day_reads_back(day: dt.date) -> None:
    assert parse_day(day.isoformat()) == day


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=14))
def test_a_day_is_parsed_or_refused_clearly(text: str) -> None:
    try:
        day = parse_day(text)
    except DayError as err:
        assert str(err)
        return
    assert day.isoformat() == text


BODIES = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(
        st.sampled_from(["text", "corrects", "extra"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(min_value=-(2**70), max_value=2**70),
            st.floats(allow_nan=True),
            st.text(max_size=50),
            st.text(min_size=MAX_NOTE - 2, max_size=MAX_NOTE + 2, alphabet="ab \n"),
        ),
        max_size=3,
    ),
)


@settings(max_examples=400, deadline=None)
@given(BODIES)
def test_the_note_parser_accepts_exactly_what_it_documents(body: Any) -> None:
    try:
        text, corrects = parse_note(body)
    except NoteError as err:
        assert str(err)
        return
    assert isinstance(body, dict) and set(body) <= {"text", "corrects"}
    assert text == body["text"].replace("\r\n", "\n").strip() and 1 <= len(text) <= MAX_NOTE
    assert not any(ord(c) < 32 and c not in "\n\t" for c in text)
    raw = body.get("corrects")
    assert corrects == raw and (raw is None or (type(raw) is int and raw >= 1))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=12), min_size=1, max_size=5))
def test_a_csv_cell_is_text_to_a_spreadsheet_and_reads_back(cells: list[str]) -> None:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([safe_cell(c) for c in cells])
    (row,) = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    for original, cell in zip(cells, row, strict=True):
        assert not cell.startswith(FORMULA)
        assert cell == ("'" + original if original.startswith(FORMULA) else original)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="+0123456789 .-()", min_size=1, max_size=20))
def test_a_masked_number_keeps_at_most_five_digits(number: str) -> None:
    masked = mask_number(number)
    digits = [c for c in number if c.isdigit()]
    assert len(masked) == len(number)
    # the incidents API's rule: a short code or extension (under eight) masked whole
    assert sum(c.isdigit() for c in masked) <= (5 if len(digits) >= 8 else 0)
    hidden = mask_params({"caller": number, "x": {"phone": number, "n": [number]}})
    assert hidden["caller"] == masked and hidden["x"]["phone"] == masked
    assert hidden["x"]["n"] == [number]  # a key that names no number is left as is


SAFE_TEXT = st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=30)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(SENTENCES)),
    st.dictionaries(SAFE_TEXT.map(lambda t: t[:8]), st.one_of(st.none(), st.integers(), SAFE_TEXT)),
    st.sampled_from(["fr", "en"]),
)
def test_every_sentence_is_made_whatever_the_parameters(
    action: str, params: dict[str, Any], lang: str
) -> None:
    said = describe(action, params, lang, extra={"target": "cam-a", "reason": None})
    assert said and "{" not in said and "}" not in said


def test_an_empty_day_exports_its_header_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _data(tmp_path)
    out = tmp_path / "day.csv"
    argv = ["logbook", "export", "--day", "2026-01-01", "--format", "csv", "-o", str(out)]
    assert main([*argv, "--data", str(data)]) == 0
    capsys.readouterr()
    assert (
        out.read_bytes()
        == b"seq,time,who,role,action,what,target,outcome,corrects,corrected_by,hash\r\n"
    )
