"""A day of the logbook as the shift hands it over: a printable HTML page, or CSV.

The page is ``logbook.html``, a :class:`string.Template` shipped beside this
module (as the requisition receipt is). Every value is escaped on its way in:
the text placeholders through :func:`html.escape`, the rows built here from
escaped parts only, so an operator's note cannot inject markup. PDF is not
made here: printing the page to PDF is the browser's job, and a PDF writer
that handles every script a note may hold would be a heavy dependency
(docs/logbook.md).

The CSV is RFC 4180 (CRLF rows, the ``csv`` module's quoting) and safe to open
in a spreadsheet: a cell starting with ``=``, ``+``, ``-``, ``@`` (or a tab or
carriage return) gets a leading ``'`` so that it is read as text, never as a
formula (an operator's note is outside input).
"""

from __future__ import annotations

import csv
import html
import io
import time
from functools import cache
from importlib import resources
from string import Template
from typing import Any

from csuhub.logbook.day import clock
from csuhub.logbook.journal import Logbook

FORMATS = ("json", "html", "csv")
CSV_COLUMNS = (
    "seq",
    "time",
    "who",
    "role",
    "action",
    "what",
    "target",
    "outcome",
    "corrects",
    "corrected_by",
    "hash",
)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")

_WORDS = {
    "fr": {
        "title": "Main courante",
        "h_seq": "N°",
        "h_time": "Heure",
        "h_who": "Qui",
        "h_what": "Quoi",
        "h_target": "Objet",
        "h_outcome": "Résultat",
        "tz": "Fuseau horaire : {tz} (heures locales)",
        "count": "{n} entrée(s)",
        "chain": "Dernière entrée n° {seq}, empreinte SHA-256 {hash}",
        "made": "Édité le {now} par {reader}",
        "empty": "Aucune entrée ce jour.",
        "corrected": "corrigée par n° {seq} ({time}, {who}) : {what}",
        "sign_out": "Relève sortante : nom, heure, signature",
        "sign_in": "Relève entrante : nom, heure, signature",
    },
    "en": {
        "title": "Logbook",
        "h_seq": "#",
        "h_time": "Time",
        "h_who": "Who",
        "h_what": "What",
        "h_target": "Target",
        "h_outcome": "Outcome",
        "tz": "Time zone: {tz} (local times)",
        "count": "{n} entries",
        "chain": "Last entry #{seq}, SHA-256 {hash}",
        "made": "Printed {now} by {reader}",
        "empty": "No entry this day.",
        "corrected": "corrected by #{seq} ({time}, {who}): {what}",
        "sign_out": "Outgoing shift: name, time, signature",
        "sign_in": "Incoming shift: name, time, signature",
    },
}


@cache
def _template() -> Template:
    text = resources.files(__package__).joinpath("logbook.html").read_text("utf-8")
    return Template(text)


def _shown_time(line: dict[str, Any], tz: str, two_offsets: bool) -> str:
    moment = clock(line["ts"], tz)
    text = moment.strftime("%H:%M:%S")
    # the day the clocks change, 02:30 happens twice: the offset says which
    return (
        f"{text} ({moment.strftime('%z')[:3]}:{moment.strftime('%z')[3:]})" if two_offsets else text
    )


def _offsets_differ(book: Logbook) -> bool:
    return (
        clock(book.start, book.timezone).utcoffset() != clock(book.end, book.timezone).utcoffset()
    )


def to_html(book: Logbook, *, reader: str, now: float | None = None) -> str:
    """The printable page of the day, for the shift handover."""
    words = _WORDS.get(book.lang, _WORDS["fr"])
    e = html.escape
    two = _offsets_differ(book)
    rows = []
    for line in book.lines:
        outcome = str(line["outcome"])
        rows.append(
            f'<tr class="o-{e(outcome)}"><td class=n>{line["seq"]}</td>'
            f"<td class=t>{e(_shown_time(line, book.timezone, two))}</td>"
            f"<td>{e(str(line['who']))}</td><td class=w>{e(line['what'])}</td>"
            f"<td>{e(str(line['target'] or ''))}</td><td>{e(line['outcome_text'])}</td></tr>"
        )
        for fix in line["corrections"]:
            said = words["corrected"].format(
                seq=fix["seq"], time=fix["time"][11:19], who=fix["who"], what=fix["text"]
            )
            rows.append(
                f'<tr class="fix"><td colspan=3></td><td colspan=3 class=w>→ {e(said)}</td></tr>'
            )
    last = book.lines[-1] if book.lines else None
    moment = time.time() if now is None else now
    text = {
        "lang": book.lang,
        "hub": book.hub,
        "day": book.day.isoformat(),
        "day_label": book.day.strftime("%d/%m/%Y") if book.lang == "fr" else book.day.isoformat(),
        "tz_label": words["tz"].format(tz=book.timezone),
        "count": words["count"].format(n=len(book.lines)),
        "chain": "" if last is None else words["chain"].format(seq=last["seq"], hash=last["hash"]),
        "made": words["made"].format(
            now=clock(moment, book.timezone).isoformat(timespec="seconds"), reader=reader
        ),
        **{k: words[k] for k in ("title", "sign_out", "sign_in")},
        **{k: words[k] for k in words if k.startswith("h_")},
    }
    markup = {
        "rows": "".join(rows),
        "empty": "" if book.lines else f"<p>{e(words['empty'])}</p>",
    }
    return _template().substitute({k: e(v) for k, v in text.items()}, **markup)


def safe_cell(value: Any) -> str:
    """A CSV cell a spreadsheet reads as text: never as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def to_csv(book: Logbook) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for line in book.lines:
        row = {
            **line,
            "corrected_by": " ".join(str(f["seq"]) for f in line["corrections"]),
        }
        writer.writerow([safe_cell(row.get(c)) for c in CSV_COLUMNS])
    return out.getvalue()
