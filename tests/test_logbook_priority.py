"""A logbook sentence gives an incident's priority in words, in French or
English, whichever form the desk wrote it in (``Priority``'s number, as the
desk stores it, or its name, as the API takes it)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csuhub.logbook.day import today
from csuhub.logbook.journal import read_day
from csuhub.logbook.sentences import describe
from csuhub.refs import Priority
from csuhub.security.context import acting

WORDS = {
    Priority.LOW: ("basse", "low"),
    Priority.NORMAL: ("normale", "normal"),
    Priority.HIGH: ("haute", "high"),
    Priority.CRITICAL: ("critique", "critical"),
}
TARGET = {"target": "incident:7"}


@pytest.mark.parametrize("priority", list(Priority))
@pytest.mark.parametrize("form", ["int", "float", "digits", "name", "NAME", "enum"])
def test_every_priority_in_every_form_reads_in_words(priority: Priority, form: str) -> None:
    written: Any = {
        "int": int(priority),
        "float": float(priority),
        "digits": str(int(priority)),
        "name": str(priority),
        "NAME": f" {priority.name} ",
        "enum": priority,
    }[form]
    fr, en = WORDS[priority]
    params = {"category": "rixe", "priority": written}
    said_fr = describe("incident.open", params, "fr", extra=TARGET)
    said_en = describe("incident.open", params, "en", extra=TARGET)
    assert said_fr == f"Incident 7 ouvert : rixe, priorité {fr}"
    assert said_en == f"Incident 7 opened: rixe, priority {en}"


@pytest.mark.parametrize("odd", [0, 5, -1, 2.5, True, "urgent", "", None, [2]])
def test_a_priority_the_desk_never_writes_reads_as_written(odd: Any) -> None:
    said = describe("incident.open", {"priority": odd}, "en", extra=TARGET)
    assert said.startswith("Incident 7 opened")
    for word in ("low", "normal", "high", "critical"):
        assert f"priority {word}" not in said


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.integers(), st.floats(), st.text(max_size=12), st.booleans(), st.none()))
def test_any_priority_value_gives_a_sentence(value: Any) -> None:
    for lang in ("fr", "en"):
        assert describe("incident.open", {"priority": value}, lang, extra=TARGET)


async def test_an_incident_opened_by_the_desk_reads_its_priority_in_words(
    hub_factory: Any,
) -> None:
    async with hub_factory({"hub": {"timezone": "UTC"}}) as hub:
        await hub.incidents.open(acting("op"), category="rixe", priority=Priority.HIGH)
        await hub.incidents.open(acting("op"), category="vol", priority=Priority.LOW)
        day = today("UTC")
        fr = await read_day(hub.store.audit_trail, "h", day, "UTC", lang="fr")
        en = await read_day(hub.store.audit_trail, "h", day, "UTC", lang="en")
    said_fr = [line["what"] for line in fr.lines if line["action"] == "incident.open"]
    said_en = [line["what"] for line in en.lines if line["action"] == "incident.open"]
    assert [s.split(", ", 1)[1] for s in said_fr] == ["priorité haute", "priorité basse"]
    assert [s.split(", ", 1)[1] for s in said_en] == ["priority high", "priority low"]
