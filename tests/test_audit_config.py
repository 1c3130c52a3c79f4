"""``hub.audit``: the audit's retention, at least the legal minimums, raised only."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csuhub.config import ConfigInvalid, load_site_text
from csuhub.config.settings import Settings

DAY = 86400.0


def _audit(text: str) -> Settings:
    return Settings.from_config(load_site_text(text, "site.yaml"))


def test_the_defaults_are_the_minimums() -> None:
    audit = _audit("hub: {name: x}\n").hub.audit
    assert (audit.consultations, audit.extractions) == (90 * DAY, 365 * DAY)


def test_the_periods_can_be_raised() -> None:
    audit = _audit("hub:\n  audit: {consultations: 180d, extractions: 3650d}\n").hub.audit
    assert (audit.consultations, audit.extractions) == (180 * DAY, 3650 * DAY)


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (
            "hub:\n  audit:\n    consultations: 30d\n",
            "site.yaml:3:20: hub.audit.consultations: ",
            "the audit of consultations is kept at least 90 days; 30 days is less",
        ),
        (
            "hub:\n  audit: {extractions: 364d}\n",
            "site.yaml:2:24: hub.audit.extractions: ",
            "the audit of extractions is kept at least 365 days; 364 days is less",
        ),
        (
            "hub:\n  audit: {forever: yes}\n",
            "site.yaml:2:11: hub.audit.forever: ",
            "unknown key",
        ),
    ],
)
def test_less_than_the_minimum_is_an_error_at_its_line(text: str, where: str, message: str) -> None:
    with pytest.raises(ConfigInvalid) as err:
        load_site_text(text, "site.yaml")
    lines = [str(i) for i in err.value.issues]
    assert any(line.startswith(where) and message in line for line in lines), lines


@settings(max_examples=40, deadline=None)
@given(
    days=st.integers(min_value=0, max_value=5000),
    key=st.sampled_from(["consultations", "extractions"]),
)
def test_any_period_is_accepted_exactly_when_it_reaches_the_minimum(days: int, key: str) -> None:
    minimum = {"consultations": 90, "extractions": 365}[key]
    text = f"hub:\n  audit: {{{key}: {days}d}}\n"
    if days >= minimum:
        assert getattr(_audit(text).hub.audit, key) == days * DAY
    else:
        with pytest.raises(ConfigInvalid):
            load_site_text(text, "site.yaml")
