"""The logbook (main courante) over a real hub: notes and corrections, what a day
holds (Europe/Paris days, DST days included), caller numbers masked, camera
lines limited to the reader's scope, the printed page escaped, the CSV safe in
a spreadsheet, the chain verified with logbook entries and broken by one
edited in the SQLite file, and who may read and write it."""

from __future__ import annotations

import csv
import datetime as dt
import io
import sqlite3
import time
from typing import Any

import aiohttp
import pytest

from csuhub.logbook.day import clock, day_bounds, parse_day
from csuhub.logbook.journal import read_day
from csuhub.logbook.render import to_html
from csuhub.security.context import acting
from csuhub.security.tokens import SERVICE_PREFIX, hash_secret, new_secret
from csuhub.store import DATABASE
from csuhub.store.audit import append_event
from csuhub.testing import api_token

PARIS = "Europe/Paris"


def _paris(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


def _at(
    conn: sqlite3.Connection, actor: str, action: str, target: Any, ts: float, params: Any
) -> int:
    return append_event(conn, actor, action, target, params=params, ts=ts)


async def _write_at(
    hub: Any, action: str, ts: float, target: str | None = None, **params: Any
) -> int:
    return int(await hub.store.call(_at, "hub", action, target, ts, params))


async def _scoped_token(hub: Any, role: str, scope: list[str]) -> str:
    secret = new_secret()
    name = f"scoped-{role}-{secret[-6:]}"
    await hub.store.users.add(
        SERVICE_PREFIX + name,
        kind="service",
        roles=[role],
        scope=scope,
        password_hash=None,
        now=time.time(),
    )
    await hub.store.create_token(name, role, hash_secret(secret), SERVICE_PREFIX + name)
    return secret


class Api:
    def __init__(self, hub: Any, http: aiohttp.ClientSession) -> None:
        self.hub = hub
        self.http = http

    async def get(self, token: str, **query: str) -> tuple[int, Any, aiohttp.ClientResponse]:
        async with self.http.get(
            self.hub.web.url + "/api/logbook",
            params=query,
            headers={"Authorization": f"Bearer {token}"},
        ) as resp:
            body: Any = (
                await resp.json() if resp.content_type == "application/json" else await resp.text()
            )
            return resp.status, body, resp

    async def note(self, token: str, body: Any) -> tuple[int, Any]:
        async with self.http.post(
            self.hub.web.url + "/api/logbook/notes",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        ) as resp:
            return resp.status, await resp.json()


def test_a_day_is_midnight_to_midnight_in_paris_dst_days_included() -> None:
    spring = day_bounds(parse_day("2026-03-29"), PARIS)
    autumn = day_bounds(parse_day("2026-10-25"), PARIS)
    plain = day_bounds(parse_day("2026-06-01"), PARIS)
    assert spring[1] - spring[0] == 23 * 3600
    assert autumn[1] - autumn[0] == 25 * 3600
    assert plain[1] - plain[0] == 24 * 3600
    assert spring[0] == _paris("2026-03-29T00:00:00+01:00")
    assert autumn[0] == _paris("2026-10-25T00:00:00+02:00")
    assert autumn[1] == _paris("2026-10-26T00:00:00+01:00")


async def test_notes_corrections_and_the_day_they_belong_to(hub_factory: Any) -> None:
    async with hub_factory(web=True) as hub:
        operator = await api_token(hub, "operator", name="op1")
        async with aiohttp.ClientSession() as http:
            api = Api(hub, http)
            status, note = await api.note(operator, {"text": "  Ronde place Rihour\r\nRAS  "})
            assert status == 201, note
            assert note["action"] == "logbook.note" and note["who"] == "op1"
            assert note["params"]["text"] == "Ronde place Rihour\nRAS"
            status, fix = await api.note(
                operator, {"text": "Place du Théâtre", "corrects": note["seq"]}
            )
            assert status == 201 and fix["corrects"] == note["seq"]
            assert fix["target"] == f"logbook:{note['seq']}"
            # never edited: the note is as written, shown with its correction
            status, day, _ = await api.get(operator)
            assert status == 200
            lines = {line["seq"]: line for line in day["lines"]}
            assert lines[note["seq"]]["params"]["text"] == "Ronde place Rihour\nRAS"
            assert [c["seq"] for c in lines[note["seq"]]["corrections"]] == [fix["seq"]]
            assert lines[note["seq"]]["corrections"][0]["text"] == "Place du Théâtre"
            assert lines[fix["seq"]]["corrects"] == note["seq"]
            assert day["timezone"] == PARIS and day["hub"] == "test-hub"
            assert "hub.start" in {line["action"] for line in day["lines"]}
            # reading is no line, and is not audited
            before = (await hub.store.audit_trail.head())[0]
            await api.get(operator, format="html")
            await api.get(operator, format="csv")
            assert (await hub.store.audit_trail.head())[0] == before
            # refusals: nothing to correct, not a logbook line, bad bodies
            login = await hub.store.audit("someone", "user.add", "x")
            for body, needle in (
                ({"text": "x", "corrects": 10**9}, "no logbook entry"),
                ({"text": "x", "corrects": login}, "no logbook entry"),
                ({"text": "x", "corrects": True}, "corrects"),
                ({"text": "x", "corrects": "3"}, "corrects"),
                ({"text": "   "}, "empty"),
                ({"text": "a\x00b"}, "control"),
                ({"text": "x" * 4001}, "4000"),
                ({"text": "x", "by": "me"}, "unknown field"),
                ({}, "text"),
            ):
                status, answer = await api.note(operator, body)
                assert status == 400 and needle in answer["error"], (body, answer)
            # a refused note is audited (refused) but is no line of the logbook
            _, again, _ = await api.get(operator)
            assert len(again["lines"]) == len(day["lines"])


async def test_what_a_day_holds_in_europe_paris_across_the_autumn_change(hub_factory: Any) -> None:
    async with hub_factory(web=True) as hub:
        token = await api_token(hub, "operator")
        inside = [
            ("2026-10-25T00:00:00+02:00", "first"),
            ("2026-10-25T02:30:00+02:00", "first 02:30"),
            ("2026-10-25T02:30:00+01:00", "second 02:30"),
            ("2026-10-25T23:59:59+01:00", "last"),
        ]
        outside = [
            ("2026-10-24T23:59:59+02:00", "day before"),
            ("2026-10-26T00:00:00+01:00", "day after"),
        ]
        for when, text in [*outside, *inside]:
            await _write_at(hub, "logbook.note", _paris(when), text=text)
        await _write_at(hub, "recording.view", _paris("2026-10-25T12:00:00+01:00"), "cam-x")
        async with aiohttp.ClientSession() as http:
            api = Api(hub, http)
            status, day, _ = await api.get(token, day="2026-10-25", lang="en")
            assert status == 200
            assert [line["params"]["text"] for line in day["lines"]] == [t for _, t in inside]
            assert day["to"] - day["from"] == 25 * 3600
            assert [line["time"][11:] for line in day["lines"]][1:3] == [
                "02:30:00+02:00",
                "02:30:00+01:00",
            ]
            assert day["lines"][0]["what"] == "Note: first"
            status, page, _ = await api.get(token, day="2026-10-25", format="html")
            # the two 02:30 are told apart on the printed page by their offset
            assert "02:30:00 (+02:00)" in page and "02:30:00 (+01:00)" in page
            assert "Europe/Paris" in page and "test-hub" in page
            _, before, _ = await api.get(token, day="2026-10-24")
            assert [line["params"]["text"] for line in before["lines"]] == ["day before"]
            _, spring, _ = await api.get(token, day="2026-03-29")
            assert spring["to"] - spring["from"] == 23 * 3600
            for bad in (
                "2026-02-30",
                "2026-1-05",
                "today",
                "\uff12\uff10\uff12\uff16-01-01",
                "0001-01-01",
            ):
                status, answer, _ = await api.get(token, day=bad)
                assert status == 400 and "day" in answer["error"], bad
            status, answer, _ = await api.get(token, format="pdf")
            assert status == 400 and "format" in answer["error"]
            status, answer, _ = await api.get(token, when="x")
            assert status == 400 and "unknown parameter" in answer["error"]


async def test_caller_numbers_are_masked_unless_the_reader_may_see_them(hub_factory: Any) -> None:
    async with hub_factory(web=True) as hub:
        number = "+33612345678"
        await hub.store.audit(
            "hub",
            "call.received",
            "call:sip/abc",
            line="sip",
            call_id="abc",
            state="ringing",
            caller=number,
            source={"caller_number": number, "kind": "call_line"},
        )
        operator = await api_token(hub, "operator")
        supervisor = await api_token(hub, "supervisor")
        async with aiohttp.ClientSession() as http:
            api = Api(hub, http)
            for fmt in ("json", "html", "csv"):
                status, body, _ = await api.get(operator, format=fmt)
                assert status == 200
                assert "612345678" not in str(body) and "12345678" not in str(body), fmt
            _, day, _ = await api.get(operator)
            call = next(line for line in day["lines"] if line["action"] == "call.received")
            assert call["params"]["caller"] == "+336••••••78"
            assert call["params"]["source"]["caller_number"] == "+336••••••78"
            assert call["what"] == "Appel reçu sur la ligne sip (ringing)"
            _, day, _ = await api.get(supervisor)  # holds incident.caller.view
            call = next(line for line in day["lines"] if line["action"] == "call.received")
            assert call["params"]["caller"] == number


async def test_who_may_read_and_write_and_the_camera_scope(hub_factory: Any) -> None:
    async with hub_factory(web=True) as hub:
        await hub.store.audit("hub", "camera.offline", "cam-a", why="connection refused")
        await hub.store.audit("hub", "camera.offline", "cam-b", why="connection refused")
        tokens = {role: await api_token(hub, role) for role in ("auditor", "operator", "wall")}
        scoped = await _scoped_token(hub, "operator", ["camera:cam-a"])
        async with aiohttp.ClientSession() as http:
            api = Api(hub, http)
            assert (await api.get(tokens["auditor"]))[0] == 200
            assert (await api.get(tokens["wall"]))[0] == 403
            assert (await api.note(tokens["auditor"], {"text": "x"}))[0] == 403
            assert (await api.note(tokens["wall"], {"text": "x"}))[0] == 403
            assert (await api.note(tokens["operator"], {"text": "x"}))[0] == 201
            _, everything, _ = await api.get(tokens["operator"])
            cams = [
                line["target"] for line in everything["lines"] if line["action"] == "camera.offline"
            ]
            assert cams == ["cam-a", "cam-b"]
            _, mine, _ = await api.get(scoped)
            cams = [line["target"] for line in mine["lines"] if line["action"] == "camera.offline"]
            assert cams == ["cam-a"]
            # a line out of scope cannot be corrected either (as if it did not exist)
            hidden = next(line["seq"] for line in everything["lines"] if line["target"] == "cam-b")
            status, answer = await api.note(scoped, {"text": "x", "corrects": hidden})
            assert status == 400 and "no logbook entry" in answer["error"]
        refused = [r for r in await hub.store.audit_records() if r.action == "access.refused"]
        assert refused  # the 403s are audited as every refusal is


async def test_the_printed_page_escapes_and_the_csv_never_holds_a_formula(hub_factory: Any) -> None:
    async with hub_factory(web=True) as hub:
        hostile = "<script>alert(1)</script> & \"'"
        await hub.store.audit_trail.event(
            acting("=cmd|' /C calc'!A0"), "logbook.note", None, text=hostile
        )
        await hub.store.audit_trail.event(acting("-2+3"), "logbook.note", None, text="+1")
        await hub.store.audit_trail.event(acting("@SUM(A1)"), "logbook.note", None, text="x")
        token = await api_token(hub, "operator")
        async with aiohttp.ClientSession() as http:
            api = Api(hub, http)
            status, page, resp = await api.get(token, format="html")
            assert status == 200 and resp.content_type == "text/html"
            assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
            assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
            status, text, resp = await api.get(token, format="csv")
            assert resp.content_type == "text/csv"
        rows = list(csv.reader(io.StringIO(text, newline="")))
        assert rows[0][:3] == ["seq", "time", "who"]
        assert text.endswith("\r\n")
        for row in rows[1:]:
            for cell in row:
                assert not cell.startswith(("=", "+", "-", "@")), cell
        who = [row[2] for row in rows[1:]]
        assert {"'=cmd|' /C calc'!A0", "'-2+3", "'@SUM(A1)"} <= set(who)


async def test_audit_verify_covers_the_logbook(hub_factory: Any) -> None:
    async with hub_factory() as hub:
        who = acting("op")
        seq = await hub.store.audit_trail.event(who, "logbook.note", None, text="Patrouille")
        await hub.store.audit_trail.event(
            who, "logbook.correct", f"logbook:{seq}", text="Patrouille 2", corrects=seq
        )
        await hub.store.audit("hub", "camera.offline", "cam-a", why="refused")
        assert (await hub.store.audit_trail.verify({})).ok
        path = hub.data_dir / DATABASE
    # the hub stopped: edit the note in the file, as someone with the file would
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER audit_log_no_update")
    conn.execute("UPDATE audit_log SET details=? WHERE id=?", ('{"text":"Rien"}', seq))
    conn.commit()
    conn.close()
    from csuhub.store import Store

    store = Store(path)
    await store.open()
    try:
        report = await store.audit_trail.verify({})
        assert not report.ok and report.broken is not None
        assert (report.broken.id, report.broken.kind) == (seq, "content")
    finally:
        await store.close()


async def test_read_day_in_another_zone_and_html_language(hub_factory: Any) -> None:
    async with hub_factory({"hub": {"timezone": "America/New_York"}}) as hub:
        ts = _paris("2026-03-08T12:00:00-04:00")  # the US spring change
        await _write_at(hub, "hub.stop", ts, "test-hub")
        book = await read_day(
            hub.store.audit_trail, "h", dt.date(2026, 3, 8), "America/New_York", lang="en"
        )
        assert [line["what"] for line in book.lines] == ["Hub stopped"]
        assert book.end - book.start == 23 * 3600
        assert clock(ts, "America/New_York").hour == 12
        page = to_html(book, reader="me")
        assert '<html lang="en">' in page and "Logbook" in page and "America/New_York" in page


@pytest.mark.parametrize("day", ["2026-03-29", "2026-10-25", "2024-02-29"])
def test_day_bounds_chain(day: str) -> None:
    start, end = day_bounds(parse_day(day), PARIS)
    nxt = parse_day(day) + dt.timedelta(days=1)
    assert end == day_bounds(nxt, PARIS)[0]
    assert clock(start, PARIS).hour == 0 and clock(end, PARIS).hour == 0


async def test_the_logbook_shows_a_call_and_its_incident(hub_factory: Any) -> None:
    from csuhub.incidents.calls import CallReport, CallState

    async with hub_factory(web=True) as hub:
        ref = await hub.calls.report(
            CallReport(line="sip", call_id="c-1", caller="+33612345678", text="rixe")
        )
        await hub.calls.report(
            CallReport(line="sip", call_id="c-1", caller="+33612345678", state=CallState.ANSWERED)
        )
        token = await api_token(hub, "operator")
        async with aiohttp.ClientSession() as http:
            _, day, _ = await Api(hub, http).get(token)
    lines = [line for line in day["lines"] if line["action"].startswith(("call.", "incident."))]
    actions = [line["action"] for line in lines]
    assert actions[:2] == ["call.received", "incident.open"]
    assert "call.updated" in actions
    number = str(getattr(ref, "id", ""))
    opened = lines[1]
    assert opened["target"] == f"incident:{number}"
    assert opened["what"].startswith(f"Incident {number} ouvert")
    assert lines[0]["what"] == f"Appel reçu sur la ligne sip (ringing), incident {number}"
    assert "12345678" not in str(lines)
