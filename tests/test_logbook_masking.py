"""The logbook masks a caller's number exactly as the incidents API does: one
rule (``csuhub.incidents.model.mask_caller``), whatever the number looks like,
at any depth of a line's parameters, and over a real hub's API for the same
calls side by side."""

from __future__ import annotations

from typing import Any

import aiohttp
from hypothesis import given, settings
from hypothesis import strategies as st

from csuhub.incidents.calls import CallReport
from csuhub.incidents.model import mask_caller
from csuhub.logbook.masking import mask_number, mask_params
from csuhub.testing import api_token

NUMBERS = st.one_of(
    st.text(alphabet="+0123456789 .-()", max_size=24),
    st.from_regex(r"\+?[0-9]{1,15}", fullmatch=True),
    st.from_regex(r"sip:[a-z0-9.]{1,12}@[a-z.]{1,12}", fullmatch=True),
    st.text(max_size=24),  # anything a line may hand over, letters and all
)


@settings(max_examples=400, deadline=None)
@given(NUMBERS)
def test_the_logbook_masks_a_number_as_the_incidents_api_does(number: str) -> None:
    expected = mask_caller(number)
    assert mask_number(number) == expected
    hidden = mask_params(
        {"caller": number, "source": {"caller_number": number, "phones": [number]}}
    )
    assert hidden["caller"] == expected
    assert hidden["source"]["caller_number"] == expected
    assert hidden["source"]["phones"] == [expected]


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10**15))
def test_a_number_given_as_a_json_number_is_masked_as_its_text(number: int) -> None:
    assert mask_params({"caller": number})["caller"] == mask_caller(str(number))


async def _get(http: aiohttp.ClientSession, url: str, token: str) -> Any:
    async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status == 200
        return await resp.json()


async def test_the_logbook_and_the_incidents_api_show_the_same_masked_caller(
    hub_factory: Any,
) -> None:
    # short codes and extensions (fewer than eight signs) are masked whole by
    # both; longer numbers keep their first three and last two signs in both
    numbers = ["17", "112", "1234567", "+3361234", "+33 6 12 34 56 78", "sip:alice@cad.example"]
    async with hub_factory(web=True) as hub:
        for i, number in enumerate(numbers):
            await hub.calls.report(CallReport(line="sip", call_id=f"c-{i}", caller=number))
        token = await api_token(hub, "operator")
        async with aiohttp.ClientSession() as http:
            incidents = (await _get(http, hub.web.url + "/api/incidents", token))["incidents"]
            day = await _get(http, hub.web.url + "/api/logbook", token)
    by_call = {i["source"]["call_id"]: i["caller"] for i in incidents}
    calls = [line for line in day["lines"] if line["action"] == "call.received"]
    assert len(calls) == len(numbers)
    for line in calls:
        shown = line["params"]["caller"]
        assert shown == by_call[line["params"]["call_id"]]
        assert shown == mask_caller(numbers[int(line["params"]["call_id"][2:])])
    opened = [line for line in day["lines"] if line["action"] == "incident.open"]
    assert {line["params"]["caller"] for line in opened} == set(by_call.values())
    assert "1234567" not in str(day) and "+3361234" not in str(day)
